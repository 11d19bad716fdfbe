"""Every URL that takes an object: another customer gets 404, a visitor the login page. The list of
URLs comes from the URL configuration itself, so a page added later is checked without a new test."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from contexts.services import finish_operation

# Staff-only pages answer customers 403 (they are not theirs to know about either way).
STAFF_ONLY = {"customer-detail", "customer-billing", "api-token-revoke"}


def object_url_names(patterns=None, prefix=""):
    """Names of the URL patterns with an object id (<int:pk>) in them, admin excluded."""
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            if getattr(entry, "app_name", None) == "admin" or str(entry.pattern).startswith("admin"):
                continue
            yield from object_url_names(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and "<int:pk>" in str(entry.pattern) and entry.name:
            yield entry.name


def test_the_walk_finds_the_server_pages():
    names = set(object_url_names())
    assert {"server-detail", "server-action", "server-live", "server-password"} <= names


@pytest.mark.parametrize("name", sorted(set(object_url_names())))
def test_other_customers_get_404_and_visitors_the_login_page(client, world, customer_login, name):
    account = world.provision("Alice Ltd", "alice@example.com", "www.alice.example")
    finish_operation(account.operation.pk, ok=True)
    pk = account.customer.pk if name in STAFF_ONLY else account.server.pk
    url = reverse(name, args=[pk])
    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), (name, method)
    _, bob = customer_login("Bob")
    client.force_login(bob)
    expected = 403 if name in STAFF_ONLY else 404
    for method in (client.get, client.post):
        assert method(url).status_code in (expected, 405), (name, method)
    assert client.get(url).status_code in (expected, 405)
    # Alice herself reaches her own server's pages (GET where the page is a GET page).
    client.force_login(account.login)
    if name not in STAFF_ONLY:
        assert client.get(url).status_code in (200, 286, 405)
