"""A server's traffic this billing month against its plan's allowance (in and out both count), and
the plan's policy once it is exceeded: throttle the rate or suspend, until the month is over."""

import datetime
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from customers.choices import BillingState, TrafficPolicy
from customers.models import UsageRecord
from panel import audit, webhooks

from . import lifecycle, services
from .choices import OperationKind, ServerState, TrafficState
from .engine.operations import GiB
from .exceptions import ServiceError
from .models import Operation, VirtualServer


@dataclass
class MonthTraffic:
    in_bytes: int
    out_bytes: int
    allowance_gib: int

    @classmethod
    def of(cls, record, allowance_gib: int) -> "MonthTraffic":
        """The traffic of a month's usage `record` (None: nothing yet) against `allowance_gib`."""
        if record is None:
            return cls(0, 0, allowance_gib)
        return cls(record.traffic_in_bytes, record.traffic_out_bytes, allowance_gib)

    @property
    def used_gib(self) -> float:
        return (self.in_bytes + self.out_bytes) / GiB

    @property
    def in_gib(self) -> float:
        return self.in_bytes / GiB

    @property
    def out_gib(self) -> float:
        return self.out_bytes / GiB

    @property
    def exceeded(self) -> bool:
        return self.used_gib > self.allowance_gib

    @property
    def renews_on(self) -> datetime.date:
        return next_month(timezone.localdate())


def month_start(day: datetime.date | None = None) -> datetime.date:
    """The first day of the billing month of `day` (today by default)."""
    return (day or timezone.localdate()).replace(day=1)


def next_month(day: datetime.date) -> datetime.date:
    return (day.replace(day=1) + datetime.timedelta(days=32)).replace(day=1)


def this_month(server, today=None) -> MonthTraffic:
    record = UsageRecord.objects.filter(server=server, period_start=month_start(today)).first()
    return MonthTraffic.of(record, server.plan.traffic_gib)


def _undo(server) -> dict:
    """What a failed operation puts back: the server's traffic state as it is now."""
    period = server.traffic_period.isoformat() if server.traffic_period else None
    return {"traffic": {"state": server.traffic_state, "period": period}}


def _switch(server, state: str, period, kind: str | None) -> bool:
    """Record `state` and queue `kind` (if any) together, the operation's undo able to put the state
    back; False, with nothing changed, when the server is busy or in no state for it."""
    undo = _undo(server)
    try:
        with transaction.atomic():
            server.traffic_state, server.traffic_period = state, period
            server.save(update_fields=["traffic_state", "traffic_period", "updated_at"])
            if kind:
                services.queue_operation(server, kind, None, undo=undo)
    except ServiceError:
        server.refresh_from_db(fields=["traffic_state", "traffic_period"])
        return False
    return True


def enforce(server, record) -> str | None:
    """Apply the plan's traffic policy to `server` (locked by the caller) once its month's traffic in
    `record` passes the allowance. Returns what was done, or None. A busy server is left for the next
    report: its state says nothing was applied yet."""
    plan = server.plan
    if server.traffic_state or plan.traffic_policy == TrafficPolicy.BILL:
        return None
    month = MonthTraffic.of(record, plan.traffic_gib)
    if not month.exceeded:
        return None
    if plan.traffic_policy == TrafficPolicy.THROTTLE:
        target, kind = TrafficState.THROTTLED, OperationKind.LIMITS
    else:
        target, kind = TrafficState.SUSPENDED, OperationKind.SUSPEND
    if not _switch(server, target, record.period_start, kind):
        return None
    details = {"used_gib": round(month.used_gib, 3), "allowance_gib": plan.traffic_gib, "policy": target}
    audit.record(None, "server.traffic_exceeded", server, **details)
    webhooks.emit("traffic.exceeded", {"server": server.pk, "customer": server.customer_id, **details})
    return target


def renew(today=None) -> list[int]:
    """Beat: lift what the policy did once the month that was exceeded is over, or once the server's
    plan covers what it used (or only bills it). A busy server is left for the next round."""
    month = month_start(today)
    lifted = []
    for pk in VirtualServer.objects.live().exclude(traffic_state=TrafficState.WITHIN).values_list("pk", flat=True):
        with transaction.atomic():
            if renew_one(services.locked(VirtualServer(pk=pk)), month):
                lifted.append(pk)
    return lifted


def renew_one(server, month) -> bool:
    """Lift the policy on `server` (locked by the caller) if it is due. True when lifted."""
    if not server.traffic_state:
        return False
    if (
        server.traffic_period == month
        and server.plan.traffic_policy != TrafficPolicy.BILL
        and this_month(server, month).exceeded
    ):
        return False  # still over, this month
    was = server.traffic_state
    kind = None
    if was == TrafficState.THROTTLED:
        kind = OperationKind.LIMITS
    elif (
        was == TrafficState.SUSPENDED
        and server.state == ServerState.SUSPENDED
        and server.customer.billing_state == BillingState.ACTIVE
    ):
        kind = OperationKind.UNSUSPEND
    if not _switch(server, TrafficState.WITHIN, None, kind):
        return False
    audit.record(None, "server.traffic_renewed", server, was=was)
    return True


def person_acts(server, kind: str, actor) -> tuple[Operation | None, dict]:
    """A person (staff or a billing system) suspends or unsuspends `server` (locked by the caller)
    while the traffic policy holds it: from then on it is theirs for the rest of the month. Returns
    the operation that already answers the request, if any, and the undo for the one to queue."""
    if actor is None or server.traffic_state != TrafficState.SUSPENDED:
        return None, {}
    undo = _undo(server)
    if kind == OperationKind.SUSPEND and server.state == ServerState.SUSPENDED:
        suspension = services.last_suspension(server)
        if suspension is None:
            return None, {}
        services.check_permission(server, lifecycle.ACTIONS[OperationKind.SUSPEND], actor)
        undo = {}  # already done: nothing is queued
        details = {"was": "traffic", "now": "asked for"}
        audit.record(actor, "server.suspension_reason", server, **details)
    elif kind != OperationKind.UNSUSPEND:
        return None, {}
    else:
        suspension = None
    server.traffic_state = TrafficState.WAIVED
    server.save(update_fields=["traffic_state", "updated_at"])
    return suspension, undo
