"""Webhooks: events reach the URLs that asked for them, signed; failures are retried with backoff and
logged; a receiver can check the signature with its secret."""

import datetime
import hashlib
import hmac
import http.server
import json
import threading

import pytest
from django.utils import timezone

from contexts.choices import OperationKind
from contexts.services import finish_operation, request_action
from panel import webhooks
from panel.models import DeliveryStatus, Webhook, WebhookDelivery


class Receiver:
    """An HTTP server on the loopback address that records what it gets and answers `status`."""

    def __init__(self):
        self.received, self.status = [], 200
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), body))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def test_an_event_is_delivered_signed_to_the_hooks_that_want_it(receiver, running, django_capture_on_commit_callbacks):
    wanted = Webhook.objects.create(url=receiver.url, events=["operation.finished"])
    Webhook.objects.create(url=receiver.url + "/other", events=["traffic.exceeded"])
    Webhook.objects.create(url=receiver.url + "/off", events=["operation.finished"], is_active=False)
    operation = request_action(running.server, OperationKind.STOP, running.login)
    with django_capture_on_commit_callbacks() as callbacks:
        finish_operation(operation.pk, ok=True)
    delivery = WebhookDelivery.objects.get()
    assert delivery.webhook == wanted and len(callbacks) == 1  # sent only once the change is committed
    webhooks.deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1 and delivery.last_status_code == 200
    ((headers, body),) = receiver.received
    payload = json.loads(body)
    assert payload["event"] == "operation.finished" and headers["X-Panel-Event"] == "operation.finished"
    assert payload["data"] == {
        "operation": str(operation.pk),
        "kind": "stop",
        "status": "succeeded",
        "error": "",
        "server": running.server.pk,
        "customer": running.customer.pk,
        "server_state": "stopped",
    }
    # What a receiver does: HMAC-SHA256 of "<timestamp>.<body>" with its secret.
    expected = hmac.new(wanted.secret.encode(), headers["X-Panel-Timestamp"].encode() + b"." + body, hashlib.sha256)
    assert headers["X-Panel-Signature"] == f"sha256={expected.hexdigest()}"
    forged = hmac.new(b"wrong secret", headers["X-Panel-Timestamp"].encode() + b"." + body, hashlib.sha256)
    assert headers["X-Panel-Signature"] != f"sha256={forged.hexdigest()}"
    # Delivered already: a second run (a redelivered task) sends nothing more.
    webhooks.deliver(delivery.pk)
    assert len(receiver.received) == 1


def test_a_failing_receiver_is_retried_with_backoff_then_given_up(receiver, running):
    Webhook.objects.create(url=receiver.url, events=["server.suspended"])
    suspend = request_action(running.server, OperationKind.SUSPEND, None)
    finish_operation(suspend.pk, ok=True)
    delivery = WebhookDelivery.objects.get()
    assert delivery.payload["data"]["reason"] == "billing" and delivery.event == "server.suspended"
    receiver.status = 503
    before = timezone.now()
    webhooks.deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_status_code == 503
    assert "503" in delivery.last_error
    assert before + datetime.timedelta(seconds=29) < delivery.next_attempt_at < before + datetime.timedelta(seconds=35)
    receiver.status = 200
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - datetime.timedelta(minutes=5)
    )
    assert webhooks.send_due(send=webhooks.deliver) == 1  # the sweep sends a retry whose message was lost
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2
    # A receiver that never answers well: after every backoff step the delivery is failed, logged.
    receiver.status = 500
    delivery = WebhookDelivery.objects.create(webhook=delivery.webhook, event="server.suspended", payload={})
    for _ in range(len(webhooks.BACKOFF_SECONDS) + 1):
        webhooks.deliver(delivery.pk)
        webhooks.deliver(delivery.pk)  # not due yet: sends nothing
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == len(webhooks.BACKOFF_SECONDS) + 1
    assert len(receiver.received) == 2 + len(webhooks.BACKOFF_SECONDS) + 1  # no attempt sent twice


def test_an_unreachable_receiver_is_logged(running):
    closed = Receiver()
    url = closed.url
    closed.close()  # nothing listens there now
    hook = Webhook.objects.create(url=url, events=["traffic.exceeded"])
    delivery = WebhookDelivery.objects.create(webhook=hook, event="traffic.exceeded", payload={"x": 1})
    webhooks.deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_status_code is None
    assert "refused" in delivery.last_error.lower()


def test_the_admin_registers_a_webhook_with_a_secret(admin_client):
    response = admin_client.post(
        "/admin/panel/webhook/add/",
        {
            "url": "https://billing.example.net/hooks",
            "events": ["operation.finished", "traffic.exceeded"],
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content
    hook = Webhook.objects.get()
    assert hook.events == ["operation.finished", "traffic.exceeded"] and len(hook.secret) >= 40
    refused = admin_client.post(
        "/admin/panel/webhook/add/", {"url": "ftp://x.example/", "events": ["traffic.exceeded"]}
    )
    assert refused.status_code == 200 and Webhook.objects.count() == 1


def test_a_redirect_is_a_failure_not_followed(running):
    class Redirecting(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:9/internal")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hook = Webhook.objects.create(url=f"http://127.0.0.1:{server.server_address[1]}/", events=["traffic.exceeded"])
        delivery = WebhookDelivery.objects.create(webhook=hook, event="traffic.exceeded", payload={})
        webhooks.deliver(delivery.pk)
    finally:
        server.shutdown()
        server.server_close()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_status_code == 302
