"""A server's traffic this billing month against its plan's allowance (in and out both count), and
the plan's policy once it is exceeded: throttle the rate or suspend, until the month is over."""

import datetime
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from customers.choices import BillingState, TrafficPolicy
from customers.models import UsageRecord
from panel import audit, webhooks

from . import services
from .choices import OperationKind, ServerState, TrafficState
from .exceptions import ServiceError
from .models import VirtualServer

GIB = 1024**3


@dataclass
class MonthTraffic:
    in_bytes: int
    out_bytes: int
    allowance_gib: int

    @property
    def used_gib(self) -> float:
        return (self.in_bytes + self.out_bytes) / GIB

    @property
    def in_gib(self) -> float:
        return self.in_bytes / GIB

    @property
    def out_gib(self) -> float:
        return self.out_bytes / GIB

    @property
    def percent(self) -> int:
        if not self.allowance_gib:
            return 100 if self.used_gib else 0
        return min(100, int(self.used_gib * 100 / self.allowance_gib))

    @property
    def exceeded(self) -> bool:
        return self.used_gib > self.allowance_gib

    @property
    def renews_on(self) -> datetime.date:
        return next_month(timezone.localdate())


def next_month(day: datetime.date) -> datetime.date:
    return (day.replace(day=1) + datetime.timedelta(days=32)).replace(day=1)


def this_month(server, today=None) -> MonthTraffic:
    today = today or timezone.localdate()
    record = UsageRecord.objects.filter(server=server, period_start=today.replace(day=1)).first()
    return MonthTraffic(
        in_bytes=record.traffic_in_bytes if record else 0,
        out_bytes=record.traffic_out_bytes if record else 0,
        allowance_gib=server.plan.traffic_gib,
    )


def used_bytes(record) -> int:
    return record.traffic_in_bytes + record.traffic_out_bytes


def enforce(server, record) -> str | None:
    """Apply the plan's traffic policy to `server` (locked by the caller) once its month's traffic in
    `record` passes the allowance. Returns what was done, or None. A busy server is left for the next
    report: its state says nothing was applied yet."""
    plan = server.plan
    if server.traffic_state or plan.traffic_policy == TrafficPolicy.BILL:
        return None
    if used_bytes(record) <= plan.traffic_gib * GIB:
        return None
    if plan.traffic_policy == TrafficPolicy.SUSPEND and server.state not in (ServerState.RUNNING, ServerState.STOPPED):
        return None
    target = TrafficState.THROTTLED if plan.traffic_policy == TrafficPolicy.THROTTLE else TrafficState.SUSPENDED
    # If the host fails the operation, the undo puts the state back and the next report tries again.
    undo = {"traffic": {"state": server.traffic_state, "period": None}}
    try:
        with transaction.atomic():
            server.traffic_state, server.traffic_period = target, record.period_start
            server.save(update_fields=["traffic_state", "traffic_period", "updated_at"])
            kind = OperationKind.LIMITS if target == TrafficState.THROTTLED else OperationKind.SUSPEND
            services.queue_operation(server, kind, None, undo=undo)
    except ServiceError:
        server.refresh_from_db(fields=["traffic_state", "traffic_period"])
        return None
    details = {"used_gib": round(used_bytes(record) / GIB, 3), "allowance_gib": plan.traffic_gib, "policy": target}
    audit.record(None, "server.traffic_exceeded", server, details=details)
    webhooks.emit("traffic.exceeded", {"server": server.pk, "customer": server.customer_id, **details})
    return target


def renew(today=None) -> list[int]:
    """Beat: lift what the policy did once the month that was exceeded is over, or once the server's
    plan covers what it used (or only bills it). A busy server is left for the next round."""
    month = (today or timezone.localdate()).replace(day=1)
    lifted = []
    for pk in VirtualServer.objects.live().exclude(traffic_state=TrafficState.WITHIN).values_list("pk", flat=True):
        with transaction.atomic():
            if renew_one(services.locked(VirtualServer(pk=pk)), month):
                lifted.append(pk)
    return lifted


def renew_one(server, month) -> bool:
    """Lift the policy on `server` (locked by the caller) if it is due. True when lifted."""
    plan = server.plan
    if not server.traffic_state:
        return False
    still_over = used_bytes_now(server, month) > plan.traffic_gib * GIB and plan.traffic_policy != TrafficPolicy.BILL
    if server.traffic_period == month and still_over:
        return False
    was, period = server.traffic_state, server.traffic_period
    undo = {"traffic": {"state": was, "period": period.isoformat() if period else None}}
    try:
        with transaction.atomic():
            server.traffic_state, server.traffic_period = TrafficState.WITHIN, None
            server.save(update_fields=["traffic_state", "traffic_period", "updated_at"])
            # The operation's undo puts the state back if the host fails it: the next round tries again.
            if was == TrafficState.THROTTLED:
                services.queue_operation(server, OperationKind.LIMITS, None, undo=undo)
            elif (
                was == TrafficState.SUSPENDED
                and server.state == ServerState.SUSPENDED
                and server.customer.billing_state == BillingState.ACTIVE
            ):
                services.queue_operation(server, OperationKind.UNSUSPEND, None, undo=undo)
    except ServiceError:
        server.refresh_from_db(fields=["traffic_state", "traffic_period"])
        return False
    audit.record(None, "server.traffic_renewed", server, details={"was": was})
    return True


def used_bytes_now(server, month) -> int:
    record = UsageRecord.objects.filter(server=server, period_start=month).first()
    return used_bytes(record) if record else 0
