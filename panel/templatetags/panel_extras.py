from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def percent_of(used, total) -> int:
    """Whole percent of `total` that `used` is, clamped to 0-100 for drawing."""
    try:
        if not total:
            return 100 if used else 0
        return max(0, min(100, int(Decimal(used) * 100 / Decimal(total))))
    except (TypeError, ArithmeticError, ValueError):
        return 0


@register.filter
def subtract(total, used):
    try:
        return total - used
    except TypeError:
        return ""
