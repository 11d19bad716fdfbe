import ipaddress
import uuid
from collections.abc import Iterator
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Exists, OuterRef, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.urls import reverse

from .choices import (
    ACTIVE_OPERATION_STATUSES,
    AddressFamily,
    HostState,
    OperationKind,
    OperationStatus,
    ServerState,
    TrafficState,
)
from .validators import parse_network, validate_cidr, validate_hostname

LIVE = ~Q(state=ServerState.DESTROYED)


class HostQuerySet(models.QuerySet):
    def with_usage(self):
        """Annotate what the host's live servers take: used_cpus, used_memory_mib, used_disk_gib."""
        live = ~Q(servers__state=ServerState.DESTROYED)
        zero = Value(0)
        return self.annotate(
            used_cpus=Coalesce(
                Sum("servers__plan__cpu_cores", filter=live),
                Value(Decimal("0")),
                output_field=models.DecimalField(max_digits=8, decimal_places=2),
            ),
            used_memory_mib=Coalesce(Sum("servers__plan__memory_mib", filter=live), zero),
            used_disk_gib=Coalesce(Sum("servers__plan__disk_gib", filter=live), zero),
        )


class Host(models.Model):
    """A machine running a host agent, which consumes the queue `host.<name>`."""

    name = models.CharField(max_length=253, unique=True, validators=[validate_hostname])
    cpus = models.DecimalField("CPUs", max_digits=6, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))])
    cpu_overcommit = models.DecimalField(
        max_digits=4,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("1.00"))],
        help_text="How many times its CPUs the host may sell (plans cap CPU, so 2-4 is common).",
    )
    memory_mib = models.PositiveIntegerField("memory (MiB)")
    disk_gib = models.PositiveIntegerField("disk (GiB)")
    state = models.CharField(max_length=16, choices=HostState.choices, default=HostState.ACTIVE)
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    unknown_contexts = models.JSONField(
        default=list, blank=True, help_text="Contexts the host reported that the panel has no live server for."
    )
    unsafe_notes = models.JSONField(
        default=list,
        blank=True,
        help_text="What makes guests on this host less safe than they should be, as its last report said "
        "(e.g. no syscall filter); empty when nothing.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = HostQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def queue(self) -> str:
        return f"{settings.HOST_QUEUE_PREFIX}{self.name}"

    @property
    def sellable_cpus(self) -> Decimal:
        return self.cpus * self.cpu_overcommit


class Template(models.Model):
    """An operating system image a server's root file system is cloned from."""

    name = models.SlugField(max_length=63, unique=True, help_text="The name the host engine knows it by.")
    distribution = models.CharField(max_length=64)
    version = models.CharField(max_length=64)
    description = models.CharField(max_length=200, blank=True)
    hosts = models.ManyToManyField(Host, blank=True, related_name="templates", help_text="Hosts that have it.")
    is_active = models.BooleanField("active", default=True, help_text="Inactive templates are not offered.")

    class Meta:
        ordering = ["distribution", "version", "name"]

    def __str__(self):
        return f"{self.distribution} {self.version}" if self.distribution else self.name


class IPPool(models.Model):
    """A routed network whose addresses are handed to servers on the hosts it serves."""

    name = models.CharField(max_length=100, unique=True)
    cidr = models.CharField("network", max_length=64, unique=True, validators=[validate_cidr])
    gateway = models.GenericIPAddressField(null=True, blank=True)
    family = models.PositiveSmallIntegerField(choices=AddressFamily.choices, editable=False)
    hosts = models.ManyToManyField(Host, blank=True, related_name="ip_pools")

    class Meta:
        ordering = ["family", "name"]
        verbose_name = "IP pool"

    def __str__(self):
        return f"{self.name} ({self.cidr})"

    @property
    def network(self):
        return ipaddress.ip_network(self.cidr)

    def clean(self):
        network = parse_network(self.cidr)
        self.cidr = str(network)
        self.family = network.version
        if self.gateway and ipaddress.ip_address(self.gateway) not in network:
            raise ValidationError({"gateway": f"The gateway {self.gateway} is not inside {network}."})
        for other in IPPool.objects.filter(family=network.version).exclude(pk=self.pk):
            if other.network.overlaps(network):
                raise ValidationError({"cidr": f"{network} overlaps the pool {other}."})

    def save(self, *args, **kwargs):
        self.family = ipaddress.ip_network(self.cidr).version
        super().save(*args, **kwargs)

    def usable_addresses(self) -> Iterator[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        """Addresses a server may get, in order: not the network, broadcast or gateway address."""
        network = self.network
        gateway = ipaddress.ip_address(self.gateway) if self.gateway else None
        if network.version == 6:
            hosts = (network[i] for i in range(1, network.num_addresses))  # skip the subnet-router anycast
        else:
            hosts = network.hosts()
        return (ip for ip in hosts if ip != gateway)

    def first_available(self, count: int) -> list[str]:
        """Up to `count` free addresses. The caller holds this pool's row lock."""
        taken = {ipaddress.ip_address(a) for a in self.addresses.values_list("address", flat=True)}
        found = []
        for ip in self.usable_addresses():
            if len(found) == count:
                break
            if ip not in taken:
                found.append(str(ip))
        return found

    def size(self) -> int:
        return (
            self.network.num_addresses
            - (2 if self.family == 4 and self.network.prefixlen < 31 else 1)
            - (1 if self.gateway else 0)
        )


class IPAddress(models.Model):
    """An address taken from a pool: assigned to a server, or reserved by staff when it has none."""

    pool = models.ForeignKey(IPPool, on_delete=models.PROTECT, related_name="addresses")
    address = models.GenericIPAddressField()
    server = models.ForeignKey(
        "VirtualServer", null=True, blank=True, on_delete=models.PROTECT, related_name="addresses"
    )
    description = models.CharField(max_length=200, blank=True, help_text="Why it is reserved, if it has no server.")
    assigned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pool", "address"]
        verbose_name = "IP address"
        constraints = [models.UniqueConstraint(fields=["pool", "address"], name="ip_address_unique_in_pool")]

    def __str__(self):
        return self.address

    @property
    def family(self) -> int:
        return ipaddress.ip_address(self.address).version

    def clean(self):
        if self.pool_id and self.address and ipaddress.ip_address(self.address) not in self.pool.network:
            raise ValidationError({"address": f"{self.address} is not inside the pool {self.pool.cidr}."})


class VirtualServerQuerySet(models.QuerySet):
    def live(self):
        return self.filter(LIVE)

    def visible_to(self, user):
        """The one place that decides which servers a login may see: staff all, customers their own."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self
        if user.customer_id is None:
            return self.none()
        return self.filter(customer_id=user.customer_id)

    def with_busy(self):
        """Each with `busy`: whether an operation is queued or running on it (others wait for it)."""
        active = Operation.objects.filter(server=OuterRef("pk"), status__in=ACTIVE_OPERATION_STATUSES)
        return self.annotate(busy=Exists(active))

    def with_addresses(self):
        """Their addresses fetched alongside, just the address itself (lists show nothing else)."""
        return self.prefetch_related(models.Prefetch("addresses", IPAddress.objects.only("address", "server_id")))


class VirtualServer(models.Model):
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="servers")
    plan = models.ForeignKey("customers.Plan", on_delete=models.PROTECT, related_name="servers")
    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="servers")
    template = models.ForeignKey(Template, on_delete=models.PROTECT, related_name="servers")
    hostname = models.CharField(max_length=253, validators=[validate_hostname])
    context_id = models.PositiveIntegerField("context id", help_text="Unique among the live servers of its host.")
    state = models.CharField(max_length=16, choices=ServerState.choices, default=ServerState.PENDING)
    ssh_keys = models.TextField("SSH keys", blank=True, help_text="root's authorized keys, one per line.")
    counters = models.JSONField(default=dict, blank=True, help_text="The host's last usage counters, for deltas.")
    traffic_state = models.CharField(
        max_length=16, choices=TrafficState.choices, default=TrafficState.WITHIN, blank=True
    )
    traffic_period = models.DateField(
        null=True, blank=True, help_text="The month whose traffic allowance it went over."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = VirtualServerQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "virtual server"
        # The servers list pages through them newest first: without it, every page sorts them all.
        indexes = [models.Index(fields=["-created_at", "-id"], name="server_newest_first")]
        constraints = [
            models.UniqueConstraint(fields=["host", "context_id"], condition=LIVE, name="context_id_unique_per_host"),
            models.UniqueConstraint(
                fields=["customer", "hostname"], condition=LIVE, name="hostname_unique_per_customer"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.hostname})"

    @property
    def name(self) -> str:
        """The context's name on its host: stable, never reused, and safe for the engine."""
        return f"vps-{self.pk}"

    def get_absolute_url(self):
        return reverse("server-detail", args=[self.pk])

    def active_operation(self):
        return self.operations.filter(status__in=ACTIVE_OPERATION_STATUSES).first()

    @property
    def rate_mbit(self) -> int:
        """The network rate in force: the plan's, or its throttled rate while over the month's traffic."""
        plan = self.plan
        if self.traffic_state == TrafficState.THROTTLED:
            return min(plan.rate_mbit, plan.throttled_rate_mbit)
        return plan.rate_mbit

    @property
    def shown_state(self) -> str:
        """What staff and customers are told: a server on a silent host is of unknown state."""
        if self.host.state == HostState.OFFLINE and self.state not in (ServerState.DESTROYED, ServerState.PENDING):
            return "unknown"
        return self.state

    @property
    def shown_state_label(self) -> str:
        if self.shown_state == "unknown":
            return f"Unknown (host {self.host} is not reporting)"
        return ServerState(self.state).label  # get_state_display() rebuilds a dict of choices each call


class Operation(models.Model):
    """One piece of work on a server, carried out by its host: the truth about its progress."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    server = models.ForeignKey(VirtualServer, on_delete=models.PROTECT, related_name="operations")
    kind = models.CharField(max_length=16, choices=OperationKind.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=OperationStatus.choices, default=OperationStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    step = models.CharField(max_length=200, blank=True, help_text="What the host is doing now.")
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)
    spec = models.JSONField(default=dict, help_text="What was sent to the host (secrets removed once done).")
    undo = models.JSONField(default=dict, blank=True, help_text="What to restore if the host reports failure.")
    sends = models.PositiveSmallIntegerField(default=1, help_text="How often it was sent to the host.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # What lists of operations leave unread: a list shows none of it, and a log can be long.
    LONG_FIELDS = ("log", "spec", "undo")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["server"],
                condition=Q(status__in=ACTIVE_OPERATION_STATUSES),
                name="one_active_operation_per_server",
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="progress_at_most_100"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.server.name}"

    @property
    def is_finished(self) -> bool:
        return self.status not in ACTIVE_OPERATION_STATUSES


class UsageSample(models.Model):
    """What one server used in one minute or one hour, for its graphs; kept for a short while only
    (billing reads UsageRecord). A minute or hour with no row is one in which nothing changed."""

    class Span(models.IntegerChoices):
        MINUTE = 60, "minute"
        HOUR = 3600, "hour"

    server = models.ForeignKey(VirtualServer, on_delete=models.CASCADE, related_name="usage_samples")
    span = models.PositiveIntegerField(choices=Span.choices)
    start = models.DateTimeField()
    cpu_seconds = models.FloatField(default=0)
    memory_bytes = models.BigIntegerField(default=0, help_text="The most seen in the span.")
    disk_bytes = models.BigIntegerField(null=True, blank=True, help_text="The last seen in the span.")
    net_in_bytes = models.BigIntegerField(default=0)
    net_out_bytes = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["server", "span", "start"]
        constraints = [
            models.UniqueConstraint(fields=["server", "span", "start"], name="one_usage_sample_per_span"),
        ]
        indexes = [models.Index(fields=["span", "start"], name="usage_sample_age")]

    def __str__(self):
        return f"{self.server} {self.get_span_display()} {self.start:%Y-%m-%d %H:%M}"
