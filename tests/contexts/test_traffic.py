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
