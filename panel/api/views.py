"""The API's resources and verbs. Every verb calls the same services as the panel's pages; long work
answers 202 with the operation to poll at /api/v1/operations/<id>/."""

import datetime

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from contexts import passwords, traffic
from contexts import services as server_services
from contexts.choices import OperationKind, OperationStatus, ServerState
from contexts.models import Host, Operation, Template, VirtualServer
from customers import services as customer_services
from customers.models import Customer, Plan, UsageRecord
from panel.models import ApiTokenScope

from . import serializers as s
from .idempotency import HEADER, idempotent
from .permissions import StaffOnly, TokenScope
from .renderers import CSVRenderer

IDEMPOTENCY = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    description="Any unique string, e.g. a UUID: a retry with the same key gets the first answer again.",
)
# Besides the answers every operation can give (panel/api/schema.py).
REFUSALS = {
    409: OpenApiResponse(description="Busy with another operation, or not possible in the current state."),
    422: OpenApiResponse(description="The Idempotency-Key was used for a different request."),
    503: OpenApiResponse(description="No host has room for this plan now."),
}


def accepted(request, answer_serializer, data: dict, operation: Operation) -> Response:
    return Response(
        answer_serializer(data, context={"request": request}).data,
        status=status.HTTP_202_ACCEPTED,
        headers={"Location": reverse("api:operation-detail", args=[operation.pk])},
    )


def accepting(answer, summary: str | None = None, body=None, route=None):
    """A POST answered 202 with `answer`, replayed under the same Idempotency-Key, its key and refusals
    documented alike; `route` (an action()) goes between the two, as extend_schema must be outermost."""

    def decorate(method):
        method = idempotent(method)
        if route is not None:
            method = route(method)
        schema = extend_schema(
            request=body, parameters=[IDEMPOTENCY], responses={202: answer, **REFUSALS}, summary=summary
        )
        return schema(method)

    return decorate


def verb(answer, summary: str | None = None, body=None, url_path: str | None = None):
    """A POST on one object (/<id>/<name>/), as `accepting` says."""
    return accepting(answer, summary, body, action(detail=True, methods=["post"], url_path=url_path))


def with_password(data: dict, chosen: str | None, password: str) -> dict:
    """A root password the panel chose goes in the answer, once; one the caller chose does not."""
    return data if chosen else data | {"root_password": password}


def id_param(params, name: str) -> int | None:
    """An object id from the query string, or None when absent; anything but a plain number is a 400."""
    if name not in params:
        return None
    value = s.parse_id(params[name])
    if value is None:
        raise ValidationError({name: f"A {name} id is a whole number."})
    return value


def choice_param(params, name: str, choices) -> str | None:
    if name not in params:
        return None
    if params[name] not in choices:
        raise ValidationError({name: f"Use one of: {', '.join(choices)}."})
    return params[name]


def text_param(params, name: str) -> str | None:
    if name not in params:
        return None
    value = params[name].strip()
    if "\0" in value or len(value) > 253:
        raise ValidationError({name: "Not a valid value."})
    return value


def visible_servers(user):
    return (
        VirtualServer.objects.visible_to(user)
        .select_related("customer", "plan", "host", "template")
        .with_addresses()
        .order_by("pk")
    )


class PlanViewSet(viewsets.ReadOnlyModelViewSet):
    """Plans on sale (staff also see retired ones)."""

    serializer_class = s.PlanSerializer
    lookup_field = "slug"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI document is being made
            return Plan.objects.none()
        plans = Plan.objects.order_by("price_monthly", "slug")
        return plans if self.request.user.is_staff else plans.filter(is_active=True)


class TemplateViewSet(viewsets.ReadOnlyModelViewSet):
    """Operating system templates servers are installed from."""

    serializer_class = s.TemplateSerializer
    lookup_field = "name"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI document is being made
            return Template.objects.none()
        templates = Template.objects.order_by("name")
        return templates if self.request.user.is_staff else templates.filter(is_active=True)


class HostViewSet(viewsets.ReadOnlyModelViewSet):
    """The machines servers run on, with what their servers take (staff only)."""

    serializer_class = s.HostSerializer
    permission_classes = [TokenScope, StaffOnly]
    lookup_field = "name"
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return Host.objects.with_usage().order_by("name")


