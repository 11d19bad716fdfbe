import re
from decimal import Decimal

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from contexts.engine.errors import InvalidSpec
from contexts.engine.spec import check_host_ports

from .choices import BillingState, TrafficPolicy


class CustomerQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Staff see every customer; a customer's login only its own (as VirtualServer.objects.visible_to)."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self
        return self.filter(pk=user.customer_id) if user.customer_id else self.none()


class Customer(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField("contact email")
    billing_state = models.CharField(max_length=16, choices=BillingState.choices, default=BillingState.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class User(AbstractUser):
    """A login. Staff have none of `customer`; a customer's logins point at it."""

    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="logins")


currency_code = RegexValidator(r"^[A-Z]{3}$", "Use a three-letter ISO 4217 code such as EUR or USD.")


def parse_host_ports(text: str) -> list[str]:
    """The engine's list from text such as "tcp/53, udp/53" (commas or spaces), by the engine's own
    check, so the panel never accepts what a host would refuse."""
    return check_host_ports([entry for entry in re.split(r"[\s,]+", text or "") if entry])


def validate_host_ports(text: str) -> None:
    try:
        parse_host_ports(text)
    except InvalidSpec as exc:
        raise ValidationError(str(exc), code="invalid") from exc


class Plan(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    cpu_cores = models.DecimalField(
        "CPU cores",
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="Hard cap as a fraction of cores: 0.5 is half of one core.",
    )
    cpu_weight = models.PositiveIntegerField(
        "CPU weight",
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(10000)],
        help_text="Relative share under contention (1-10000, 100 is normal).",
    )
    memory_mib = models.PositiveIntegerField("memory (MiB)", validators=[MinValueValidator(16)])
    swap_mib = models.PositiveIntegerField("swap (MiB)", default=0)
    disk_gib = models.PositiveIntegerField("disk (GiB)", validators=[MinValueValidator(1)])
    inode_limit = models.PositiveIntegerField(default=200_000)
    process_limit = models.PositiveIntegerField(default=512, validators=[MinValueValidator(8)])
    ipv4_count = models.PositiveSmallIntegerField("IPv4 addresses", default=1)
    ipv6_count = models.PositiveSmallIntegerField("IPv6 addresses", default=1)
    traffic_gib = models.PositiveIntegerField("monthly traffic (GiB)", default=1000)
    rate_mbit = models.PositiveIntegerField("network rate (Mbit/s)", default=100, validators=[MinValueValidator(1)])
    traffic_policy = models.CharField(
        max_length=16,
        choices=TrafficPolicy.choices,
        default=TrafficPolicy.THROTTLE,
        help_text="What happens when a server uses more than its monthly traffic.",
    )
    throttled_rate_mbit = models.PositiveIntegerField(
        "throttled rate (Mbit/s)",
        default=10,
        validators=[MinValueValidator(1)],
        help_text="The rate a server over its traffic is held to, when the policy throttles.",
    )
    price_monthly = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, default="EUR", validators=[currency_code])
    is_active = models.BooleanField("active", default=True, help_text="Inactive plans cannot be sold.")
    host_ports = models.CharField(
        max_length=500,
        blank=True,
        validators=[validate_host_ports],
        help_text="Ports of the host itself that this plan's servers may reach, such as a DNS resolver or a "
        "caching proxy running on the host: tcp/PORT or udp/PORT, separated by spaces or commas (e.g. "
        '"udp/53 tcp/53"). Empty, the safe default: servers reach the internet through the host, never a '
        "service on the host.",
    )

    class Meta:
        ordering = ["price_monthly", "name"]

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        try:  # one spelling, so the admin shows what the hosts enforce; a bad entry is the field's error
            self.host_ports = ", ".join(parse_host_ports(self.host_ports))
        except InvalidSpec:
            pass

    @property
    def host_port_list(self) -> list[str]:
        return parse_host_ports(self.host_ports)

    @property
    def price_display(self):
        return f"{self.price_monthly} {self.currency}"


class UsageRecord(models.Model):
    """What one server used in one billing period (a calendar month)."""

    server = models.ForeignKey("contexts.VirtualServer", on_delete=models.PROTECT, related_name="usage_records")
    period_start = models.DateField(help_text="First day of the billing period.")
    period_end = models.DateField(help_text="Last day of the billing period.")
    cpu_seconds = models.FloatField(default=0)
    peak_memory_bytes = models.BigIntegerField(default=0)
    disk_bytes = models.BigIntegerField(default=0)
    traffic_in_bytes = models.BigIntegerField(default=0)
    traffic_out_bytes = models.BigIntegerField(default=0)
    traffic_allowance_gib = models.PositiveIntegerField(
        "traffic allowance (GiB)", default=0, help_text="The plan's monthly traffic while this period was recorded."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-period_start", "-server_id"]  # newest servers first; "server" would join servers to sort
        constraints = [
            models.UniqueConstraint(fields=["server", "period_start"], name="one_usage_record_per_period"),
            models.CheckConstraint(
                condition=models.Q(period_end__gte=models.F("period_start")), name="usage_period_ordered"
            ),
        ]

    def __str__(self):
        return f"{self.server} {self.period_start:%Y-%m}"
