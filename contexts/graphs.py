"""A server's resource graphs: usage samples turned into charts the page draws as inline SVG.

Last hour by minute, last day by hour. A report writes a sample only when something changed, so a
gap means no CPU or traffic and the same memory and disk as before.
"""

import datetime
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Q, Subquery
from django.utils import timezone

from .engine.operations import GiB, MiB
from .models import UsageSample

RANGES = {
    "hour": {"span": UsageSample.Span.MINUTE, "count": 60, "label": "Last hour", "start_label": "60 min ago"},
    "day": {"span": UsageSample.Span.HOUR, "count": 24, "label": "Last day", "start_label": "24 h ago"},
}
WIDTH, HEIGHT = 600, 120
READINGS = ("start", "cpu_seconds", "memory_bytes", "disk_bytes", "net_in_bytes", "net_out_bytes")


@dataclass
class Series:
    label: str
    css: str
    values: list  # one per bucket; None where nothing is known yet
    segments: list[str] = field(default_factory=list)  # SVG polyline points, one string per unbroken run


@dataclass
class Chart:
    title: str
    unit: str
    limit: float | None
    series: list[Series]
    top: float = 0.0
    summary: str = ""

    @property
    def limit_y(self) -> float | None:
        """Where the plan's limit line goes, if it is within the drawing."""
        if not self.limit or self.limit > self.top:
            return None
        return round(HEIGHT - self.limit / self.top * HEIGHT, 1)


def bucket_start(now: datetime.datetime, span: int) -> datetime.datetime:
    """The start of the bucket of `span` seconds `now` falls in (buckets are aligned to the epoch)."""
    epoch = int(now.timestamp())
    return datetime.datetime.fromtimestamp(epoch - epoch % span, tz=datetime.UTC)


def bucket_starts(now: datetime.datetime, span: int, count: int) -> list:
    """The starts of the `count` buckets of `span` seconds up to the one under way."""
    current = bucket_start(now, span)
    return [current - datetime.timedelta(seconds=(count - 1 - i) * span) for i in range(count)]


def load(server, range_name: str, now=None) -> dict:
    """The charts of `server` over `range_name` ("hour" or "day"), as the template draws them."""
    now = now or timezone.now()
    shape = RANGES[range_name]
    span = shape["span"]
    starts = bucket_starts(now, span, shape["count"])
    mine = UsageSample.objects.filter(server=server, span=span)
    # The window and, in the same query, the last sample before it: its memory and disk carry on.
    last_before = mine.filter(start__lt=starts[0]).order_by("-start").values("pk")[:1]
    window = mine.filter(Q(start__gte=starts[0]) | Q(pk=Subquery(last_before))).order_by("start")
    samples = list(window.values_list(*READINGS, named=True))  # light rows: a day is 24, an hour 60
    earlier = samples.pop(0) if samples and samples[0].start < starts[0] else None
    charts = build(server, samples, earlier, starts, span, now)
    return {"range": range_name, "ranges": RANGES, "shape": shape, "charts": charts}


def build(server, samples, earlier, starts, span: int, now) -> list[Chart]:
    by_start = {s.start: s for s in samples}
    plan = server.plan
    cpu, memory, disk, net_in, net_out = [], [], [], [], []
    memory_now = earlier.memory_bytes if earlier else None
    disk_now = earlier.disk_bytes if earlier else None
    born = server.created_at
    for start in starts:
        end = start + datetime.timedelta(seconds=span)
        if end <= born:
            for values in (cpu, memory, disk, net_in, net_out):
                values.append(None)
            continue
        # The minute or hour under way counts as long as it has run, and at least one report's worth:
        # its first report carries what was used since the one before.
        seconds = min(span, max(settings.HOST_HEARTBEAT_SECONDS, (now - start).total_seconds()))
        sample = by_start.get(start)
        if sample is not None:
            memory_now = sample.memory_bytes
            if sample.disk_bytes is not None:
                disk_now = sample.disk_bytes
        cpu.append(sample.cpu_seconds / seconds if sample else 0.0)
        net_in.append(sample.net_in_bytes * 8 / seconds / 1e6 if sample else 0.0)
        net_out.append(sample.net_out_bytes * 8 / seconds / 1e6 if sample else 0.0)
        memory.append(memory_now / MiB if memory_now is not None else None)
        disk.append(disk_now / GiB if disk_now is not None else None)
    charts = [
        Chart("CPU", "cores", float(plan.cpu_cores), [Series("used", "cpu", cpu)]),
        Chart("Memory", "MiB", float(plan.memory_mib), [Series("used", "memory", memory)]),
        Chart("Disk", "GiB", float(plan.disk_gib), [Series("used", "disk", disk)]),
        Chart(
            "Network",
            "Mbit/s",
            float(plan.rate_mbit),
            [Series("in", "net-in", net_in), Series("out", "net-out", net_out)],
        ),
    ]
    for chart in charts:
        scale(chart)
    return charts


def scale(chart: Chart) -> None:
    """Fit the chart: up to its limit when used much, else to what was used, so small use still shows."""
    seen = [v for s in chart.series for v in s.values if v is not None]
    peak = max(seen, default=0.0)
    top = chart.limit if chart.limit and peak > chart.limit / 4 else peak * 1.25
    chart.top = max(top, peak, 1e-9)
    for series in chart.series:
        series.segments = segments(series.values, chart.top)
    chart.summary = summary(chart)


def segments(values: list, top: float) -> list[str]:
    step = WIDTH / max(1, len(values) - 1)
    runs, run = [], []
    for i, value in enumerate(values):
        if value is None:
            if run:
                runs.append(run)
            run = []
            continue
        y = HEIGHT - min(value, top) / top * HEIGHT
        run.append(f"{i * step:.1f},{y:.1f}")
    if run:
        runs.append(run)
    # A single known point still shows, as a short flat line.
    return [" ".join(r if len(r) > 1 else r + [r[0]]) for r in runs]


def number(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def summary(chart: Chart) -> str:
    """What a screen reader says, and what anyone reads under the chart."""
    parts = []
    for series in chart.series:
        known = [v for v in series.values if v is not None]
        if not known:
            parts.append(f"{series.label}: no data yet")
            continue
        parts.append(
            f"{series.label}: now {number(known[-1])}, peak {number(max(known))}, "
            f"average {number(sum(known) / len(known))} {chart.unit}"
        )
    limit = f" (plan: {number(chart.limit)} {chart.unit})" if chart.limit else ""
    return f"{chart.title} {'; '.join(parts)}{limit}"
