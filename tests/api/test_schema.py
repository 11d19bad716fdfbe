"""The OpenAPI document: valid, at a stable URL, with browsable docs served from vendored assets."""

import yaml
from django.core.management import call_command

from tests.api.test_fuzz import schema


def test_the_document_validates_and_has_no_warnings(tmp_path):
    out = tmp_path / "openapi.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    document = yaml.safe_load(out.read_text())
    assert document["openapi"].startswith("3.") and document["info"]["version"] == "1.0.0"
    assert document["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"
    paths = set(document["paths"])
    assert {
        "/api/v1/accounts/",
        "/api/v1/servers/{id}/change-plan/",
        "/api/v1/usage/",
        "/api/v1/operations/{id}/",
    } <= paths
    # Every verb takes an Idempotency-Key.
    for path, operations in document["paths"].items():
        if "post" in operations:
            names = {p["name"] for p in operations["post"].get("parameters", [])}
            assert "Idempotency-Key" in names, path


def test_the_fuzz_test_covers_every_operation():
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(
        len([m for m in methods if m in ("get", "post", "put", "patch", "delete")])
        for methods in schema.raw_schema["paths"].values()
    )
    assert len(operations) >= 25


def test_docs_and_document_are_served_without_a_token(client):
    document = client.get("/api/v1/schema/?format=json")
    assert document.status_code == 200 and document.json()["info"]["title"] == "Hosting panel API"
    docs = client.get("/api/v1/docs/")
    body = docs.content.decode()
    assert docs.status_code == 200 and "swagger-ui" in body and "/static/drf_spectacular_sidecar/" in body
    assert client.get("/api/v1/redoc/").status_code == 200
