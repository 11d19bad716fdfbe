"""Schemathesis sends what the OpenAPI document allows, and much it does not, to every operation:
the answers must never be a server error and must match what the document promises."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from panel.wsgi import application

pytestmark = pytest.mark.django_db
# The schema view needs no database or token: loading it here, at collection, is safe.
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application)


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Schemathesis calls the WSGI application itself, whose request signals would close the database
    connection the test's transaction lives on (Django's test client unhooks them the same way)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def headers(make_client, world):
    """Set up once per operation (Hypothesis then runs the test body many times): a customer with a
    server, and a full-scope staff token."""
    world.provision("Alice Ltd", "alice@example.com", "www.alice.example")
    return {"Authorization": f"Bearer {make_client('full').token_text}"}


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_fails_or_breaks_its_promise(case, headers):
    case.headers.update(headers)
    case.call_and_validate(
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
