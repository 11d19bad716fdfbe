"""What the panel does with the hosts' reports: registration, heartbeats, drift, usage, watchdogs.

Hosts are the truth about what runs; the panel is the truth about what should. A report corrects
the panel's record where nothing is in flight, and never destroys anything on a host by itself.
"""

import datetime
import logging
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import BigIntegerField, F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from customers.models import UsageRecord
from panel import audit

from . import graphs, services, tasks, traffic
from .choices import ACTIVE_OPERATION_STATUSES, HostState, ServerState
from .models import Host, Operation, Template, UsageSample, VirtualServer
from .validators import validate_hostname

log = logging.getLogger("contexts.reconcile")

# States a report may correct; the rest are in flight (provisioning, destroying) or final.
SETTLED = (ServerState.RUNNING, ServerState.STOPPED, ServerState.SUSPENDED)
COUNTERS = ("cpu_seconds", "net_in_bytes", "net_out_bytes")
# A report's "unsafe" sentences are shown to staff as they are: keep them few and short.
UNSAFE_NOTES_MAX, UNSAFE_NOTE_CHARS = 10, 300


def unsafe_notes(report: dict) -> list[str]:
    """The report's sentences on why its guests run unsafely; none when it says nothing (or nonsense)."""
    notes = report.get("unsafe")
    if not isinstance(notes, list):
        return []
    return [note[:UNSAFE_NOTE_CHARS] for note in notes if isinstance(note, str) and note.strip()][:UNSAFE_NOTES_MAX]


def _register(name: str, capacity: dict) -> Host:
    # A host that registers itself waits in maintenance: staff give it IP pools, check its capacity
    # and overcommit, then make it active; nothing is placed on a machine nobody has looked at.
    host, created = Host.objects.get_or_create(
        name=name,
        defaults={
            "cpus": Decimal(int(capacity.get("cpus") or 1)),
            "memory_mib": int(capacity.get("memory_mib") or 0),
            "disk_gib": int(capacity.get("disk_gib") or 0),
            "state": HostState.MAINTENANCE,
        },
    )
    if created:
        audit.record(None, "host.registered", host, "", host.state, capacity=capacity)
    return host


def apply_report(report: dict) -> Host | None:
    name = str(report.get("host", ""))
    try:
        validate_hostname(name)
    except ValidationError:
        log.warning("ignoring a report from a host with an invalid name %r", name[:100])
        return None
    reported_at = datetime.datetime.fromtimestamp(float(report.get("time") or 0), tz=datetime.UTC)
    with transaction.atomic():
        host = _register(name, report.get("capacity") or {})
        host = Host.objects.select_for_update(of=("self",)).get(pk=host.pk)
        host.last_heartbeat = timezone.now()
        if host.state == HostState.OFFLINE:
            audit.record(None, "host.state", host, host.state, HostState.ACTIVE, reason="reporting again")
            host.state = HostState.ACTIVE
        contexts = {c["name"]: c for c in report.get("contexts") or [] if isinstance(c, dict) and "name" in c}
        servers = {
            s.name: s for s in VirtualServer.objects.live().filter(host=host).only("pk")
        }  # names and ids: each is read locked below
        unknown = sorted(set(contexts) - set(servers))
        if unknown != host.unknown_contexts:
            if unknown:
                audit.record(None, "host.unknown_contexts", host, contexts=unknown)
            host.unknown_contexts = unknown
        notes = unsafe_notes(report)
        if notes != host.unsafe_notes:
            audit.record(None, "host.unsafe", host, notes=notes)
            host.unsafe_notes = notes
        host.save(update_fields=["last_heartbeat", "state", "unknown_contexts", "unsafe_notes"])
        _link_templates(host, report.get("templates") or [])
    for name, server in servers.items():
        with transaction.atomic():
            _reconcile_server(server.pk, contexts.get(name), reported_at)
    return host


def _link_templates(host: Host, names: list[str]) -> None:
    present = set(Template.objects.filter(name__in=names))
    current = set(host.templates.all())
    host.templates.add(*(present - current))
    host.templates.remove(*(current - present))


def _reconcile_server(pk: int, context: dict | None, reported_at) -> None:
    server = services.locked(VirtualServer(pk=pk))
    if context is not None:
        record_usage(server, context)
    if server.state not in SETTLED or server.operations.filter(status__in=ACTIVE_OPERATION_STATUSES).exists():
        return  # in flight: the operation's outcome will say what holds
    if server.updated_at >= reported_at - datetime.timedelta(seconds=2):
        return  # changed since the host looked: the next report will tell
    if context is None:
        services.set_state(server, ServerState.FAILED, None, reason="its context is missing on the host")
        return
    if context.get("state") == "running" and server.state == ServerState.STOPPED:
        services.set_state(server, ServerState.RUNNING, None, reason="the host reports it running")
    elif context.get("state") == "stopped" and server.state == ServerState.RUNNING:
        services.set_state(server, ServerState.STOPPED, None, reason="the host reports it stopped")
    elif context.get("state") == "running" and server.state == ServerState.SUSPENDED:
        audit.record(None, "server.drift", server, reason="suspended but running on the host")


