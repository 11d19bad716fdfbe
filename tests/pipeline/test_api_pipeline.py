"""A billing system's calls through the API, each carried out by the real host agents: create the
account, act on the server, change its plan and password, suspend, unsuspend, terminate."""

import json

import pytest
from rest_framework.test import APIClient

from contexts.models import IPAddress, VirtualServer
from customers.models import Customer
from customers.models import User as Login
from panel.api import tokens
from panel.models import Webhook
from tests.panel.test_webhooks import Receiver
from tests.pipeline.test_pipeline import status_on_host
from tests.pipeline_world import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def billing_client(scope="full"):
    staff = Login.objects.create_user("billing", "billing@example.net", "not-used-here-1234", is_staff=True)
    _, text = tokens.issue(name="billing system", user=staff, scope=scope, created_by=staff)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {text}")
    return client


def poll(client, answer, timeout: float = 90) -> dict:
    """Poll the operation a 202 answer names, as a billing module would, until it ends."""
    assert answer.status_code == 202, answer.content
    url = answer["Location"]

    def done():
        operation = client.get(url).json()
        return operation if operation["status"] in ("succeeded", "failed") else None

    operation = wait_until(done, timeout, f"the operation at {url}")
    assert operation["status"] == "succeeded", operation["error"]
    assert operation["progress"] == 100 and operation["finished_at"]
    return operation


def test_a_billing_system_runs_a_service_through_its_life(hosts):
    receiver = Receiver()  # the billing system's webhook endpoint
    Webhook.objects.create(url=receiver.url, events=["operation.finished", "server.suspended"])
    api = billing_client()
    body = {
        "name": "Ann",
        "email": "ann@example.com",
        "plan": "small",
        "template": "busybox",
        "hostname": "ann.example",
    }
    created = api.post("/api/v1/accounts/", body, format="json", headers={"Idempotency-Key": "order-77"})
    retried = api.post("/api/v1/accounts/", body, format="json", headers={"Idempotency-Key": "order-77"})
    assert retried.json()["server"]["id"] == created.json()["server"]["id"]
    poll(api, created)
    assert Customer.objects.count() == 1 and VirtualServer.objects.count() == 1
    server = VirtualServer.objects.get()
    url = f"/api/v1/servers/{server.pk}/"
    assert api.get(url).json()["state"] == "running"
    assert status_on_host(hosts, server)["state"] == "running"

    poll(api, api.post(f"{url}stop/"))
    assert api.get(url).json()["state"] == "stopped" and status_on_host(hosts, server)["state"] == "stopped"
    poll(api, api.post(f"{url}start/"))
    poll(api, api.post(f"{url}restart/"))
    assert status_on_host(hosts, server)["state"] == "running"

    password = api.post(f"{url}password/", {"root_password": "Chosen-by-billing-1"}, format="json")
    assert "root_password" not in password.json()
    poll(api, password)
    shadow = hosts.agents[server.host.name].cli("exec", server.name, "--", "cat", "/etc/shadow").stdout
    assert shadow.startswith("root:$6$"), shadow

    poll(api, api.post(f"{url}change-plan/", {"plan": "large"}, format="json"))
    limits = status_on_host(hosts, server)["limits"]
    assert limits["memory_bytes"] == 512 * 2**20 and api.get(url).json()["plan"] == "large"

    poll(api, api.post(f"{url}reinstall/", {"template": "busybox"}, format="json"))

    customer = f"/api/v1/customers/{server.customer_id}/"
    suspended = api.post(f"{customer}suspend/")
    assert suspended.status_code == 202 and suspended.json()["customer"]["billing_state"] == "suspended"
    wait_until(lambda: api.get(url).json()["state"] == "suspended", 90, "the suspension")
    assert status_on_host(hosts, server)["state"] == "stopped"
    api.post(f"{customer}unsuspend/")
    wait_until(lambda: api.get(url).json()["state"] == "running", 90, "the unsuspension")

    poll(api, api.post(f"{url}terminate/"))
    assert api.get(url).json()["state"] == "destroyed"
    assert server.name not in hosts.agents[server.host.name].state.context_names()
    assert not IPAddress.objects.filter(server=server).exists()

    # The panel worker delivered the events, signed, as they happened.
    def events():
        return [json.loads(body) for _, body in receiver.received]

    wait_until(lambda: any(e["data"].get("kind") == "destroy" for e in events()), 30, "the destroy's webhook")
    receiver.close()
    kinds = [e["data"]["kind"] for e in events() if e["event"] == "operation.finished"]
    assert {"create", "stop", "start", "change_plan", "reinstall", "suspend", "destroy"} <= set(kinds)
    assert any(e["event"] == "server.suspended" and e["data"]["reason"] == "billing" for e in events())
    assert all(headers["X-Panel-Signature"].startswith("sha256=") for headers, _ in receiver.received)
