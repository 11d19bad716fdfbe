"""Celery tasks on the panel side, and how operations are sent to their host.

Host work is sent by task name to the host's own queue; a host worker (a later part of the
pipeline) runs it and returns an outcome, which the chained callback records here on `panel`.
"""

from celery import chain, shared_task, signature
from django.conf import settings
from django.db import OperationalError

HOST_OPERATION_TASK = "contexts.host.run_operation"


# A deadlock or a lost connection must not lose the outcome: retry those, with backoff.
@shared_task(
    name="contexts.record_outcome",
    queue=settings.PANEL_QUEUE,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=8,
)
def record_outcome(outcome: dict) -> None:
    """Record what the host reported: {"operation": id, "ok": bool, "error": str, "log": str}."""
    from . import services

    services.finish_operation(
        outcome["operation"], ok=bool(outcome.get("ok")), error=outcome.get("error", ""), log=outcome.get("log", "")
    )


def enqueue_operation(operation_id: str, queue: str, spec: dict) -> None:
    """Send the spec to the host's queue, with the outcome callback chained on the panel queue.

    The message id is the operation id, so a message on the broker can be traced to its row.
    """
    chain(
        signature(HOST_OPERATION_TASK, args=(spec,), queue=queue, task_id=str(operation_id)),
        record_outcome.s().set(queue=settings.PANEL_QUEUE),
    ).apply_async()
