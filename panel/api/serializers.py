"""What the API shows and accepts. Plans are named by slug, templates and hosts by name."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from contexts.forms import HostnameField
from contexts.models import Host, Operation, Template, VirtualServer
from customers.models import Customer, Plan, UsageRecord


class PlanSerializer(serializers.ModelSerializer):
    host_ports = serializers.ListField(
        source="host_port_list",
        child=serializers.CharField(),
        read_only=True,
        help_text='Ports of the host itself its servers may reach, e.g. "udp/53"; none by default.',
    )

    class Meta:
        model = Plan
        fields = [
            "slug",
            "name",
            "cpu_cores",
            "cpu_weight",
            "memory_mib",
            "swap_mib",
            "disk_gib",
            "inode_limit",
            "process_limit",
            "ipv4_count",
            "ipv6_count",
            "traffic_gib",
            "rate_mbit",
            "traffic_policy",
            "throttled_rate_mbit",
            "host_ports",
            "price_monthly",
            "currency",
            "is_active",
        ]


class TemplateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Template
        fields = ["name", "distribution", "version", "description", "is_active"]


class HostSerializer(serializers.ModelSerializer):
    used_cpus = serializers.DecimalField(max_digits=8, decimal_places=2, read_only=True)
    used_memory_mib = serializers.IntegerField(read_only=True)
    used_disk_gib = serializers.IntegerField(read_only=True)

    class Meta:
        model = Host
        fields = [
            "name",
            "state",
            "cpus",
            "cpu_overcommit",
            "memory_mib",
            "disk_gib",
            "used_cpus",
            "used_memory_mib",
            "used_disk_gib",
            "last_heartbeat",
        ]


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "name", "email", "billing_state", "created_at"]


class OperationSerializer(serializers.ModelSerializer):
    server = serializers.PrimaryKeyRelatedField(read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = Operation
        fields = [
            "id",
            "url",
            "server",
            "kind",
            "status",
            "progress",
            "step",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]

    @extend_schema_field(serializers.CharField())
    def get_url(self, operation) -> str:
        return reverse("api:operation-detail", args=[operation.pk])


class ServerSerializer(serializers.ModelSerializer):
    customer = serializers.PrimaryKeyRelatedField(read_only=True)
    plan = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    template = serializers.SlugRelatedField(slug_field="name", read_only=True)
    host = serializers.SlugRelatedField(
        slug_field="name", read_only=True, required=False, help_text="Staff only: which host runs it."
    )
    state = serializers.CharField(source="shown_state", read_only=True)
    addresses = serializers.SerializerMethodField()

    class Meta:
        model = VirtualServer
        fields = [
            "id",
            "name",
            "hostname",
            "customer",
            "plan",
            "template",
            "host",
            "state",
            "addresses",
            "traffic_state",
            "created_at",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.IPAddressField()))
    def get_addresses(self, server) -> list[str]:
        return [a.address for a in server.addresses.all()]

    def to_representation(self, server):
        data = super().to_representation(server)
        request = self.context.get("request")
        if request is None or not request.user.is_staff:
            data.pop("host")  # which machine runs what is the hosting company's business
        return data


class UsageSerializer(serializers.ModelSerializer):
    server = serializers.PrimaryKeyRelatedField(read_only=True)
    hostname = serializers.CharField(source="server.hostname", read_only=True)
    customer = serializers.IntegerField(source="server.customer_id", read_only=True)
    traffic_gib_allowed = serializers.IntegerField(source="traffic_allowance_gib", read_only=True)

    class Meta:
        model = UsageRecord
        fields = [
            "server",
            "hostname",
            "customer",
            "period_start",
            "period_end",
            "cpu_seconds",
            "peak_memory_bytes",
            "disk_bytes",
            "traffic_in_bytes",
            "traffic_out_bytes",
            "traffic_gib_allowed",
            "updated_at",
        ]


# Requests.

ROOT_PASSWORD_HELP = "At least 10 characters. Leave it out and the panel makes a random one, shown once in the answer."


class RootPasswordField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(
            required=False, min_length=10, max_length=128, write_only=True, help_text=ROOT_PASSWORD_HELP, **kwargs
        )

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if "\0" in value or ":" in value or "\n" in value:
            raise serializers.ValidationError("A password cannot contain NUL, ':' or line breaks.")
        return value


class ApiHostnameField(serializers.CharField):
    """The panel's own hostname rules, lower-cased, as the forms apply them."""

    def to_internal_value(self, data):
        from django.core.exceptions import ValidationError

        try:
            return HostnameField().clean(super().to_internal_value(data))
        except ValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc


def active_plans():
    return Plan.objects.filter(is_active=True)


def active_templates():
    return Template.objects.filter(is_active=True)


class NameField(serializers.SlugRelatedField):
    """A plan or template by its name: only a plain string is looked up (a NUL would break the query)."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or "\0" in data or len(data) > 100:
            self.fail("invalid")
        return super().to_internal_value(data)


class NewServer(serializers.Serializer):
    """What a new server needs, whoever it is for."""

    plan = NameField(slug_field="slug", queryset=active_plans())
    template = NameField(slug_field="name", queryset=active_templates())
    hostname = ApiHostnameField(max_length=253)
    root_password = RootPasswordField()
    ssh_keys = serializers.CharField(required=False, allow_blank=True, max_length=20000, help_text="One per line.")


class AccountRequest(NewServer):
    name = serializers.CharField(max_length=200, help_text="The customer's name or company.")
    email = serializers.EmailField(help_text="Also the customer's login name.")


def parse_id(value) -> int | None:
    """An object id from a number or a string of digits (billing modules written in PHP often send
    strings), or None: 1e999, true, "²" or a number past the database's range is not an id."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        return None
    return value


class IdField(serializers.PrimaryKeyRelatedField):
    """An object by id: only a whole number in range is looked up."""

    def to_internal_value(self, data):
        value = parse_id(data)
        if value is None:
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(value)


class ServerRequest(NewServer):
    customer = IdField(queryset=Customer.objects.all())


class ReinstallRequest(serializers.Serializer):
    template = NameField(slug_field="name", queryset=active_templates())
    root_password = RootPasswordField()


class ChangePlanRequest(serializers.Serializer):
    plan = NameField(slug_field="slug", queryset=active_plans())


class PasswordRequest(serializers.Serializer):
    root_password = RootPasswordField()


# Answers.


class OperationAnswer(serializers.Serializer):
    operation = OperationSerializer()
    root_password = serializers.CharField(
        required=False, help_text="Present when the panel chose it: shown this once, kept nowhere."
    )


class LoginAnswer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(help_text="The customer's panel password: shown this once.")


class AccountAnswer(serializers.Serializer):
    customer = CustomerSerializer()
    login = LoginAnswer()
    server = ServerSerializer()
    operation = OperationSerializer()
    root_password = serializers.CharField(required=False)


class ServerAnswer(serializers.Serializer):
    server = ServerSerializer()
    operation = OperationSerializer()
    root_password = serializers.CharField(required=False)


class OperationsAnswer(serializers.Serializer):
    customer = CustomerSerializer()
    operations = OperationSerializer(many=True)
