"""Services: placement, allocation, the state machine applied to rows, and the audit log."""

from decimal import Decimal

import pytest

from contexts import services
from contexts.choices import HostState, OperationKind, OperationStatus, ServerState
from contexts.exceptions import InvalidRequest, NoCapacity, NotPermitted, OperationInProgress, PoolExhausted
from contexts.lifecycle import IllegalTransition
from contexts.models import IPAddress, Operation, Template, VirtualServer
from customers.models import Customer
from panel.models import AuditEvent
from tests.conftest import make_host, make_plan, make_pool


@pytest.fixture
def customer(db):
    return Customer.objects.create(name="Alice", email="alice@example.com")


def create(world, customer, hostname="www.example.com", plan=None):
    return services.create_server(
        customer=customer, plan=plan or world.plan, template=world.template, hostname=hostname, actor=world.staff
    )


def running(world, customer, hostname="www.example.com"):
    server, op = create(world, customer, hostname)
    services.finish_operation(op.pk, ok=True)
    server.refresh_from_db()
    return server


def test_create_places_allocates_and_queues(world, customer):
    server, op = create(world, customer, hostname="WWW.Example.com.")
    assert server.hostname == "www.example.com"
    assert server.host == world.host
    assert server.context_id == services.CONTEXT_ID_MIN
    assert server.state == ServerState.PROVISIONING
    assert sorted(server.addresses.values_list("address", flat=True)) == ["192.0.2.2", "2001:db8::2"]
    assert op.kind == OperationKind.CREATE and op.status == OperationStatus.QUEUED and op.requested_by == world.staff
    context = op.spec["context"]
    assert op.spec["operation"] == str(op.pk) and op.spec["kind"] == "create"
    assert context["name"] == server.name and context["template"] == "busybox"
    assert context["limits"]["memory_mib"] == 512 and context["limits"]["cpus"] == 0.5
    assert {"address": "192.0.2.2", "prefix": 28, "gateway": "192.0.2.1"} in context["addresses"]
    actions = list(AuditEvent.objects.filter(object_id=str(server.pk)).values_list("action", "to_state"))
    assert ("server.created", "pending") in actions and ("server.state", "provisioning") in actions


def test_second_server_gets_next_id_and_address(world, customer):
    first, _ = create(world, customer, "a.example.com")
    second, _ = create(world, customer, "b.example.com")
    assert second.context_id == first.context_id + 1
    assert second.addresses.get(pool=world.v4).address == "192.0.2.3"


def test_placement_skips_hosts_in_maintenance_and_without_the_template(world, customer):
    world.host.state = HostState.MAINTENANCE
    world.host.save()
    other = make_host(memory_mib=99999)  # roomier, but lacks the template
    make_pool("v4b", "198.51.100.0/28", None, other)
    with pytest.raises(NoCapacity, match="No active host has this template"):
        create(world, customer)
    assert not VirtualServer.objects.exists()


def test_no_room_is_a_clear_error_and_creates_nothing(world, customer):
    big = make_plan("huge", memory_mib=world.host.memory_mib + 1)
    with pytest.raises(NoCapacity, match=f"{world.host.name}: .*MiB memory free of {big.memory_mib} needed"):
        create(world, customer, plan=big)
    assert not VirtualServer.objects.exists() and not IPAddress.objects.exists()


def test_cpu_overcommit_lets_a_host_sell_more_cores(world, customer):
    world.host.cpus = Decimal("1")
    world.host.save()
    create(world, customer, "a.example.com")
    create(world, customer, "b.example.com")
    with pytest.raises(NoCapacity, match="CPUs free"):
        create(world, customer, "c.example.com")
    world.host.cpu_overcommit = Decimal("2")
    world.host.save()
    create(world, customer, "c.example.com")


def test_pool_exhausted_rolls_everything_back(world, customer):
    for n in range(world.v4.size()):
        IPAddress.objects.create(pool=world.v4, address=f"192.0.2.{n + 2}", description="reserved")
    with pytest.raises(PoolExhausted, match="192.0.2.0/28.*no free address"):
        create(world, customer)
    assert not VirtualServer.objects.exists()
    assert not Operation.objects.exists()


def test_missing_pool_family_is_explained(world, customer):
    world.v6.hosts.clear()
    with pytest.raises(PoolExhausted, match="has no IPv6 pool"):
        create(world, customer)


