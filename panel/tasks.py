"""The panel's own periodic work (beat)."""

from celery import shared_task
from django.conf import settings


@shared_task(name="panel.prune_idempotency_keys", queue=settings.PANEL_QUEUE)
def prune_idempotency_keys() -> int:
    """Answers kept for Idempotency-Key replays go after IDEMPOTENCY_KEEP_HOURS."""
    from .api import idempotency

    return idempotency.prune()
