"""API tokens: stored hashed and shown once, scoped, restricted to addresses, revocable."""

import pytest
from django.urls import reverse

from panel.models import ApiToken, AuditEvent

SERVERS = "/api/v1/servers/"


def test_a_token_is_shown_once_and_only_its_hash_is_kept(client, world):
    client.force_login(world.staff)
    page = client.post(reverse("api-tokens"), {"name": "WHMCS", "scope": "provisioning", "allowed_networks": ""})
    text = page.context["text"]
    assert text.startswith("vps_") and text in page.content.decode()
    assert page["Cache-Control"].startswith("max-age=0") or "no-cache" in page["Cache-Control"]
    token = ApiToken.objects.get(name="WHMCS")
    assert text not in str(list(ApiToken.objects.values()))  # neither the token nor its secret is stored
    assert token.key_hash != text and token.user == world.staff and token.scope == "provisioning"
    listing = client.get(reverse("api-tokens")).content.decode()
    assert "WHMCS" in listing and text not in listing
    assert AuditEvent.objects.filter(action="api_token.created", object_id=str(token.pk)).exists()


def test_unknown_revoked_and_malformed_tokens_get_401(api, world, client):
    assert api.get(SERVERS).status_code == 200
    for header in ("Bearer vps_0000_nope", "Bearer", "Bearer a b", "Basic dXNlcjpwYXNz", ""):
        other = type(api)()
        other.credentials(HTTP_AUTHORIZATION=header)
        response = other.get(SERVERS)
        assert response.status_code == 401, header
        assert response.json()["detail"] and response["WWW-Authenticate"].startswith("Bearer")
    token = ApiToken.objects.get(prefix=api.token_text.split("_")[1])
    client.force_login(world.staff)
    client.post(reverse("api-token-revoke", args=[token.pk]))
    response = api.get(SERVERS)
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    assert AuditEvent.objects.filter(action="api_token.revoked").count() == 1


@pytest.mark.parametrize(
    "scope, allowed",
    [("read", {"get"}), ("provisioning", {"get", "password"}), ("full", {"get", "password", "stop"})],
)
def test_each_scope_allows_only_its_verbs(make_client, world, scope, allowed):
    account = world.provision("Alice Ltd", "alice@example.com", "www.alice.example")
    from contexts.services import finish_operation

    finish_operation(account.operation.pk, ok=True)
    client = make_client(scope)
    url = f"{SERVERS}{account.server.pk}/"
    results = {
        "get": client.get(url).status_code,
        "password": client.post(f"{url}password/", {}, format="json").status_code,
        "stop": client.post(f"{url}stop/", {}, format="json").status_code,
    }
    for verb, code in results.items():
        if verb in allowed:
            assert code in (200, 202, 409), (verb, code)  # 409: busy with the password change
        else:
            assert code == 403, (verb, code)


def test_a_token_restricted_to_addresses_is_refused_elsewhere(make_client):
    inside = make_client("read", networks="192.0.2.0/24\n2001:db8::/32", remote="192.0.2.7")
    assert inside.get(SERVERS).status_code == 200
    outside = make_client("read", networks="192.0.2.0/24", remote="198.51.100.1")
    response = outside.get(SERVERS)
    assert response.status_code == 403 and "198.51.100.1" in response.json()["detail"]


def test_bad_networks_are_refused_on_the_staff_page(client, world):
    client.force_login(world.staff)
    page = client.post(
        reverse("api-tokens"), {"name": "x", "scope": "read", "allowed_networks": "10.0.0.0/8\nnot-an-ip"}
    )
    assert page.status_code == 200 and "Line 2" in page.content.decode()
    assert not ApiToken.objects.exists()


def test_the_audit_log_names_the_token(api, world):
    customer_response = api.post(
        "/api/v1/accounts/",
        {
            "name": "Bob",
            "email": "bob@example.com",
            "plan": world.plan.slug,
            "template": world.template.name,
            "hostname": "www.bob.example",
        },
        format="json",
    )
    assert customer_response.status_code == 202
    event = AuditEvent.objects.get(action="customer.created")
    assert event.actor_name == "admin (API token full token)" and event.actor == world.staff


def test_behind_a_trusted_proxy_the_forwarded_address_counts(make_client, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    client = make_client("read", networks="203.0.113.0/24", remote="10.0.0.1")
    assert client.get(SERVERS, HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 200
    # The proxy appends what it saw: an address the caller wrote in front does not count.
    assert client.get(SERVERS, HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.7").status_code == 403
    assert client.get(SERVERS).status_code == 403  # the proxy's own address is not the caller's
    direct = make_client("read", networks="203.0.113.0/24", remote="198.51.100.7")
    assert direct.get(SERVERS, HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403  # not a trusted proxy
    mapped = make_client("read", networks="203.0.113.0/24", remote="::ffff:203.0.113.9")
    assert mapped.get(SERVERS).status_code == 200


def test_staff_make_tokens_for_themselves_or_customers_only(client, world, customer_login):
    from customers.models import User

    _, alice = customer_login("Alice")
    colleague = User.objects.create_user("colleague", "c@example.net", "correct-horse-battery", is_staff=True)
    maker = User.objects.create_user("maker", "m@example.net", "correct-horse-battery", is_staff=True)
    client.force_login(maker)
    refused = client.post(reverse("api-tokens"), {"name": "x", "scope": "full", "user": colleague.pk})
    assert refused.status_code == 200 and not ApiToken.objects.exists()
    made = client.post(reverse("api-tokens"), {"name": "x", "scope": "read", "user": alice.pk})
    assert made.status_code == 200 and ApiToken.objects.get().user == alice
    client.force_login(world.staff)  # a superuser may
    client.post(reverse("api-tokens"), {"name": "y", "scope": "read", "user": colleague.pk})
    assert ApiToken.objects.filter(user=colleague).exists()


def test_the_api_and_pages_work_while_the_cache_is_down(api, settings, client, running):
    """Redis holds sessions, rate counts and the two-factor check; when it is down all fall back."""
    settings.SESSION_ENGINE = "panel.sessions"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    assert api.get(SERVERS).status_code == 200
    client.force_login(running.login)
    assert client.get(reverse("server-list")).status_code == 200