@pytest.mark.parametrize("hostname", ["bad_name.com", "-x.com", "a..b", "", "x" * 64 + ".com", "123"])
def test_invalid_hostnames_are_refused(world, customer, hostname):
    with pytest.raises(InvalidRequest):
        create(world, customer, hostname)
    assert not VirtualServer.objects.exists()


def test_duplicate_hostname_for_a_customer_is_refused_but_allowed_after_destroy(world, customer):
    server = running(world, customer)
    with pytest.raises(InvalidRequest, match="already has a server called www.example.com"):
        create(world, customer)
    op = services.request_action(server, OperationKind.DESTROY, world.staff)
    services.finish_operation(op.pk, ok=True)
    create(world, customer)  # the name is free again


def test_inactive_plan_or_template_and_suspended_customer_are_refused(world, customer):
    retired = make_plan("old", is_active=False)
    with pytest.raises(InvalidRequest, match="no longer sold"):
        create(world, customer, plan=retired)
    world.template.is_active = False
    world.template.save()
    with pytest.raises(InvalidRequest, match="not offered"):
        create(world, customer)
    world.template.is_active = True
    world.template.save()
    customer.billing_state = "suspended"
    customer.save()
    with pytest.raises(NotPermitted, match="suspended"):
        create(world, customer)


def test_illegal_action_is_refused_and_changes_nothing(world, customer):
    server = running(world, customer)
    with pytest.raises(IllegalTransition, match="Cannot start .*: it is running, and only a stopped server"):
        services.request_action(server, OperationKind.START, world.staff)
    assert server.operations.count() == 1


def test_destroyed_server_cannot_be_started(world, customer):
    server = running(world, customer)
    services.finish_operation(services.request_action(server, OperationKind.DESTROY, world.staff).pk, ok=True)
    server.refresh_from_db()
    assert server.state == ServerState.DESTROYED
    with pytest.raises(IllegalTransition, match="it is destroyed"):
        services.request_action(server, OperationKind.START, world.staff)


def test_one_operation_at_a_time(world, customer):
    server, _ = create(world, customer)
    with pytest.raises(OperationInProgress, match="busy: create is queued"):
        services.request_action(server, OperationKind.DESTROY, world.staff)


def test_stop_start_cycle_changes_state_only_when_the_host_confirms(world, customer):
    server = running(world, customer)
    stop = services.request_action(server, OperationKind.STOP, world.staff)
    server.refresh_from_db()
    assert server.state == ServerState.RUNNING  # not yet: the host has not answered
    services.finish_operation(stop.pk, ok=True)
    server.refresh_from_db()
    assert server.state == ServerState.STOPPED
    start = services.request_action(server, OperationKind.START, world.staff)
    services.finish_operation(start.pk, ok=False, error="init exited with status 1")
    server.refresh_from_db()
    start.refresh_from_db()
    assert server.state == ServerState.STOPPED and start.status == OperationStatus.FAILED
    assert start.error == "init exited with status 1"


def test_finishing_twice_changes_nothing(world, customer):
    server, op = create(world, customer)
    services.finish_operation(op.pk, ok=True)
    events = AuditEvent.objects.count()
    again = services.finish_operation(op.pk, ok=False, error="late duplicate")
    server.refresh_from_db()
    assert again.status == OperationStatus.SUCCEEDED and server.state == ServerState.RUNNING
    assert AuditEvent.objects.count() == events


def test_failed_create_leaves_a_failed_server_that_can_be_reinstalled(world, customer):
    server, op = create(world, customer)
    services.finish_operation(op.pk, ok=False, error="template busybox missing on host")
    server.refresh_from_db()
    assert server.state == ServerState.FAILED
    retry = services.reinstall_server(server, world.template, world.staff)
    server.refresh_from_db()
    assert server.state == ServerState.PROVISIONING and retry.kind == OperationKind.REINSTALL


def test_progress_reports_until_finished(world, customer):
    server, op = create(world, customer)
    services.report_progress(op.pk, 40, "cloning")
    op.refresh_from_db()
    assert (op.status, op.progress, op.step) == (OperationStatus.RUNNING, 40, "cloning") and op.started_at
    services.finish_operation(op.pk, ok=True)
    services.report_progress(op.pk, 50, "late")
    op.refresh_from_db()
    assert (op.status, op.progress, op.step) == (OperationStatus.SUCCEEDED, 100, "Done")