class CustomerViewSet(viewsets.ReadOnlyModelViewSet):
    """Customers: staff see all, a customer's token only its own. Billing verbs are staff only."""

    serializer_class = s.CustomerSerializer
    lookup_value_regex = r"\d+"
    action_scopes = {
        "suspend": ApiTokenScope.PROVISIONING,
        "unsuspend": ApiTokenScope.PROVISIONING,
        "terminate": ApiTokenScope.PROVISIONING,
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI document is being made
            return Customer.objects.none()
        return Customer.objects.visible_to(self.request.user).order_by("pk")

    def get_permissions(self):
        if self.action in self.action_scopes:
            return [TokenScope(), StaffOnly()]
        return super().get_permissions()

    def _billing(self, request, service):
        customer = self.get_object()
        operations = service(customer, request.user)
        customer.refresh_from_db()
        data = s.OperationsAnswer({"customer": customer, "operations": operations}).data
        return Response(data, status=status.HTTP_202_ACCEPTED)

    @verb(
        s.OperationsAnswer,
        summary="Suspend the customer: every server is suspended, the customer's logins may not act.",
    )
    def suspend(self, request, pk=None):
        return self._billing(request, customer_services.suspend_customer)

    @verb(s.OperationsAnswer, summary="Unsuspend")
    def unsuspend(self, request, pk=None):
        return self._billing(request, customer_services.unsuspend_customer)

    @verb(
        s.OperationsAnswer,
        summary="Terminate: destroy every server and disable every login (records stay for billing).",
    )
    def terminate(self, request, pk=None):
        return self._billing(request, customer_services.terminate_customer)


class AccountViewSet(viewsets.GenericViewSet):
    """Create account: a customer, their login and their first server, in one call (staff only)."""

    serializer_class = s.AccountRequest
    permission_classes = [TokenScope, StaffOnly]
    action_scopes = {"create": ApiTokenScope.PROVISIONING}

    @accepting(s.AccountAnswer, "Create an account: customer, login and first server", s.AccountRequest)
    def create(self, request):
        form = s.AccountRequest(data=request.data)
        form.is_valid(raise_exception=True)
        values = form.validated_data
        chosen = values.get("root_password")
        result = customer_services.provision_account(
            name=values["name"],
            email=values["email"],
            plan=values["plan"],
            template=values["template"],
            hostname=values["hostname"],
            actor=request.user,
            root_password=chosen,
            ssh_keys=values.get("ssh_keys", ""),
        )
        data = {
            "customer": result.customer,
            "login": {"username": result.login.username, "password": result.password},
            "server": result.server,
            "operation": result.operation,
        }
        data = with_password(data, chosen, result.root_password)
        return accepted(request, s.AccountAnswer, data, result.operation)


SERVER_FILTERS = [
    OpenApiParameter("customer", int, description="Only this customer's servers."),
    OpenApiParameter("state", str, enum=ServerState.values, description="Only servers in this state."),
    OpenApiParameter("hostname", str, description="Only servers with this hostname."),
]


@extend_schema_view(list=extend_schema(parameters=SERVER_FILTERS))
class ServerViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Servers, and everything that can be done to one."""

    serializer_class = s.ServerSerializer
    lookup_value_regex = r"\d+"
    action_scopes = {
        "create": ApiTokenScope.PROVISIONING,
        "change_plan": ApiTokenScope.PROVISIONING,
        "password": ApiTokenScope.PROVISIONING,
        "suspend": ApiTokenScope.PROVISIONING,
        "unsuspend": ApiTokenScope.PROVISIONING,
        "terminate": ApiTokenScope.PROVISIONING,
        "start": ApiTokenScope.FULL,
        "stop": ApiTokenScope.FULL,
        "restart": ApiTokenScope.FULL,
        "reinstall": ApiTokenScope.FULL,
    }
    staff_actions = {"create", "change_plan", "suspend", "unsuspend", "terminate"}

    def get_permissions(self):
        if self.action in self.staff_actions:
            return [TokenScope(), StaffOnly()]
        return super().get_permissions()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI document is being made
            return VirtualServer.objects.none()
        servers = visible_servers(self.request.user)
        if self.action == "list":
            params = self.request.query_params
            state = choice_param(params, "state", ServerState.values)
            servers = servers.filter(state=state) if state else servers.live()
            if (customer := id_param(params, "customer")) is not None:
                servers = servers.filter(customer_id=customer)
            if (hostname := text_param(params, "hostname")) is not None:
                servers = servers.filter(hostname=hostname.lower())
        return servers

    @accepting(s.ServerAnswer, "Create a server for an existing customer", s.ServerRequest)
    def create(self, request):
        form = s.ServerRequest(data=request.data)
        form.is_valid(raise_exception=True)
        values = form.validated_data
        chosen = values.get("root_password")
        password = chosen or passwords.generate()
        server, operation = server_services.create_server(
            customer=values["customer"],
            plan=values["plan"],
            template=values["template"],
            hostname=values["hostname"],
            actor=request.user,
            root_password=password,
            ssh_keys=values.get("ssh_keys", ""),
        )
        data = with_password({"server": server, "operation": operation}, chosen, password)
        return accepted(request, s.ServerAnswer, data, operation)

    def _act(self, request, kind: str) -> Response:
        operation = server_services.request_action(self.get_object(), kind, request.user)
        return accepted(request, s.OperationAnswer, {"operation": operation}, operation)

    @verb(s.OperationAnswer)
    def start(self, request, pk=None):
        return self._act(request, OperationKind.START)

    @verb(s.OperationAnswer)
    def stop(self, request, pk=None):
        return self._act(request, OperationKind.STOP)

    @verb(s.OperationAnswer)
    def restart(self, request, pk=None):
        return self._act(request, OperationKind.RESTART)

    @verb(s.OperationAnswer, summary="Suspend one server (billing): it stops and its customer may not start it.")
    def suspend(self, request, pk=None):
        return self._act(request, OperationKind.SUSPEND)

    @verb(s.OperationAnswer)
    def unsuspend(self, request, pk=None):
        return self._act(request, OperationKind.UNSUSPEND)

    @verb(s.OperationAnswer, summary="Terminate one server: destroy it and return its addresses.")
    def terminate(self, request, pk=None):
        return self._act(request, OperationKind.DESTROY)

    @verb(
        s.OperationAnswer,
        summary="Reinstall from a template: every file is erased; addresses, hostname and SSH keys stay.",
        body=s.ReinstallRequest,
    )
    def reinstall(self, request, pk=None):
        server = self.get_object()
        form = s.ReinstallRequest(data=request.data)
        form.is_valid(raise_exception=True)
        chosen = form.validated_data.get("root_password")
        password = chosen or passwords.generate()
        operation = server_services.reinstall_server(server, form.validated_data["template"], request.user, password)
        data = with_password({"operation": operation}, chosen, password)
        return accepted(request, s.OperationAnswer, data, operation)

    @verb(
        s.OperationAnswer,
        summary="Change plan: limits apply live; addresses are added or returned as the plan says.",
        body=s.ChangePlanRequest,
        url_path="change-plan",
    )
    def change_plan(self, request, pk=None):
        server = self.get_object()
        form = s.ChangePlanRequest(data=request.data)
        form.is_valid(raise_exception=True)
        operation = server_services.change_plan(server, form.validated_data["plan"], request.user)
        return accepted(request, s.OperationAnswer, {"operation": operation}, operation)

    @verb(
        s.OperationAnswer,
        summary="Set root's password: the one given, or a random one shown once.",
        body=s.PasswordRequest,
    )
    def password(self, request, pk=None):
        server = self.get_object()
        form = s.PasswordRequest(data=request.data)
        form.is_valid(raise_exception=True)
        chosen = form.validated_data.get("root_password")
        operation, password = server_services.reset_root_password(server, request.user, chosen)
        data = with_password({"operation": operation}, chosen, password)
        return accepted(request, s.OperationAnswer, data, operation)


OPERATION_FILTERS = [
    OpenApiParameter("server", int, description="Only this server's operations."),
    OpenApiParameter("status", str, enum=OperationStatus.values, description="Only operations in this status."),
]


@extend_schema_view(list=extend_schema(parameters=OPERATION_FILTERS))
class OperationViewSet(viewsets.ReadOnlyModelViewSet):
    """Work on servers: poll one until its status is succeeded or failed."""

    serializer_class = s.OperationSerializer
    lookup_value_regex = "[0-9a-fA-F-]{32,36}"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI document is being made
            return Operation.objects.none()
        operations = Operation.objects.filter(server__in=VirtualServer.objects.visible_to(self.request.user))
        params = self.request.query_params
        if self.action == "list":
            if (server := id_param(params, "server")) is not None:
                operations = operations.filter(server_id=server)
            if wanted := choice_param(params, "status", OperationStatus.values):
                operations = operations.filter(status=wanted)
        return operations.defer(*Operation.LONG_FIELDS).order_by("-created_at")


def parse_period(text: str | None) -> datetime.date:
    if not text:
        return traffic.month_start()
    try:
        return datetime.datetime.strptime(text, "%Y-%m").date()
    except ValueError as exc:
        raise ValidationError({"period": "Use the form YYYY-MM, e.g. 2026-11."}) from exc


USAGE_FILTERS = [
    OpenApiParameter("period", str, description="The billing month, YYYY-MM (default: this month)."),
    OpenApiParameter("customer", int, description="Only this customer's servers."),
    OpenApiParameter("server", int, description="Only this server."),
    OpenApiParameter("format", str, enum=["json", "csv"], description="csv gives every row, unpaged."),
]


@extend_schema_view(list=extend_schema(parameters=USAGE_FILTERS))
class UsageViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """What each server used in a billing month: CPU seconds, peak memory, disk, traffic in and out.
    Pull it daily for overage billing; figures grow during the month and are final after it."""

    serializer_class = s.UsageSerializer
    renderer_classes = [JSONRenderer, CSVRenderer]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI document is being made
            return UsageRecord.objects.none()
        params = self.request.query_params
        records = UsageRecord.objects.filter(
            server__in=VirtualServer.objects.visible_to(self.request.user),
            period_start=parse_period(params.get("period")),
        ).select_related("server")
        for name, lookup in (("customer", "server__customer_id"), ("server", "server_id")):
            if (value := id_param(params, name)) is not None:
                records = records.filter(**{lookup: value})
        return records.order_by("server_id")

    def paginate_queryset(self, queryset):
        if getattr(self.request, "accepted_renderer", None) and self.request.accepted_renderer.format == "csv":
            return None  # a billing system's import wants the whole month in one file
        return super().paginate_queryset(queryset)
