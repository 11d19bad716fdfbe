"""Provisioning verbs: 202 with an operation to poll, idempotent under a key, and every bad request a
4xx JSON answer naming what is wrong (never a 500)."""

import json

import pytest

from contexts.choices import OperationKind
from contexts.models import Operation, VirtualServer
from contexts.services import finish_operation
from customers.models import Customer, Plan
from panel.models import IdempotencyRecord
from tests.conftest import make_plan


def account_body(world, **overrides):
    return {
        "name": "Bob",
        "email": "bob@example.com",
        "plan": world.plan.slug,
        "template": world.template.name,
        "hostname": "www.bob.example",
    } | overrides


def test_create_account_answers_202_with_the_operation_to_poll(api, world):
    response = api.post("/api/v1/accounts/", account_body(world), format="json")
    assert response.status_code == 202
    body = response.json()
    operation = Operation.objects.get()
    assert response["Location"] == f"/api/v1/operations/{operation.pk}/" == body["operation"]["url"]
    assert body["operation"]["kind"] == "create" and body["operation"]["status"] == "queued"
    assert body["server"]["hostname"] == "www.bob.example" and body["customer"]["email"] == "bob@example.com"
    assert len(body["root_password"]) >= 16 and len(body["login"]["password"]) >= 12
    assert "$6$" in operation.spec["params"]["password_hash"]  # only the hash travels
    # A chosen root password is used and not echoed.
    chosen = api.post(
        "/api/v1/accounts/",
        account_body(world, email="carol@example.com", root_password="correct horse battery"),
        format="json",
    )
    assert chosen.status_code == 202 and "root_password" not in chosen.json()


def test_a_retry_with_the_same_key_gets_the_same_server(api, world):
    headers = {"Idempotency-Key": "order-1001"}
    first = api.post("/api/v1/accounts/", account_body(world), format="json", headers=headers)
    again = api.post("/api/v1/accounts/", account_body(world), format="json", headers=headers)
    assert first.status_code == again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert first["Location"] and again["Location"] == first["Location"]  # where to poll, on a retry too
    assert again.json()["server"]["id"] == first.json()["server"]["id"]
    assert again.json()["root_password"] == "(shown once, in the first answer)"
    assert Customer.objects.count() == 1 and VirtualServer.objects.count() == 1
    stored = IdempotencyRecord.objects.get().body
    assert first.json()["root_password"] not in json.dumps(stored)  # secrets are not kept for replays
    assert first.json()["login"]["password"] not in json.dumps(stored)
    other = api.post("/api/v1/accounts/", account_body(world, hostname="x.example"), format="json", headers=headers)
    assert other.status_code == 422 and "different request" in other.json()["detail"]
    # Without a key the duplicate is refused by name, not created twice.
    duplicate = api.post("/api/v1/accounts/", account_body(world), format="json")
    assert duplicate.status_code == 400 and "already exists" in duplicate.json()["detail"]


def test_a_refused_request_does_not_use_up_its_key(api, world):
    headers = {"Idempotency-Key": "order-1002"}
    refused = api.post("/api/v1/accounts/", account_body(world, plan="nope"), format="json", headers=headers)
    assert refused.status_code == 400
    assert api.post("/api/v1/accounts/", account_body(world), format="json", headers=headers).status_code == 202


@pytest.fixture
def server(api, world):
    body = api.post("/api/v1/accounts/", account_body(world), format="json").json()
    finish_operation(body["operation"]["id"], ok=True)
    return VirtualServer.objects.get(pk=body["server"]["id"])


@pytest.mark.parametrize(
    "verb, body, kind",
    [
        ("stop", {}, OperationKind.STOP),
        ("restart", {}, OperationKind.RESTART),
        ("password", {}, OperationKind.PASSWORD),
        ("reinstall", {"template": "busybox"}, OperationKind.REINSTALL),
        ("suspend", {}, OperationKind.SUSPEND),
        ("terminate", {}, OperationKind.DESTROY),
    ],
)
def test_each_verb_queues_its_operation(api, server, verb, body, kind):
    response = api.post(f"/api/v1/servers/{server.pk}/{verb}/", body, format="json")
    assert response.status_code == 202, response.json()
    operation = Operation.objects.get(pk=response.json()["operation"]["id"])
    assert operation.kind == kind and operation.server == server
    assert ("root_password" in response.json()) == (verb in ("password", "reinstall"))


def test_change_plan_and_state_refusals(api, server, world):
    bigger = make_plan("medium", memory_mib=1024)
    response = api.post(f"/api/v1/servers/{server.pk}/change-plan/", {"plan": "medium"}, format="json")
    assert response.status_code == 202
    server.refresh_from_db()
    assert server.plan == bigger
    busy = api.post(f"/api/v1/servers/{server.pk}/stop/")
    assert busy.status_code == 409 and "busy" in busy.json()["detail"]
    finish_operation(response.json()["operation"]["id"], ok=True)
    wrong_state = api.post(f"/api/v1/servers/{server.pk}/start/")
    assert wrong_state.status_code == 409 and wrong_state.json()["detail"]
    unknown = api.post(f"/api/v1/servers/{server.pk}/change-plan/", {"plan": "gigantic"}, format="json")
    assert unknown.status_code == 400 and "plan" in unknown.json()
    Plan.objects.filter(slug="medium").update(is_active=False)
    retired = api.post(f"/api/v1/servers/{server.pk}/change-plan/", {"plan": "medium"}, format="json")
    assert retired.status_code == 400 and "plan" in retired.json()


