"""The staff pages, as staff, as a customer and as an anonymous visitor."""

import pytest
from django.urls import reverse

from contexts.models import VirtualServer
from customers.models import Customer
from tests.conftest import make_plan

STAFF_PAGES = ["dashboard", "provision", "customer-list"]


@pytest.fixture
def account(world):
    return world.provision("Alice Ltd", "alice@example.com", "www.alice.example")


@pytest.mark.parametrize("page", STAFF_PAGES)
def test_staff_pages_refuse_customers_and_send_visitors_to_login(client, world, account, page):
    url = reverse(page)
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client.force_login(account.login)
    assert client.get(url).status_code == 403
    assert client.get(reverse("customer-detail", args=[account.customer.pk])).status_code == 403


def test_dashboard_shows_host_capacity_and_recent_operations(staff_client, world, account):
    page = staff_client.get(reverse("dashboard")).content.decode()
    assert world.host.name in page and world.host.queue in page
    assert "0.50 / 4 · 3.50 free" in page  # CPUs sold / sellable
    assert "512 / 8192 MiB" in page
    assert "www.alice.example" in page and "Queued" in page


def test_provision_form_creates_an_account_and_shows_the_password_once(staff_client, world):
    response = staff_client.post(
        reverse("provision"),
        {
            "name": "Bob",
            "email": "bob@example.com",
            "plan": world.plan.pk,
            "template": world.template.pk,
            "hostname": "Bob.Example.com",
        },
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    server = VirtualServer.objects.get(customer__email="bob@example.com")
    assert server.hostname == "bob.example.com"
    assert "Account provisioned" in page and "192.0.2.2" in page and server.host.name in page
    password = response.context["result"].password
    assert password in page and Customer.objects.get().logins.get().check_password(password)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("email", "nope", "Enter a valid email address."),
        ("hostname", "bad_host", "is not a valid hostname"),
        ("plan", "999", "Select a valid choice."),
    ],
)
def test_provision_form_rejects_bad_input(staff_client, world, field, value, message):
    data = {
        "name": "Bob",
        "email": "bob@example.com",
        "plan": world.plan.pk,
        "template": world.template.pk,
        "hostname": "bob.example.com",
    }
    data[field] = value
    response = staff_client.post(reverse("provision"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Customer.objects.exists()


def test_provision_form_shows_service_errors(staff_client, world, account):
    huge = make_plan("huge", memory_mib=10**6)
    response = staff_client.post(
        reverse("provision"),
        {
            "name": "Bob",
            "email": "bob@example.com",
            "plan": huge.pk,
            "template": world.template.pk,
            "hostname": "bob.example.com",
        },
    )
    assert "No host has room for this plan" in response.content.decode()
    response = staff_client.post(
        reverse("provision"),
        {
            "name": "Alice again",
            "email": "alice@example.com",
            "plan": world.plan.pk,
            "template": world.template.pk,
            "hostname": "x.example.com",
        },
    )
    assert "already exists" in response.content.decode()
    assert Customer.objects.count() == 1


def test_inactive_plans_are_not_offered(staff_client, world):
    make_plan("retired", name="Retired plan", is_active=False)
    page = staff_client.get(reverse("provision")).content.decode()
    assert "Small" in page and "Retired plan" not in page


def test_customer_and_server_search(staff_client, world, account):
    world.provision("Bob Corp", "bob@example.com", "mail.bob.example")
    page = staff_client.get(reverse("customer-list"), {"q": "alice"}).content.decode()
    assert "Alice Ltd" in page and "Bob Corp" not in page
    page = staff_client.get(reverse("customer-list"), {"q": "mail.bob"}).content.decode()
    assert "Bob Corp" in page and "Alice Ltd" not in page
    page = staff_client.get(reverse("server-list"), {"q": "192.0.2.2"}).content.decode()
    assert "www.alice.example" in page and "mail.bob.example" not in page
    page = staff_client.get(reverse("server-list"), {"state": "running"}).content.decode()
    assert "No servers." in page


def test_customer_page_lists_the_servers_with_their_links_and_quick_actions(staff_client, running):
    page = staff_client.get(reverse("customer-detail", args=[running.customer.pk])).content.decode()
    server = running.server
    assert f'<a href="{server.get_absolute_url()}">{server.hostname}</a>' in page
    assert f'formaction="{reverse("server-action", args=[server.pk])}" name="action" value="stop"' in page
    assert "hx-trigger" not in page  # the table polls only on the servers list, which serves it alone


def test_customers_list_pages_on_keeping_the_search(staff_client, world, account, monkeypatch):
    monkeypatch.setattr("customers.views.CUSTOMERS_PAGE_SIZE", 1)
    world.provision("Bob Corp", "bob@example.com", "mail.bob.example")
    first = staff_client.get(reverse("customer-list"), {"q": "example.com"}).content.decode()
    assert "Alice Ltd" in first and "Bob Corp" not in first
    assert "Page 1 of 2 (2 customers)" in first and 'href="?q=example.com&amp;page=2" rel="next"' in first
    assert f'href="{reverse("customer-detail", args=[account.customer.pk])}"' in first
    second = staff_client.get(reverse("customer-list"), {"q": "example.com", "page": 2}).content.decode()
    assert "Bob Corp" in second and "Alice Ltd" not in second and 'rel="prev"' in second


def test_customer_billing_buttons_use_the_services(staff_client, world, account):
    url = reverse("customer-billing", args=[account.customer.pk])
    response = staff_client.post(url, {"action": "suspend"}, follow=True)
    assert "busy with another operation" in response.content.decode()  # create is still queued
    account.operation.status = "succeeded"
    account.operation.save()
    account.server.state = "running"
    account.server.save()
    response = staff_client.post(url, {"action": "suspend"}, follow=True)
    account.customer.refresh_from_db()
    assert account.customer.billing_state == "suspended"
    assert "1 server operation(s) queued" in response.content.decode()


def test_customers_see_only_their_own_servers(client, world, account):
    other = world.provision("Mallory", "mallory@example.com", "evil.example")
    client.force_login(account.login)
    page = client.get(reverse("server-list")).content.decode()
    assert "www.alice.example" in page and "evil.example" not in page
    assert client.get(reverse("server-detail", args=[account.server.pk])).status_code == 200
    assert client.get(reverse("server-detail", args=[other.server.pk])).status_code == 404
    assert client.post(reverse("server-action", args=[other.server.pk]), {"action": "stop"}).status_code == 404


def test_server_page_disables_actions_with_the_reason(client, world, account):
    client.force_login(account.login)
    page = client.get(reverse("server-detail", args=[account.server.pk])).content.decode()
    assert 'value="start" disabled title="Busy: create is queued."' in page
    assert "Create is queued (0 %). Other actions wait until it finishes." in page
    response = client.post(reverse("server-action", args=[account.server.pk]), {"action": "stop"}, follow=True)
    assert "busy" in response.content.decode()


def test_login_page_and_home_redirects(client, world, account):
    assert client.get(reverse("login")).status_code == 200
    assert (
        client.post(reverse("login"), {"username": account.login.username, "password": account.password}).status_code
        == 302
    )
    assert client.get(reverse("home"))["Location"] == reverse("server-list")
    client.force_login(world.staff)
    assert client.get(reverse("home"))["Location"] == reverse("dashboard")
