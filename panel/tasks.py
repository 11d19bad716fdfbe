"""The panel's own periodic work (beat)."""

from celery import shared_task
from django.conf import settings


@shared_task(name="panel.prune_idempotency_keys", queue=settings.PANEL_QUEUE)
def prune_idempotency_keys() -> int:
    """Answers kept for Idempotency-Key replays go after IDEMPOTENCY_KEEP_HOURS."""
    from .api import idempotency

    return idempotency.prune()


@shared_task(name="panel.deliver_webhook", queue=settings.PANEL_QUEUE)
def deliver_webhook(delivery_id: int) -> str:
    from . import webhooks

    return webhooks.deliver(delivery_id).status


@shared_task(name="panel.send_due_webhooks", queue=settings.PANEL_QUEUE)
def send_due_webhooks() -> int:
    from . import webhooks

    return webhooks.send_due()
