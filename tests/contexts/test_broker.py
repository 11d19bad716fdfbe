"""The queued spec, read back off the real Redis broker."""

import os

import pytest
from django.conf import settings
from kombu import Connection

from contexts.choices import OperationKind
from contexts.exceptions import InvalidRequest
from contexts.tasks import HOST_OPERATION_TASK
from tests.conftest import require


@pytest.fixture
def redis_broker():
    require(
        bool(os.environ.get("REDIS_URL")) and settings.CELERY_BROKER_URL.startswith("redis://"),
        "needs Redis: set REDIS_URL=redis://...",
    )
    with Connection(settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=1)
        yield conn


def test_create_lands_on_the_host_queue_with_a_complete_spec(redis_broker, world, django_capture_on_commit_callbacks):
    queue = redis_broker.SimpleQueue(world.host.queue)
    queue.clear()
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            result = world.provision("Alice", "alice@example.com", "www.example.com")
        assert len(callbacks) == 1
        message = queue.get(timeout=5)
        message.ack()
    finally:
        queue.clear()
        queue.close()
    assert message.headers["task"] == HOST_OPERATION_TASK
    assert message.headers["id"] == str(result.operation.pk)
    args, kwargs, embed = message.payload
    spec = args[0]
    assert spec == result.operation.spec
    assert spec["kind"] == OperationKind.CREATE and spec["version"] == 1
    assert spec["context"]["name"] == result.server.name
    assert spec["context"]["hostname"] == "www.example.com"
    assert spec["context"]["context_id"] == result.server.context_id
    assert set(spec["context"]["limits"]) == {
        "cpus",
        "cpu_weight",
        "memory_mib",
        "swap_mib",
        "disk_gib",
        "inodes",
        "pids",
        "rate_mbit",
    }
    assert len(spec["context"]["addresses"]) == 2
    # The outcome is recorded by a callback on the panel queue, chained to the host task.
    (callback,) = embed["chain"]
    assert callback["task"] == "contexts.record_outcome" and callback["options"]["queue"] == "panel"


def test_nothing_is_sent_when_the_transaction_fails(redis_broker, world, django_capture_on_commit_callbacks):
    queue = redis_broker.SimpleQueue(world.host.queue)
    queue.clear()
    try:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            with pytest.raises(InvalidRequest):
                world.provision("Alice", "bad", "www.example.com")
        assert callbacks == []
        with pytest.raises(queue.Empty):
            queue.get(block=False)
    finally:
        queue.close()
