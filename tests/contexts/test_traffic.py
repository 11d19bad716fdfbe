"""The plan's traffic policy: over the monthly allowance a server is throttled or suspended, and it
comes back when the month is over (or when a bigger plan covers what it used)."""

import datetime

import pytest

from contexts import reconcile, traffic
from contexts.choices import OperationKind, ServerState, TrafficState
from contexts.models import Operation
from contexts.services import finish_operation
from contexts.specs import context_spec
from customers.choices import TrafficPolicy
from panel.models import AuditEvent
from tests.contexts.test_graphs import context

GIB = 1024**3


def over_allowance(server, gib):
    reconcile.record_usage(server, context(server.name, net_out=int(gib * GIB)))


def last_operation(server):
    return Operation.objects.filter(server=server).order_by("-created_at").first()


@pytest.fixture
def small_allowance(running):
    plan = running.server.plan
    plan.traffic_gib, plan.rate_mbit, plan.throttled_rate_mbit = 1, 100, 5
    plan.save()
    return running


def test_over_the_allowance_a_throttling_plan_holds_the_rate(small_allowance, client):
    server = small_allowance.server
    over_allowance(server, 0.5)
    assert server.traffic_state == TrafficState.WITHIN and last_operation(server).kind == OperationKind.CREATE
    over_allowance(server, 1.2)  # counters are cumulative: 1.2 GiB in all now
    server.refresh_from_db()
    assert server.traffic_state == TrafficState.THROTTLED
    operation = last_operation(server)
    assert operation.kind == OperationKind.LIMITS and operation.spec["context"]["limits"]["rate_mbit"] == 5
    assert AuditEvent.objects.filter(action="server.traffic_exceeded").count() == 1
    # Every spec sent while throttled carries the lower rate, and another report does nothing more.
    assert context_spec(server).limits.rate_mbit == 5
    finish_operation(operation.pk, ok=True)
    over_allowance(server, 1.5)
    assert last_operation(server) == operation
    client.force_login(small_allowance.login)
    page = client.get(server.get_absolute_url()).content.decode()
    assert "held to 5 Mbit/s until the month ends" in page


def test_a_busy_server_is_throttled_at_the_next_report(small_allowance):
    server = small_allowance.server
    from contexts.services import request_action

    stop = request_action(server, OperationKind.STOP, None)
    over_allowance(server, 2)
    server.refresh_from_db()
    assert server.traffic_state == TrafficState.WITHIN  # nothing could be queued: nothing recorded
    finish_operation(stop.pk, ok=True)
    over_allowance(server, 2.5)
    server.refresh_from_db()
    assert server.traffic_state == TrafficState.THROTTLED and last_operation(server).kind == OperationKind.LIMITS


def test_a_suspending_plan_suspends_and_the_new_month_brings_it_back(small_allowance):
    server = small_allowance.server
    server.plan.traffic_policy = TrafficPolicy.SUSPEND
    server.plan.save()
    over_allowance(server, 3)
    server.refresh_from_db()
    suspend = last_operation(server)
    assert server.traffic_state == TrafficState.SUSPENDED and suspend.kind == OperationKind.SUSPEND
    finish_operation(suspend.pk, ok=True)
    server.refresh_from_db()
    assert server.state == ServerState.SUSPENDED
    # Still this month: nothing to lift.
    assert traffic.renew() == []
    next_month = traffic.next_month(server.traffic_period)
    assert traffic.renew(next_month) == [server.pk]
    server.refresh_from_db()
    unsuspend = last_operation(server)
    assert server.traffic_state == TrafficState.WITHIN and unsuspend.kind == OperationKind.UNSUSPEND
    assert unsuspend.spec["params"]["resume"] is True


def test_a_bigger_plan_lifts_the_throttle_at_once(small_allowance):
    server = small_allowance.server
    over_allowance(server, 2)
    finish_operation(last_operation(server).pk, ok=True)
    server.plan.traffic_gib = 10
    server.plan.save()
    assert traffic.renew() == [server.pk]
    server.refresh_from_db()
    operation = last_operation(server)
    assert operation.kind == OperationKind.LIMITS and operation.spec["context"]["limits"]["rate_mbit"] == 100


