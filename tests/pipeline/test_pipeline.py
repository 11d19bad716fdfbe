"""Provisioning end to end: service layer -> Redis -> host agent -> engine -> callback -> database,
with real worker processes, real contexts, and crashes and outages on purpose."""

import json
import time

import pytest
from django.db import transaction
from django.utils import timezone

from contexts import reconcile, services
from contexts.choices import HostState, OperationKind, ServerState
from contexts.models import Host, IPAddress, Operation, VirtualServer
from customers import services as customer_services
from customers.models import UsageRecord
from tests.pipeline_world import finished, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGm1c2VyLWtleS1mb3ItdGVzdHMtb25seS0wMDAwMDAw alice@laptop"


def provision(hosts, email="ann@example.com", hostname="www.example.com", template=None, plan="small"):
    return customer_services.provision_account(
        name=email.split("@")[0].title(),
        email=email,
        plan=hosts.plans[plan],
        template=template or hosts.busybox,
        hostname=hostname,
        actor=None,
    )


def succeeded(operation, timeout: float = 90):
    operation = finished(operation, timeout)
    assert operation.status == "succeeded", f"{operation.kind} failed: {operation.error}"
    return operation


def status_on_host(hosts, server) -> dict:
    result = hosts.agents[server.host.name].cli("status", server.name, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_provisioned_server_runs_on_its_host_with_its_address_and_limits(hosts):
    result = provision(hosts)
    operation = finished(result.operation)
    assert operation.status == "succeeded", operation.error
    server = VirtualServer.objects.get(pk=result.server.pk)
    assert server.state == ServerState.RUNNING
    assert (operation.progress, operation.step) == (100, "Done")
    assert operation.spec["params"]["password_hash"] == "(removed once sent)"
    status = status_on_host(hosts, server)
    assert status["state"] == "running"
    assert sorted(status["addresses"]) == sorted(server.addresses.values_list("address", flat=True))
    assert status["limits"]["memory_bytes"] == 256 * 2**20
    assert status["limits"]["cpus"] == 0.5
    assert status["limits"]["disk_bytes"] == 2**30
    assert status["hostname"] == "www.example.com"


def test_every_action_end_to_end(hosts):
    result = provision(hosts, template=hosts.bookworm)
    succeeded(result.operation)
    server = result.server
    agent = hosts.agents[server.host.name]

    def run(operation, expected_state):
        operation = finished(operation)
        assert operation.status == "succeeded", f"{operation.kind}: {operation.error}"
        server.refresh_from_db()
        assert server.state == expected_state, operation.kind
        return operation

    run(services.request_action(server, OperationKind.STOP, None), ServerState.STOPPED)
    assert status_on_host(hosts, server)["state"] == "stopped"
    run(services.request_action(server, OperationKind.START, None), ServerState.RUNNING)
    run(services.request_action(server, OperationKind.RESTART, None), ServerState.RUNNING)
    assert status_on_host(hosts, server)["state"] == "running"

    run(services.change_hostname(server, "shop.example.com", None), ServerState.RUNNING)
    assert agent.cli("exec", server.name, "--", "hostname").stdout.strip() == "shop.example.com"

    operation, password = services.reset_root_password(server, None)
    run(operation, ServerState.RUNNING)
    # The password works for su, typed on a terminal by an unprivileged user inside the guest.
    su = agent.cli(
        "exec",
        server.name,
        "--",
        "sh",
        "-c",
        f"(sleep 1; printf '%s\\n' '{password}') | setpriv --reuid=65534 --regid=65534 --clear-groups "
        "script -qec \"su -c 'id -u' root\" /dev/null",
    )
    assert su.stdout.strip().splitlines()[-1].strip() == "0", su.stdout + su.stderr
    wrong = agent.cli(
        "exec",
        server.name,
        "--",
        "sh",
        "-c",
        "(sleep 1; printf 'wrong-password\\n') | setpriv --reuid=65534 --regid=65534 --clear-groups "
        "script -qec \"su -c 'id -u' root\" /dev/null",
    )
    assert not wrong.stdout.strip().endswith("0"), "a wrong password must not work"

    run(services.set_ssh_keys(server, KEY, None), ServerState.RUNNING)
    assert agent.cli("exec", server.name, "--", "cat", "/root/.ssh/authorized_keys").stdout.strip() == KEY

    addresses = sorted(server.addresses.values_list("address", flat=True))
    run(services.change_plan(server, hosts.plans["large"], None), ServerState.RUNNING)
    status = status_on_host(hosts, server)
    assert status["limits"]["memory_bytes"] == 512 * 2**20 and status["limits"]["disk_bytes"] == 2 * 2**30
    assert len(status["addresses"]) == 3 and set(addresses) <= set(status["addresses"])

    run(services.request_action(server, OperationKind.SUSPEND, None), ServerState.SUSPENDED)
    assert status_on_host(hosts, server)["state"] == "stopped"
    run(services.request_action(server, OperationKind.UNSUSPEND, None), ServerState.RUNNING)

    agent.cli("exec", server.name, "--", "touch", "/root/old-data")
    before = sorted(server.addresses.values_list("address", flat=True))
    run(services.reinstall_server(server, hosts.bookworm, None, root_password="Fresh-pass-1234"), ServerState.RUNNING)
    status = status_on_host(hosts, server)
    assert sorted(status["addresses"]) == before and status["hostname"] == "shop.example.com"
    assert agent.cli("exec", server.name, "--", "test", "-e", "/root/old-data").returncode != 0, "data survived"
    assert agent.cli("exec", server.name, "--", "cat", "/root/.ssh/authorized_keys").stdout.strip() == KEY

    run(services.request_action(server, OperationKind.DESTROY, None), ServerState.DESTROYED)
    assert server.name not in agent.state.context_names()
    assert not IPAddress.objects.filter(server=server).exists()


def test_a_failed_change_of_plan_changes_nothing_and_can_be_retried(hosts):
    result = provision(hosts)
    succeeded(result.operation)
    server = result.server
    agent = hosts.agents[server.host.name]
    # The guest fills 1.5 GiB of a 2 GiB disk; the small plan's 1 GiB cannot hold that.
    succeeded(services.change_plan(server, hosts.plans["large"], None))
    fill = agent.cli("exec", server.name, "--", "dd", "if=/dev/zero", "of=/root/big", "bs=1M", "count=1500")
    if fill.returncode:
        import pathlib

        pathlib.Path("/tmp/debug.json").write_text(
            json.dumps(status_on_host(hosts, server), indent=1)
            + (agent.state.context_dir(server.name) / "console.log").read_text()[-3000:]
            + (agent.state.context_dir(server.name) / "run.json").read_text()
            + (agent.state.context_dir(server.name) / "init.json").read_text()
        )
    assert fill.returncode == 0, fill.stderr
    operation = finished(services.change_plan(server, hosts.plans["small"], None))
    assert operation.status == "failed" and "would not hold it" in operation.error
    server.refresh_from_db()
    assert server.plan == hosts.plans["large"] and server.state == ServerState.RUNNING
    assert server.addresses.count() == 3
    assert status_on_host(hosts, server)["limits"]["memory_bytes"] == 512 * 2**20
    agent.cli("exec", server.name, "--", "rm", "/root/big")
    succeeded(services.change_plan(server, hosts.plans["small"], None))
    assert status_on_host(hosts, server)["limits"]["disk_bytes"] == 2**30


def test_an_agent_killed_mid_create_finishes_it_exactly_once_after_a_restart(hosts):
    hosts.rows["h2"].state = HostState.MAINTENANCE
    hosts.rows["h2"].save()
    agent = hosts.agents["h1"]
    result = provision(hosts, template=hosts.bookworm)
    operation = result.operation
    wait_until(lambda: Operation.objects.filter(pk=operation.pk, step="Cloning the template").exists(), 60, "cloning")
    agent.kill()
    operation.refresh_from_db()
    assert not operation.is_finished
    agent.start()
    operation = finished(operation)
    assert operation.status == "succeeded", operation.error
    server = VirtualServer.objects.get(pk=result.server.pk)
    assert server.state == ServerState.RUNNING
    assert agent.state.context_names() == [server.name]
    assert not [p.name for p in agent.state.contexts.iterdir() if p.name.startswith(".")], "leftover staging"
    assert IPAddress.objects.filter(server=server).count() == 2
    assert status_on_host(hosts, server)["state"] == "running"
    assert Operation.objects.filter(server=server).count() == 1


def test_a_broker_outage_mid_operation_ends_visibly(hosts, settings):
    settings.OPERATION_STALL_SECONDS = 3
    result = provision(hosts, template=hosts.bookworm)
    operation = result.operation
    wait_until(lambda: Operation.objects.filter(pk=operation.pk, status="running").exists(), 60, "the host to start")
    hosts.pipeline.redis.stop()
    time.sleep(3)
    hosts.pipeline.redis.start()  # empty: every message it held is gone
    hosts.pipeline.revive()  # what the workers' units do when the outage ended one of them
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        operation.refresh_from_db()
        if operation.is_finished:
            break
        reconcile.watch_operations()  # what beat runs every 30 s
        time.sleep(1)
    assert operation.is_finished, f"still {operation.status} at {operation.step!r}"
    assert operation.status == "succeeded", operation.error
    server = VirtualServer.objects.get(pk=result.server.pk)
    assert server.state == ServerState.RUNNING
    assert status_on_host(hosts, server)["state"] == "running"
    assert hosts.agents[server.host.name].state.context_names() == [server.name]


def test_reconciliation_corrects_drift_and_records_usage(hosts, settings):
    result = provision(hosts)
    succeeded(result.operation)
    server = result.server
    agent = hosts.agents[server.host.name]
    agent.cli("exec", server.name, "--", "sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done")
    record = wait_until(lambda: UsageRecord.objects.filter(server=server, cpu_seconds__gt=0).first(), 30, "usage")
    assert record.disk_bytes > 0 and record.peak_memory_bytes > 0
    assert agent.cli("stop", server.name).returncode == 0  # behind the panel's back

    def shown_stopped():
        server.refresh_from_db()
        return server.state == ServerState.STOPPED

    wait_until(shown_stopped, 30, "a report to show the server stopped")

    # A host that stops reporting goes offline and its servers are shown as unknown; back when it reports.
    settings.HOST_SILENT_AFTER_SECONDS = 2
    agent.stop()
    time.sleep(3)
    assert server.host.name in reconcile.mark_silent_hosts()
    server.refresh_from_db()
    assert server.host.state == HostState.OFFLINE and server.shown_state == "unknown"
    agent.start()
    wait_until(lambda: Host.objects.get(pk=server.host.pk).state == HostState.ACTIVE, 60, "the host back")

    # A context the panel does not know is reported to staff, never removed.
    agent.engine.build("stray", "busybox")
    wait_until(lambda: Host.objects.get(pk=server.host.pk).unknown_contexts == ["stray"], 30, "the stray context")
    assert "stray" in agent.state.context_names()


def test_ten_provisions_spread_over_two_hosts_and_none_lands_in_maintenance(hosts):
    results = [provision(hosts, f"c{i}@example.com", f"s{i}.example.com") for i in range(10)]
    for result in results:
        succeeded(result.operation, 120)
    placed = [VirtualServer.objects.get(pk=r.server.pk).host.name for r in results]
    assert placed.count("h1") == 5 and placed.count("h2") == 5
    for name in ("h1", "h2"):
        running = [s for s in hosts.agents[name].engine.statuses() if s["state"] == "running"]
        assert len(running) == 5

    hosts.rows["h2"].state = HostState.MAINTENANCE
    hosts.rows["h2"].save()
    more = [provision(hosts, f"d{i}@example.com", f"t{i}.example.com") for i in range(3)]
    assert {VirtualServer.objects.get(pk=r.server.pk).host.name for r in more} == {"h1"}
    for result in more:
        succeeded(result.operation, 120)


def test_over_its_traffic_a_server_is_throttled_on_its_host_until_the_month_ends(hosts):
    from contexts import traffic
    from customers.choices import TrafficPolicy

    plan = hosts.plans["small"]
    plan.traffic_gib, plan.traffic_policy, plan.throttled_rate_mbit = 1, TrafficPolicy.THROTTLE, 3
    plan.save()
    result = provision(hosts)
    succeeded(result.operation)
    server = result.server
    assert status_on_host(hosts, server)["limits"]["rate_mbit"] == plan.rate_mbit
    # The month's traffic passes the allowance (as the host's counters would report it).
    with transaction.atomic():
        locked = services.locked(server)
        # The agent's reports (every second here) may have opened the month's record already.
        record, _ = UsageRecord.objects.get_or_create(
            server=locked, period_start=traffic.month_start(), defaults={"period_end": timezone.localdate()}
        )
        record.traffic_out_bytes += 2 * 2**30
        record.save()
        assert traffic.enforce(locked, record) == "throttled"
    succeeded(Operation.objects.filter(server=server, kind=OperationKind.LIMITS).get())
    assert status_on_host(hosts, server)["limits"]["rate_mbit"] == 3
    server.refresh_from_db()
    assert server.state == ServerState.RUNNING
    # The new month: the plan's rate again.
    assert traffic.renew(traffic.next_month(timezone.localdate())) == [server.pk]
    lifted = Operation.objects.filter(server=server, kind=OperationKind.LIMITS).order_by("-created_at").first()
    succeeded(lifted)
    assert status_on_host(hosts, server)["limits"]["rate_mbit"] == plan.rate_mbit
