"""provision_account and the billing-state services."""

import pytest
from django.urls import reverse

from contexts import services as server_services
from contexts.choices import OperationKind, OperationStatus, ServerState
from contexts.exceptions import InvalidRequest, NoCapacity, OperationInProgress, PoolExhausted
from contexts.lifecycle import IllegalTransition
from contexts.models import IPAddress, Operation, VirtualServer
from customers import services
from customers.models import Customer, User
from panel.models import AuditEvent
from tests.conftest import make_plan


def provision(world, **overrides):
    values = dict(
        name="Alice Ltd",
        email="Alice@Example.com",
        plan=world.plan,
        template=world.template,
        hostname="www.alice.example",
        actor=world.staff,
    )
    values.update(overrides)
    return services.provision_account(**values)


def nothing_created():
    return not (
        Customer.objects.exists()
        or User.objects.filter(customer__isnull=False).exists()
        or VirtualServer.objects.exists()
        or IPAddress.objects.exists()
        or Operation.objects.exists()
    )


def test_provision_creates_customer_login_and_server(world, client):
    result = provision(world)
    assert result.customer.email == "alice@example.com" and result.login.customer == result.customer
    assert result.login.username == "alice@example.com"
    assert result.login.check_password(result.password) and len(result.password) >= 12
    assert result.server.customer == result.customer and result.server.state == ServerState.PROVISIONING
    assert result.operation.kind == OperationKind.CREATE
    response = client.post(reverse("login"), {"username": "alice@example.com", "password": result.password})
    assert response.status_code == 302 and "_auth_user_id" in client.session
    assert AuditEvent.objects.filter(action="customer.created", actor=world.staff).exists()


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        (dict(email="not-an-email"), InvalidRequest, "not a valid email"),
        (dict(name="  "), InvalidRequest, "customer's name"),
        (dict(hostname="under_score.example"), InvalidRequest, "not a valid hostname"),
    ],
)
def test_bad_input_creates_nothing(world, overrides, error, message):
    with pytest.raises(error, match=message):
        provision(world, **overrides)
    assert nothing_created()


def test_no_host_with_room_creates_nothing(world):
    with pytest.raises(NoCapacity, match="No host has room"):
        provision(world, plan=make_plan("huge", memory_mib=10**6))
    assert nothing_created()


def test_exhausted_pool_creates_nothing(world):
    for n in range(world.v4.size()):
        IPAddress.objects.create(pool=world.v4, address=f"192.0.2.{n + 2}", description="router")
    with pytest.raises(PoolExhausted):
        provision(world)
    assert not Customer.objects.exists() and not VirtualServer.objects.exists()
    assert IPAddress.objects.filter(server__isnull=False).count() == 0


def test_existing_login_is_refused(world):
    provision(world)
    with pytest.raises(InvalidRequest, match="login for alice@example.com already exists"):
        provision(world, name="Someone else", hostname="other.example")
    assert Customer.objects.count() == 1


def finish_all(ok=True):
    for op in Operation.objects.filter(status=OperationStatus.QUEUED):
        server_services.finish_operation(op.pk, ok=ok)


def test_suspend_unsuspend_terminate(world):
    result = provision(world)
    finish_all()
    ops = services.suspend_customer(result.customer, world.staff)
    assert [op.kind for op in ops] == [OperationKind.SUSPEND]
    finish_all()
    result.server.refresh_from_db()
    result.customer.refresh_from_db()
    assert result.customer.billing_state == "suspended" and result.server.state == ServerState.SUSPENDED
    with pytest.raises(IllegalTransition, match="is suspended and cannot become suspended"):
        services.suspend_customer(result.customer, world.staff)

    services.unsuspend_customer(result.customer, world.staff)
    finish_all()
    result.server.refresh_from_db()
    assert result.server.state == ServerState.RUNNING

    ops = services.terminate_customer(result.customer, world.staff)
    assert [op.kind for op in ops] == [OperationKind.DESTROY]
    result.login.refresh_from_db()
    assert not result.login.is_active
    finish_all()
    result.server.refresh_from_db()
    assert result.server.state == ServerState.DESTROYED and not result.server.addresses.exists()
    states = list(
        AuditEvent.objects.filter(action="customer.billing_state").order_by("id").values_list("to_state", flat=True)
    )
    assert states == ["suspended", "active", "terminated"]
    with pytest.raises(IllegalTransition):
        services.unsuspend_customer(result.customer, world.staff)


def test_suspending_a_customer_with_a_busy_server_changes_nothing(world):
    result = provision(world)  # its create operation is still queued
    with pytest.raises(OperationInProgress, match="busy"):
        services.suspend_customer(result.customer, world.staff)
    result.customer.refresh_from_db()
    assert result.customer.billing_state == "active"
    assert not AuditEvent.objects.filter(action="customer.billing_state").exists()
