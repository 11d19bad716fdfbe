"""A server's traffic this billing month against its plan's allowance (in and out both count)."""

from dataclasses import dataclass

from django.utils import timezone

from customers.models import UsageRecord

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


def this_month(server, today=None) -> MonthTraffic:
    today = today or timezone.localdate()
    record = UsageRecord.objects.filter(server=server, period_start=today.replace(day=1)).first()
    return MonthTraffic(
        in_bytes=record.traffic_in_bytes if record else 0,
        out_bytes=record.traffic_out_bytes if record else 0,
        allowance_gib=server.plan.traffic_gib,
    )
