"""Fixtures shared by the panel-side tests of servers."""

import pytest

from contexts.choices import ServerState
from contexts.services import finish_operation


@pytest.fixture
def running(world):
    """Alice's server, created and running (the host's outcome recorded as a host would)."""
    account = world.provision("Alice Ltd", "alice@example.com", "www.alice.example")
    finish_operation(account.operation.pk, ok=True)
    account.server.refresh_from_db()
    assert account.server.state == ServerState.RUNNING
    return account