def test_a_billing_plan_only_shows_it(small_allowance, client):
    server = small_allowance.server
    server.plan.traffic_policy = TrafficPolicy.BILL
    server.plan.save()
    over_allowance(server, 2)
    server.refresh_from_db()
    assert server.traffic_state == TrafficState.WITHIN and last_operation(server).kind == OperationKind.CREATE
    client.force_login(small_allowance.login)
    assert "the excess is billed" in client.get(server.get_absolute_url()).content.decode()


def test_next_month():
    assert traffic.next_month(datetime.date(2026, 12, 31)) == datetime.date(2027, 1, 1)
    assert traffic.next_month(datetime.date(2026, 1, 31)) == datetime.date(2026, 2, 1)


def test_a_failed_throttle_is_tried_again_at_the_next_report(small_allowance):
    server = small_allowance.server
    over_allowance(server, 2)
    finish_operation(last_operation(server).pk, ok=False, error="the host could not")
    server.refresh_from_db()
    assert server.traffic_state == TrafficState.WITHIN  # put back: nothing holds on the host
    over_allowance(server, 2.5)
    server.refresh_from_db()
    assert server.traffic_state == TrafficState.THROTTLED
    assert Operation.objects.filter(server=server, kind=OperationKind.LIMITS).count() == 2


@pytest.fixture
def suspended_for_traffic(small_allowance):
    server = small_allowance.server
    server.plan.traffic_policy = TrafficPolicy.SUSPEND
    server.plan.save()
    over_allowance(server, 3)
    finish_operation(last_operation(server).pk, ok=True)
    server.refresh_from_db()
    assert server.state == ServerState.SUSPENDED and server.traffic_state == TrafficState.SUSPENDED
    return small_allowance


def test_staff_letting_it_through_holds_for_the_month(suspended_for_traffic, world):
    server = suspended_for_traffic.server
    from contexts.services import request_action

    unsuspend = request_action(server, OperationKind.UNSUSPEND, world.staff)
    finish_operation(unsuspend.pk, ok=True)
    server.refresh_from_db()
    assert server.state == ServerState.RUNNING and server.traffic_state == TrafficState.WAIVED
    over_allowance(server, 4)
    assert last_operation(server) == unsuspend  # not suspended again this month
    assert traffic.renew(traffic.next_month(server.traffic_period)) == [server.pk]
    server.refresh_from_db()
    assert server.traffic_state == TrafficState.WITHIN and last_operation(server) == unsuspend


def test_billing_takes_over_a_traffic_suspension_and_the_month_does_not_lift_it(suspended_for_traffic, world):
    server = suspended_for_traffic.server
    from contexts.services import request_action

    suspension = last_operation(server)
    assert request_action(server, OperationKind.SUSPEND, world.staff) == suspension  # no 409: it is so
    server.refresh_from_db()
    assert server.traffic_state == TrafficState.WAIVED
    traffic.renew(traffic.next_month(suspension.created_at.date()))
    server.refresh_from_db()
    assert server.state == ServerState.SUSPENDED and last_operation(server) == suspension


def test_paying_the_invoice_does_not_lift_a_traffic_suspension(suspended_for_traffic, world):
    from customers import services as customer_services

    server = suspended_for_traffic.server
    customer = server.customer
    customer_services.suspend_customer(customer, world.staff)
    assert customer_services.unsuspend_customer(customer, world.staff) == []
    server.refresh_from_db()
    assert server.state == ServerState.SUSPENDED and server.traffic_state == TrafficState.SUSPENDED


def test_a_bigger_plan_lifts_the_throttle_as_soon_as_it_applies(small_allowance, world):
    from contexts.services import change_plan
    from tests.conftest import make_plan

    server = small_allowance.server
    over_allowance(server, 2)
    finish_operation(last_operation(server).pk, ok=True)
    bigger = make_plan("bigger", traffic_gib=100, rate_mbit=100)
    operation = change_plan(server, bigger, world.staff)
    assert operation.spec["context"]["limits"]["rate_mbit"] == bigger.throttled_rate_mbit  # throttled while it runs
    finish_operation(operation.pk, ok=True)
    server.refresh_from_db()
    lift = last_operation(server)
    assert server.traffic_state == TrafficState.WITHIN and lift.kind == OperationKind.LIMITS
    assert lift.spec["context"]["limits"]["rate_mbit"] == 100


def test_each_month_keeps_the_allowance_it_was_billed_against(small_allowance):
    from customers.models import UsageRecord

    server = small_allowance.server
    over_allowance(server, 0.1)
    assert UsageRecord.objects.get(server=server).traffic_allowance_gib == 1
