"""Webhooks: events the panel announces to URLs staff register, signed, retried with backoff.

A receiver checks `X-Panel-Signature: sha256=<hex>`, the HMAC-SHA256 with its secret of
`<X-Panel-Timestamp>.<body>`, and may refuse old timestamps against replays.
"""

import datetime
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import DeliveryStatus, Webhook, WebhookDelivery

TIMEOUT_SECONDS = 10
# A retry's message may arrive this much before its time (clocks) and still be sent.
EARLY = datetime.timedelta(seconds=5)
# Waits before each retry: 30 s, 1, 2, 4, 8, 16, 32 min and 1 h; then the delivery is failed.
BACKOFF_SECONDS = [30 * 2**n for n in range(7)] + [3600]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A receiver answers where it was registered: a redirect is a failure, never followed (it would
    turn the POST into a GET, possibly to somewhere inside the panel's network)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def emit(event: str, data: dict) -> list[WebhookDelivery]:
    """Record `event` for every active webhook that wants it; each is sent once the caller's
    transaction commits (an event about a change that rolled back is never sent)."""
    deliveries = []
    for webhook in Webhook.objects.filter(is_active=True):
        if event not in webhook.events:
            continue
        payload = {"id": str(uuid.uuid4()), "event": event, "created_at": timezone.now().isoformat(), "data": data}
        payload = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
        deliveries.append(WebhookDelivery.objects.create(webhook=webhook, event=event, payload=payload))
    for delivery in deliveries:
        transaction.on_commit(lambda pk=delivery.pk: send_later(pk))
    return deliveries


def send_later(pk: int, countdown: float = 0) -> None:
    from .tasks import deliver_webhook

    try:
        deliver_webhook.apply_async(args=(pk,), countdown=countdown)
    except Exception:  # the broker is down: the beat sweep sends what is due
        pass


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def deliver(pk: int) -> WebhookDelivery:
    """One attempt at sending a delivery; schedules the next one on failure. Safe to run twice: a
    delivery already delivered or given up is left alone."""
    now = timezone.now()
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().select_related("webhook").get(pk=pk)
        if delivery.status != DeliveryStatus.PENDING:
            return delivery
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now + EARLY:
            return delivery  # not due, or being sent right now by another worker (its lease)
        delivery.attempts += 1
        # A lease: whoever comes while this attempt runs (a late retry, the sweep) leaves it alone.
        delivery.next_attempt_at = now + datetime.timedelta(seconds=TIMEOUT_SECONDS + 30)
        delivery.save(update_fields=["attempts", "next_attempt_at"])
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        delivery.webhook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "hosting-panel-webhooks/1",
            "X-Panel-Event": delivery.event,
            "X-Panel-Delivery": str(delivery.pk),
            "X-Panel-Timestamp": timestamp,
            "X-Panel-Signature": signature(delivery.webhook.secret, timestamp, body),
        },
    )
    code, error = None, ""
    try:
        with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
            code = response.status
    except urllib.error.HTTPError as exc:
        code, error = exc.code, f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        error = str(getattr(exc, "reason", exc))
    delivery.last_status_code, delivery.last_error = code, error[:500]
    delivery.next_attempt_at = None
    if code is not None and 200 <= code < 300:
        delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, timezone.now()
    elif delivery.attempts > len(BACKOFF_SECONDS):
        delivery.status = DeliveryStatus.FAILED
    else:
        wait = BACKOFF_SECONDS[delivery.attempts - 1]
        delivery.next_attempt_at = timezone.now() + datetime.timedelta(seconds=wait)
    delivery.save(update_fields=["last_status_code", "last_error", "status", "delivered_at", "next_attempt_at"])
    if delivery.next_attempt_at is not None:
        send_later(delivery.pk, countdown=(delivery.next_attempt_at - timezone.now()).total_seconds())
    return delivery


def send_due(send=None) -> int:
    """Beat: queue again a retry whose message was lost, or a first attempt never made (the broker was
    down then). Only queued: the sending happens in tasks, never here in a loop."""
    send = send or send_later
    now = timezone.now()
    due = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).filter(
        Q(next_attempt_at__lt=now - datetime.timedelta(seconds=60))
        | Q(
            attempts=0,
            next_attempt_at__isnull=True,
            created_at__lt=now - datetime.timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS),
        )
    )
    pks = list(due.values_list("pk", flat=True)[:500])
    for pk in pks:
        send(pk)
    return len(pks)
