"""Host reports applied by the panel, without processes: registration and drift."""

import time

from contexts import reconcile
from contexts.choices import HostState, ServerState
from contexts.models import Host
from contexts.services import finish_operation


def report(name, contexts=(), when=None):
    return {
        "host": name,
        "time": when or time.time() + 5,
        "capacity": {"cpus": 8, "memory_mib": 32768, "disk_gib": 900},
        "templates": ["busybox"],
        "contexts": list(contexts),
    }


def test_a_new_host_registers_in_maintenance_and_nothing_is_placed_on_it(db):
    host = reconcile.apply_report(report("new-host.example.net"))
    assert host.state == HostState.MAINTENANCE and host.cpus == 8 and host.last_heartbeat
    assert reconcile.apply_report({"host": "bad name!", "time": 0}) is None
    assert Host.objects.count() == 1


def test_a_report_corrects_drift_and_keeps_unknown_contexts(world):
    account = world.provision("Alice Ltd", "alice@example.com", "www.alice.example")
    finish_operation(account.operation.pk, ok=True)
    server = account.server
    server.refresh_from_db()
    later = time.time() + 5  # the host looked after the panel's last change
    reconcile.apply_report(
        report(world.host.name, [{"name": server.name, "state": "stopped"}, {"name": "stray"}], later)
    )
    server.refresh_from_db()
    assert server.state == ServerState.STOPPED
    world.host.refresh_from_db()
    assert world.host.unknown_contexts == ["stray"]
    reconcile.apply_report(report(world.host.name, [], later + 10))
    server.refresh_from_db()
    assert server.state == ServerState.FAILED  # its context is gone from the host