def test_billing_verbs_for_a_whole_customer(api, server):
    customer = server.customer
    response = api.post(f"/api/v1/customers/{customer.pk}/suspend/", headers={"Idempotency-Key": "s-1"})
    assert response.status_code == 202
    body = response.json()
    assert body["customer"]["billing_state"] == "suspended" and [o["kind"] for o in body["operations"]] == ["suspend"]
    again = api.post(f"/api/v1/customers/{customer.pk}/suspend/", headers={"Idempotency-Key": "s-1"})
    assert again.json() == body
    not_again = api.post(f"/api/v1/customers/{customer.pk}/suspend/")
    assert not_again.status_code == 409  # suspended already: the state machine says no


@pytest.mark.parametrize(
    "body, field",
    [
        ({"hostname": "bad_name!"}, "hostname"),
        ({"hostname": "a" * 300}, "hostname"),
        ({"email": "not-an-email"}, "email"),
        ({"plan": "no-such-plan"}, "plan"),
        ({"template": "no-such-template"}, "template"),
        ({"name": ""}, "name"),
        ({"root_password": "short"}, "root_password"),
        ({"root_password": "has:colon-inside"}, "root_password"),
        ({"ssh_keys": "not a key"}, "detail"),
        ({"plan": ["small"]}, "plan"),
        ({"plan": None}, "plan"),
        ({"template": "busy\x00box"}, "template"),
        ({"name": "Bob\x00"}, "name"),
    ],
)
def test_bad_input_names_the_field(api, world, body, field):
    response = api.post("/api/v1/accounts/", account_body(world, **body), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not Customer.objects.exists()


def test_malformed_oversized_and_non_json_bodies(api, world, settings):
    malformed = api.post("/api/v1/accounts/", '{"name": "Bob",', content_type="application/json")
    assert malformed.status_code == 400 and "JSON" in malformed.json()["detail"]
    settings.API_MAX_BODY_BYTES = 1000
    big = api.post("/api/v1/accounts/", account_body(world, name="x" * 5000), format="json")
    assert big.status_code == 413 and "larger than 1000 bytes" in big.json()["detail"]
    form = api.post("/api/v1/accounts/", "name=Bob", content_type="application/x-www-form-urlencoded")
    assert form.status_code == 415 and form.json()["detail"]
    not_a_list = api.post("/api/v1/accounts/", "[1, 2]", content_type="application/json")
    assert not_a_list.status_code == 400
    bad_key = api.post("/api/v1/accounts/", account_body(world), format="json", headers={"Idempotency-Key": "x" * 201})
    assert bad_key.status_code == 400 and "Idempotency-Key" in bad_key.json()
    assert not Customer.objects.exists()


@pytest.mark.parametrize("value", ["\u00b2", "99999999999999999999", "-1", "1.5", " 1"])
def test_odd_ids_in_filters_are_named_400s(api, value):
    for url, name in (
        ("/api/v1/servers/", "customer"),
        ("/api/v1/operations/", "server"),
        ("/api/v1/usage/", "server"),
    ):
        response = api.get(url, {name: value})
        assert response.status_code == 400 and name in response.json(), (url, value)
    assert api.get("/api/v1/servers/", {"hostname": "a\x00b"}).status_code == 400


@pytest.mark.parametrize("customer", [1e300, True, "1.0", "\u00b2", -5, 2**70, None, 424242, "424242"])
def test_odd_ids_in_bodies_are_named_400s(api, world, customer):
    body = {"customer": customer, "plan": world.plan.slug, "template": world.template.name, "hostname": "x.example"}
    response = api.post("/api/v1/servers/", body, format="json")
    assert response.status_code == 400 and "customer" in response.json(), response.content


def test_unknown_ids_are_404_as_json(api):
    for url in (
        "/api/v1/servers/999/",
        "/api/v1/servers/abc/",
        "/api/v1/operations/not-a-uuid/",
        "/api/v1/plans/x/",
        "/api/v1/no-such-thing/",
    ):
        response = api.get(url)
        assert response.status_code == 404 and response.json()["detail"], url
    assert api.get("/api/v1/operations/00000000-0000-0000-0000-000000000000/").json()["detail"]
    assert api.post("/api/v1/servers/999/stop/").status_code == 404


def test_kept_answers_go_after_their_time(api, world, settings):
    import datetime

    from django.utils import timezone

    from panel.tasks import prune_idempotency_keys

    api.post("/api/v1/accounts/", account_body(world), format="json", headers={"Idempotency-Key": "old"})
    api.post(
        "/api/v1/accounts/",
        account_body(world, email="c@example.com", hostname="c.example"),
        format="json",
        headers={"Idempotency-Key": "new"},
    )
    old = timezone.now() - datetime.timedelta(hours=settings.IDEMPOTENCY_KEEP_HOURS, minutes=1)
    IdempotencyRecord.objects.filter(key="old").update(created_at=old)
    assert prune_idempotency_keys() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
