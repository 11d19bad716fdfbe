"""Validation of names and addresses at the edge, before anything reaches a host."""

import ipaddress

from django.core.exceptions import ValidationError

from .engine.spec import HOSTNAME_LABEL


def normalise_hostname(value: str) -> str:
    """Return the hostname lowercased without a trailing dot, or raise ValidationError.

    A hostname is one or more DNS labels (letters, digits, hyphens; 1-63 characters; no hyphen at
    either end) joined by dots, 253 characters at most.
    """
    name = (value or "").strip().lower().removesuffix(".")
    if not name:
        raise ValidationError("Enter a hostname.", code="hostname")
    if len(name) > 253:
        raise ValidationError("A hostname is at most 253 characters long.", code="hostname")
    for label in name.split("."):
        if not HOSTNAME_LABEL.match(label):
            raise ValidationError(
                "%(value)s is not a valid hostname: each part between dots must be 1-63 letters, digits "
                "or hyphens, and may not start or end with a hyphen.",
                code="hostname",
                params={"value": value},
            )
    if name.replace(".", "").isdigit():
        raise ValidationError("A hostname cannot be all digits.", code="hostname")
    return name


def validate_hostname(value: str) -> None:
    if normalise_hostname(value) != value:
        raise ValidationError("Write the hostname in lower case without a trailing dot.", code="hostname")


def parse_network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network((value or "").strip(), strict=True)
    except ValueError as exc:
        raise ValidationError(
            "%(value)s is not a network in CIDR notation such as 203.0.113.0/24 or 2001:db8::/64 (%(why)s).",
            code="cidr",
            params={"value": value, "why": exc},
        ) from exc


def validate_cidr(value: str) -> None:
    parse_network(value)