def test_destroy_returns_addresses_only_after_the_host_confirms(world, customer):
    server = running(world, customer)
    op = services.request_action(server, OperationKind.DESTROY, world.staff)
    server.refresh_from_db()
    assert server.state == ServerState.DESTROYING and server.addresses.count() == 2
    services.finish_operation(op.pk, ok=True)
    server.refresh_from_db()
    assert server.state == ServerState.DESTROYED and server.addresses.count() == 0
    assert AuditEvent.objects.filter(action="server.addresses_released", object_id=str(server.pk)).exists()


def test_failed_destroy_keeps_addresses_and_can_be_retried(world, customer):
    server = running(world, customer)
    services.finish_operation(
        services.request_action(server, OperationKind.DESTROY, world.staff).pk, ok=False, error="busy mount"
    )
    server.refresh_from_db()
    assert server.state == ServerState.FAILED and server.addresses.count() == 2
    services.request_action(server, OperationKind.DESTROY, world.staff)


def test_reinstall_needs_a_template_on_the_host(world, customer):
    server = running(world, customer)
    elsewhere = Template.objects.create(name="debian-12", distribution="Debian", version="12")
    with pytest.raises(InvalidRequest, match="not available on"):
        services.reinstall_server(server, elsewhere, world.staff)
    elsewhere.hosts.add(world.host)
    op = services.reinstall_server(server, elsewhere, world.staff)
    assert op.spec["context"]["template"] == "debian-12"


def test_change_plan_checks_room_and_moves_addresses(world, customer):
    server = running(world, customer)
    bigger = make_plan("big", memory_mib=2048, ipv4_count=2, ipv6_count=0)
    op = services.change_plan(server, bigger, world.staff)
    server.refresh_from_db()
    assert server.plan == bigger and op.spec["context"]["limits"]["memory_mib"] == 2048
    assert [a["address"] for a in op.spec["context"]["addresses"]] == ["192.0.2.2", "192.0.2.3"]
    assert server.addresses.count() == 3  # the IPv6 address stays until the host confirms
    services.finish_operation(op.pk, ok=True)
    assert sorted(server.addresses.values_list("address", flat=True)) == ["192.0.2.2", "192.0.2.3"]
    too_big = make_plan("too-big", memory_mib=world.host.memory_mib + 1)
    with pytest.raises(NoCapacity, match="no room for the plan"):
        services.change_plan(server, too_big, world.staff)
    with pytest.raises(InvalidRequest, match="already on the plan"):
        services.change_plan(server, bigger, world.staff)


def test_customers_act_only_on_their_own_servers(world, customer, customer_login):
    server = running(world, customer)
    _, mallory = customer_login("Mallory")
    with pytest.raises(NotPermitted):
        services.request_action(server, OperationKind.STOP, mallory)
    owner = customer.logins.create(username="alice", email="alice@example.com")
    with pytest.raises(NotPermitted):
        services.request_action(server, OperationKind.DESTROY, owner)  # staff only
    op = services.request_action(server, OperationKind.STOP, owner)
    assert op.requested_by == owner
    customer.billing_state = "suspended"
    customer.save()
    services.finish_operation(op.pk, ok=True)
    with pytest.raises(NotPermitted, match="account is suspended"):
        services.request_action(server, OperationKind.START, owner)


def test_visible_to_filters_by_owner(world, customer, customer_login):
    server = running(world, customer)
    _, mallory = customer_login("Mallory")
    owner = customer.logins.create(username="alice", email="alice@example.com")
    assert list(VirtualServer.objects.visible_to(owner)) == [server]
    assert not VirtualServer.objects.visible_to(mallory).exists()
    assert list(VirtualServer.objects.visible_to(world.staff)) == [server]


def test_audit_details_of_operations_sit_at_the_same_level_as_every_others(world, customer):
    from panel.models import AuditEvent

    server = running(world, customer)
    op = services.request_action(server, OperationKind.STOP, world.staff)
    event = AuditEvent.objects.get(action="operation.stop")
    assert event.details == {"operation": str(op.pk)}  # not {"details": {...}}
    assert all("details" not in e.details for e in AuditEvent.objects.all())
