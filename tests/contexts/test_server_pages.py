"""The server page's own actions as plain forms, its live part, and who may reach them."""

import re

import pytest
from django.urls import reverse

from contexts.choices import OperationKind, OperationStatus
from contexts.models import Operation
from contexts.services import finish_operation

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGm1c2VyLWtleS1mb3ItdGVzdHMtb25seS0wMDAwMDAw alice@laptop"
POST_PAGES = {
    "server-action": {"action": "stop"},
    "server-hostname": {"hostname": "new.example.com"},
    "server-ssh-keys": {"ssh_keys": KEY},
    "server-password": {},
    "server-reinstall": {"confirm": "on"},
}


def post(client, name, server, data):
    if name == "server-reinstall":
        data = data | {"template": server.template_id}
    return client.post(reverse(name, args=[server.pk]), data)


@pytest.mark.parametrize("name", POST_PAGES)
def test_another_customer_gets_404_and_a_visitor_the_login_page(client, world, running, customer_login, name):
    response = post(client, name, running.server, POST_PAGES[name])
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    _, bob = customer_login("Bob")
    client.force_login(bob)
    assert post(client, name, running.server, POST_PAGES[name]).status_code == 404
    assert client.get(reverse("server-live", args=[running.server.pk])).status_code == 404
    assert Operation.objects.filter(server=running.server).count() == 1  # only the create


def test_rename_queues_an_operation_and_bad_names_are_refused(client, running):
    client.force_login(running.login)
    response = post(client, "server-hostname", running.server, {"hostname": "bad_name!"})
    assert response.status_code == 302
    assert Operation.objects.filter(kind=OperationKind.HOSTNAME).count() == 0
    post(client, "server-hostname", running.server, {"hostname": "Shop.Example.COM"})
    operation = Operation.objects.get(kind=OperationKind.HOSTNAME)
    assert operation.spec["context"]["hostname"] == "shop.example.com"
    running.server.refresh_from_db()
    assert running.server.hostname == "shop.example.com"


def test_password_reset_shows_the_password_once_and_sends_only_a_hash(client, running):
    client.force_login(running.login)
    response = post(client, "server-password", running.server, {})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    password = response.context["password"]
    assert len(password) >= 16 and password in response.content.decode()
    operation = Operation.objects.get(kind=OperationKind.PASSWORD)
    assert operation.spec["params"]["password_hash"].startswith("$6$")
    assert password not in str(operation.spec)


def test_reinstall_needs_confirmation(client, running):
    client.force_login(running.login)
    post(client, "server-reinstall", running.server, {})
    assert not Operation.objects.filter(kind=OperationKind.REINSTALL).exists()
    response = post(client, "server-reinstall", running.server, {"confirm": "on"})
    assert response.status_code == 200 and response.context["password"]
    assert Operation.objects.filter(kind=OperationKind.REINSTALL).count() == 1


def test_malformed_ssh_keys_are_refused_with_a_message(client, running):
    client.force_login(running.login)
    response = post(client, "server-ssh-keys", running.server, {"ssh_keys": "not a key"})
    page = client.get(response["Location"]).content.decode()
    assert "Not an OpenSSH public key" in page
    assert not Operation.objects.filter(kind=OperationKind.SSH_KEYS).exists()


def test_live_part_polls_while_busy_and_tells_htmx_to_stop_when_done(client, running):
    client.force_login(running.login)
    url = reverse("server-live", args=[running.server.pk])
    idle = client.get(url, headers={"HX-Request": "true"})
    assert idle.status_code == 286 and "hx-trigger" not in idle.content.decode()
    post(client, "server-action", running.server, {"action": "stop"})
    busy = client.get(url, headers={"HX-Request": "true"})
    assert busy.status_code == 200 and 'hx-trigger="every 2s"' in busy.content.decode()
    operation = Operation.objects.get(kind=OperationKind.STOP)
    finish_operation(operation.pk, ok=True)
    done = client.get(url, headers={"HX-Request": "true"})
    assert done.status_code == 286 and "Stopped" in done.content.decode()
    assert Operation.objects.get(pk=operation.pk).status == OperationStatus.SUCCEEDED


def test_my_servers_list_offers_quick_actions_and_polls_only_while_busy(client, running):
    client.force_login(running.login)
    url = reverse("server-list")
    page = client.get(url).content.decode()
    assert 'value="stop"' in page and 'value="start"' not in page and "hx-trigger" not in page
    assert client.get(url, headers={"HX-Request": "true"}).status_code == 286
    # The row's button submits the page's one quick-action form (its CSRF token) to its server's URL.
    form = re.search(r'<form id="quick-actions" method="post"><input type="hidden" name="csrfmiddlewaretoken"', page)
    button = re.search(
        r'<button type="submit" form="quick-actions" formaction="([^"]+)" name="action" value="stop"', page
    )
    assert form and button and button[1] == reverse("server-action", args=[running.server.pk])
    client.post(button[1], {"action": "stop"})
    busy = client.get(url, headers={"HX-Request": "true"})
    assert busy.status_code == 200 and 'hx-trigger="every 3s"' in busy.content.decode()
    assert "working…" in busy.content.decode() and 'value="stop"' not in busy.content.decode()
