"""Celery tasks on the panel side, and how operations are sent to their host.

Host work is sent by task name to the host's own queue; the host agent (`manage.py hostagent`,
tasks in contexts/host_tasks.py) runs it and returns an outcome, which the chained callback records
here on `panel`. Hosts also send progress and periodic reports here; beat runs the watchdogs.
"""

from celery import chain, shared_task, signature
from django.conf import settings
from django.db import OperationalError

HOST_OPERATION_TASK = "contexts.host.run_operation"
HOST_REPORT_NOW_TASK = "contexts.host.report_now"
# Seconds a host may spend on one operation before it gives up (soft) or is stopped (hard).
TIME_LIMITS = {"create": 900, "reinstall": 900, "destroy": 300, "change_plan": 300}
DEFAULT_TIME_LIMIT = 180

# A deadlock or a lost connection must not lose a report: retry those, with backoff.
RETRY_DB = dict(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=8)


@shared_task(name="contexts.record_outcome", queue=settings.PANEL_QUEUE, **RETRY_DB)
def record_outcome(outcome: dict) -> None:
    """Record what the host reported: {"operation", "ok", "error", "log", "facts"}."""
    from . import services

    services.finish_operation(
        outcome["operation"],
        ok=bool(outcome.get("ok")),
        error=str(outcome.get("error", "")),
        log=str(outcome.get("log", "")),
        facts=outcome.get("facts"),
    )


@shared_task(name="contexts.report_progress", queue=settings.PANEL_QUEUE, **RETRY_DB)
def report_progress(operation_id: str, progress: int, step: str) -> None:
    from . import services

    services.report_progress(operation_id, progress, str(step))


@shared_task(name="contexts.host_report", queue=settings.PANEL_QUEUE, **RETRY_DB)
def host_report(report: dict) -> None:
    """A host's heartbeat: registers it the first time, then corrects drift and records usage."""
    from . import reconcile

    reconcile.apply_report(report)


@shared_task(name="contexts.check_hosts", queue=settings.PANEL_QUEUE, **RETRY_DB)
def check_hosts() -> list[str]:
    """Beat: hosts silent past HOST_SILENT_AFTER_SECONDS go offline (their servers show as unknown)."""
    from . import reconcile

    return reconcile.mark_silent_hosts()


@shared_task(name="contexts.watch_operations", queue=settings.PANEL_QUEUE, **RETRY_DB)
def watch_operations() -> dict:
    """Beat: operations with no news are sent again once, then failed visibly; never left hanging."""
    from . import reconcile

    return reconcile.watch_operations()


@shared_task(name="contexts.prune_usage_samples", queue=settings.PANEL_QUEUE, **RETRY_DB)
def prune_usage_samples() -> int:
    """Beat, hourly: graph samples past their keeping time go."""
    from . import reconcile

    return reconcile.prune_usage_samples()


@shared_task(name="contexts.renew_traffic", queue=settings.PANEL_QUEUE, **RETRY_DB)
def renew_traffic() -> list[int]:
    """Beat, hourly: a throttle or suspension for traffic ends with the month that was exceeded."""
    from . import traffic

    return traffic.renew()


def enqueue_operation(operation_id: str, queue: str, spec: dict) -> None:
    """Send the spec to the host's queue, with the outcome callback chained on the panel queue.

    The message id is the operation id, so a message on the broker can be traced to its row.
    """
    soft = TIME_LIMITS.get(spec.get("kind"), DEFAULT_TIME_LIMIT)
    chain(
        signature(
            HOST_OPERATION_TASK,
            args=(spec,),
            queue=queue,
            task_id=str(operation_id),
            soft_time_limit=soft,
            time_limit=soft + 60,
        ),
        record_outcome.s().set(queue=settings.PANEL_QUEUE),
    ).apply_async()


def ask_for_report(queue: str) -> None:
    signature(HOST_REPORT_NOW_TASK, queue=queue).apply_async()
