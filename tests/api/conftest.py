"""API clients holding tokens of each scope, acting for staff or for a customer."""

import pytest
from rest_framework.test import APIClient

from panel.api import tokens


@pytest.fixture
def make_client(world):
    def make(scope="full", user=None, networks="", remote="127.0.0.1"):
        _, text = tokens.issue(
            name=f"{scope} token",
            user=user or world.staff,
            scope=scope,
            allowed_networks=networks,
            created_by=world.staff,
        )
        client = APIClient(REMOTE_ADDR=remote)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {text}")
        client.token_text = text
        return client

    return make


@pytest.fixture
def api(make_client):
    """A billing system's token: full scope, acting for staff."""
    return make_client("full")
