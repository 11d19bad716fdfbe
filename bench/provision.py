"""Provisioning end to end: from `provision_account` to the server running with its address.

    sudo .venv/bin/python bench/provision.py [--runs 5]

Runs the real pipeline on this machine: a panel worker and a host agent (`manage.py hostagent`)
as processes, Redis and PostgreSQL. Uses the database `panel_bench` (created if missing, on the
server of DATABASE_URL, default postgres://panel:panel@127.0.0.1:5432/) and Redis database 12
(REDIS_URL to change), both emptied first. Guests' networking goes into a namespace it creates.
Prints the median for 1 provision at a time and for 10 at once, and the floor: the host CLI's own
build + start of the same guest, which is what the pipeline adds its queueing and bookkeeping to.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from common import ROOT, database_url, fresh_database, need_root, remove_everything

DATABASE_URL = database_url("panel_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")


def prepare_database() -> None:
    fresh_database("panel_bench")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="single provisions to time (default 5)")
    args = parser.parse_args()
    need_root("bench/provision.py")
    prepare_database()
    os.environ.update(DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL, DJANGO_SETTINGS_MODULE="panel.settings")
    os.environ.pop("PANEL_MODE", None)
    import django

    django.setup()
    from django.core.management import call_command
    from pyroute2 import netns

    from contexts.engine.lifecycle import Lifecycle
    from contexts.engine.state import StateDir
    from contexts.engine.templates import Templates
    from contexts.management.commands import hostagent
    from panel.celery import worker_command

    call_command("migrate", verbosity=0)
    tag = f"bench-prov-{os.getpid()}"
    state = StateDir(Path("/tmp") / tag)
    state.ensure()
    Templates(state).build_busybox("busybox")
    netns.create(tag)
    env = os.environ | {"CONTEXTS_HOST_NETNS": tag, "PANEL_HEARTBEAT_SECONDS": "5"}
    procs = [
        subprocess.Popen(
            hostagent.command_line("bench", state.root, tag),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            worker_command("panel", f"{tag}@bench", 2, "WARNING"),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    engine = Lifecycle(state, tag, tag)
    try:
        pipeline = run_pipeline(args.runs)
        floor = []
        for _ in range(args.runs):
            name = f"floor-{uuid.uuid4().hex[:6]}"
            start = time.perf_counter()
            cli = ["-m", "contexts"]
            cli_env = env | {"CONTEXTS_STATE_DIR": str(state.root), "CONTEXTS_CGROUP_PARENT": tag}
            build = ["build", name, "--template", "busybox", "--disk", "10G", "--memory", "256M", "--cpus", "0.5"]
            build += ["--rate", "100", "--address", "198.18.1.1", "--address", "2001:db8:c::1"]
            subprocess.run([sys.executable, *cli, *build], env=cli_env, cwd=ROOT, check=True, capture_output=True)
            subprocess.run(
                [sys.executable, *cli, "start", name], env=cli_env, cwd=ROOT, check=True, capture_output=True
            )
            floor.append(time.perf_counter() - start)
            engine.destroy(name, timeout=2)
        single, ten = pipeline
        floor_ms = statistics.median(floor) * 1000
        print(f"kernel {os.uname().release}, {os.cpu_count()} CPUs, busybox guests with a 10 GiB disk and 2 addresses")
        print(
            f"  provision_account -> running with its address, one at a time: median {single:7.1f} ms "
            f"({args.runs} runs)"
        )
        print(
            f"  the same, 10 at once:                                      median {ten:7.1f} ms, "
            f"each of the 10 from its own request"
        )
        print(f"  floor: host CLI build + start of the same guest:            median {floor_ms:7.1f} ms")
        print(f"  pipeline / floor: {single / floor_ms:.2f}x (one), {ten / floor_ms:.2f}x (ten at once)")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        remove_everything(engine, tag)
        netns.remove(tag)


def run_pipeline(runs: int) -> tuple[float, float]:
    from decimal import Decimal

    from contexts.models import Host, IPPool, Operation, Template
    from customers.models import Plan
    from customers.services import provision_account

    host, _ = Host.objects.update_or_create(
        name="bench", defaults=dict(cpus=Decimal(64), memory_mib=2**20, disk_gib=10**5, state="active")
    )
    template = Template.objects.create(name="busybox", distribution="BusyBox", version="1")
    template.hosts.add(host)
    for name, cidr in (("v4", "198.18.0.0/24"), ("v6", "2001:db8:b::/64")):
        pool = IPPool(name=name, cidr=cidr)
        pool.full_clean()
        pool.save()
        pool.hosts.add(host)
    plan = Plan.objects.create(
        slug="b", name="B", cpu_cores=Decimal("0.5"), memory_mib=256, disk_gib=10, price_monthly=Decimal(1)
    )
    counter = iter(range(10**6))

    def provision():
        i = next(counter)
        return time.perf_counter(), provision_account(
            name=f"C{i}",
            email=f"c{i}@example.com",
            plan=plan,
            template=template,
            hostname=f"s{i}.example.com",
            actor=None,
        ).operation

    def wait(started):
        # One query a round for all that are still running: the polling must not load the database it times.
        starts = {operation.pk: start for start, operation in started}
        done = {}
        while len(done) < len(started):
            pending = [pk for pk in starts if pk not in done]
            rows = Operation.objects.filter(pk__in=pending, status__in=("succeeded", "failed"))
            for pk, status, error in rows.values_list("pk", "status", "error"):
                if status == "failed":
                    raise SystemExit(f"provisioning failed: {error}")
                done[pk] = time.perf_counter() - starts[pk]
            time.sleep(0.005)
        return list(done.values())

    wait([provision()])  # warm up the workers
    single = [wait([provision()])[0] for _ in range(runs)]
    ten = wait([provision() for _ in range(10)])
    return statistics.median(single) * 1000, statistics.median(ten) * 1000


if __name__ == "__main__":
    main()