def record_usage(server: VirtualServer, context: dict) -> None:
    """Add what the server used since the last report to this month's UsageRecord and to the minute
    and hour samples its graphs are drawn from. The caller holds the server's row lock."""
    last = server.counters or {}
    delta = {}
    for key in COUNTERS:
        now = float(context.get(key) or 0)
        before = float(last.get(key) or 0)
        delta[key] = now - before if now >= before else now  # a counter that went down restarted from zero
    gauges = {
        "memory_bytes": int(context.get("memory_bytes") or 0),
        "memory_peak_bytes": int(context.get("memory_peak_bytes") or 0),
        "disk_bytes": context.get("disk_bytes"),
    }
    if not any(delta.values()) and all(last.get(key) == value for key, value in gauges.items()):
        return  # an idle server between two reports: nothing to write (graphs read a gap as "no change")
    now = timezone.now()
    start = traffic.month_start(timezone.localdate(now))
    end = traffic.next_month(start) - datetime.timedelta(days=1)
    record, _ = UsageRecord.objects.select_for_update().get_or_create(
        server=server, period_start=start, defaults={"period_end": end}
    )
    record.cpu_seconds += delta["cpu_seconds"]
    record.traffic_in_bytes += int(delta["net_in_bytes"])
    record.traffic_out_bytes += int(delta["net_out_bytes"])
    record.peak_memory_bytes = max(record.peak_memory_bytes, gauges["memory_peak_bytes"])
    if gauges["disk_bytes"] is not None:
        record.disk_bytes = int(gauges["disk_bytes"])
    record.traffic_allowance_gib = server.plan.traffic_gib  # what the month is billed against
    record.save()
    traffic.enforce(server, record)
    for span in UsageSample.Span:
        _add_sample(server, span, now, delta, gauges)
    server.counters = {key: context.get(key) or 0 for key in COUNTERS} | gauges
    server.save(update_fields=["counters"])


def _add_sample(server, span: int, now, delta: dict, gauges: dict) -> None:
    """Add to the sample of the `span` `now` falls in: one UPDATE, and an INSERT when it is the span's
    first report (the caller's lock on the server keeps two reports from both inserting)."""
    start = graphs.bucket_start(now, span)
    added = {
        "cpu_seconds": delta["cpu_seconds"],
        "net_in_bytes": int(delta["net_in_bytes"]),
        "net_out_bytes": int(delta["net_out_bytes"]),
    }
    latest = {"disk_bytes": int(gauges["disk_bytes"])} if gauges["disk_bytes"] is not None else {}
    memory = gauges["memory_bytes"]
    changed = UsageSample.objects.filter(server=server, span=span, start=start).update(
        **{field: F(field) + value for field, value in added.items()},
        memory_bytes=Greatest("memory_bytes", Value(memory, output_field=BigIntegerField())),
        **latest,
    )
    if not changed:
        UsageSample.objects.create(server=server, span=span, start=start, memory_bytes=memory, **added, **latest)


def prune_usage_samples() -> int:
    """Minute samples live USAGE_MINUTES_KEPT_HOURS, hour samples USAGE_HOURS_KEPT_DAYS: graphs only."""
    now = timezone.now()
    keep = {
        UsageSample.Span.MINUTE: datetime.timedelta(hours=settings.USAGE_MINUTES_KEPT_HOURS),
        UsageSample.Span.HOUR: datetime.timedelta(days=settings.USAGE_HOURS_KEPT_DAYS),
    }
    removed = 0
    for span, age in keep.items():
        removed += UsageSample.objects.filter(span=span, start__lt=now - age).delete()[0]
    return removed


def mark_silent_hosts() -> list[str]:
    limit = timezone.now() - datetime.timedelta(seconds=settings.HOST_SILENT_AFTER_SECONDS)
    silent = []
    with transaction.atomic():
        for host in Host.objects.select_for_update().filter(state=HostState.ACTIVE, last_heartbeat__lt=limit):
            host.state = HostState.OFFLINE
            host.save(update_fields=["state"])
            audit.record(None, "host.state", host, HostState.ACTIVE, HostState.OFFLINE, reason="no heartbeat")
            silent.append(host.name)
    return silent


def watch_operations() -> dict:
    """Operations without news for OPERATION_STALL_SECONDS are sent again (host tasks are idempotent, and
    the broker may have lost the message); past OPERATION_GIVE_UP_SECONDS they fail with a reason."""
    now = timezone.now()
    stalled = now - datetime.timedelta(seconds=settings.OPERATION_STALL_SECONDS)
    give_up = now - datetime.timedelta(seconds=settings.OPERATION_GIVE_UP_SECONDS)
    done = {"resent": [], "failed": []}
    for operation in Operation.objects.filter(status__in=ACTIVE_OPERATION_STATUSES, updated_at__lt=stalled):
        if operation.created_at < give_up:
            services.finish_operation(
                operation.pk,
                ok=False,
                error=(
                    f"The host {operation.server.host} did not finish this within "
                    f"{settings.OPERATION_GIVE_UP_SECONDS // 60} minutes. The next report from the host shows "
                    "the server's real state; then try again."
                ),
            )
            done["failed"].append(str(operation.pk))
            continue
        with transaction.atomic():
            locked = Operation.objects.select_for_update().get(pk=operation.pk)
            if locked.is_finished or locked.updated_at >= stalled:
                continue
            locked.sends += 1
            locked.save(update_fields=["sends", "updated_at"])
        try:
            tasks.enqueue_operation(operation.pk, operation.server.host.queue, locked.spec)
        except Exception as exc:  # the broker is still down: the next round tries again
            log.warning("could not send operation %s again: %s", operation.pk, exc)
            continue
        done["resent"].append(str(operation.pk))
    return done
