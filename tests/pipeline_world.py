"""Fixtures for the whole pipeline as processes (registered for the suite by tests/conftest.py): a
private Redis, a panel worker on the test database, and two host agents (`manage.py hostagent`) with
their own names, queues, state directories, cgroup parents and stand-in host network namespaces.
Started once per run; every test's contexts are destroyed after it."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from contexts.engine import cgroups, clone
from contexts.engine.lifecycle import Lifecycle
from contexts.engine.state import StateDir
from contexts.management.commands import hostagent
from panel.celery import worker_command
from tests.conftest import require
from tests.kernel import Cli, wait_until

ROOT = Path(__file__).resolve().parents[1]
HOSTS = ("h1", "h2")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """A Redis of the tests' own, so a test may stop it without touching the machine's."""

    def __init__(self, directory: Path):
        self.port, self.directory, self.process = free_port(), directory, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Agent:
    def __init__(self, name: str, base: Path, env: dict):
        from pyroute2 import netns

        self.name, self.env = name, env
        self.state = StateDir(base / name)
        self.state.ensure()
        self.cgroup_parent = f"contexts-pipe-{os.getpid()}-{name}"
        self.netns = f"cp{os.getpid()}{name}"
        netns.create(self.netns)
        self.cli = Cli(self.state, self.cgroup_parent, self.netns)
        self.process = None
        self.log = base / f"{name}.log"

    @property
    def engine(self) -> Lifecycle:
        return Lifecycle(self.state, self.cgroup_parent, self.netns)

    def start(self) -> None:
        env = self.env | {"CONTEXTS_HOST_NETNS": self.netns}
        self.process = subprocess.Popen(
            hostagent.command_line(self.name, self.state.root, self.cgroup_parent),
            cwd=ROOT,
            env=env,
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the agent and its pool processes (its process group); guests' supervisors have
        sessions of their own and live on, as they would on a real host."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # the main process; it stops its pool itself (a warm shutdown)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def remove_contexts(self) -> None:
        """Destroy every context through the CLI: a process of its own, so nothing in this one (a
        browser test's event loop, which pyroute2 would try to use) can get in the way."""
        for name in self.state.context_names():
            result = self.cli("destroy", name, "--timeout", "2")
            if result.returncode != 0:
                print(f"cleanup of {self.name}/{name} failed: {result.stderr.strip()}", file=sys.stderr)

    def remove(self) -> None:
        from pyroute2 import netns

        self.stop()
        self.remove_contexts()
        try:
            cgroups.detect(self.cgroup_parent).remove_parent()
        except Exception as exc:
            print(f"cgroup cleanup of {self.name} failed: {exc}", file=sys.stderr)
        netns.remove(self.netns)


class Pipeline:
    def __init__(self, redis: Redis, agents: dict, panel, start_panel):
        self.redis, self.agents, self.panel, self._start_panel = redis, agents, panel, start_panel

    def revive(self) -> None:
        """Start again the workers that died, as their systemd units do (Restart=on-failure): a
        Redis restart can end a worker that held an unacknowledged message (kombu's restore on close)."""
        if self.panel.poll() is not None:
            self.panel = self._start_panel()
        for agent in self.agents.values():
            if agent.process is None or agent.process.poll() is not None:
                agent.start()


def _use_broker(url: str) -> str:
    """Point this process's Celery app (what services send with) at `url`; returns the old one."""
    from panel.celery import app

    old = app.conf.broker_url
    app.conf.broker_url = url
    app._after_fork()  # drop pooled connections to the old broker
    return old


@pytest.fixture(scope="session")
def pipeline(request, django_db_setup, django_db_blocker, engine_state, busybox_template, debian_template):
    from tests.kernel import need_root

    need_root()
    require(connection.vendor == "postgresql", "needs PostgreSQL: set DATABASE_URL=postgres://...")
    require(shutil.which("redis-server") is not None, "needs redis-server (apt-get install redis-server)")
    base = Path(f"/tmp/contexts-pipeline-{os.getpid()}")
    base.mkdir()
    redis = Redis(base)
    redis.start()
    settings_dict = connection.settings_dict
    env = os.environ | {
        "DATABASE_URL": f"postgres://{settings_dict['USER']}:{settings_dict['PASSWORD']}@{settings_dict['HOST']}:"
        f"{settings_dict['PORT']}/{settings_dict['NAME']}",
        "REDIS_URL": redis.url,
        "PANEL_HEARTBEAT_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }

    def start_panel():
        return subprocess.Popen(
            worker_command("panel", f"panel-{os.getpid()}@test", 2, "WARNING"),
            cwd=ROOT,
            env=env,
            stdout=open(base / "panel.log", "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    world = Pipeline(redis, {}, start_panel(), start_panel)
    agents = world.agents
    try:
        for name in HOSTS:
            agent = agents[name] = Agent(name, base, env)
            for template in (busybox_template, debian_template):  # hard-link copies: instant, no disk
                clone.clone_tree(engine_state[0].template_dir(template), agent.state.template_dir(template))
            agent.start()
        yield world
    finally:
        for agent in agents.values():
            agent.remove()
        world.panel.terminate()
        try:
            world.panel.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(world.panel.pid, signal.SIGKILL)
        redis.stop()
        for log in base.glob("*.log") if request.session.testsfailed else ():  # the workers' words, on failure
            sys.stderr.write(f"--- {log.name} (last lines)\n" + "".join(log.read_text().splitlines(True)[-30:]))
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def hosts(pipeline, transactional_db):
    """The two agents' hosts in the panel, with the templates, a v4 and a v6 pool each, and plans;
    every context made during the test is destroyed afterwards, even when it fails."""
    from decimal import Decimal

    from django.db import transaction

    from contexts.models import Host, Template
    from tests.conftest import make_plan, make_pool

    old_broker = _use_broker(pipeline.redis.url)  # what services send with, for this test only
    try:
        # One transaction that takes the host rows first, in name order, as the panel does: the
        # agents' reports (which register and lock their host) then wait instead of deadlocking.
        with transaction.atomic():
            rows = {}
            for name in HOSTS:
                rows[name], _ = Host.objects.update_or_create(
                    name=name, defaults=dict(cpus=Decimal(4), memory_mib=16384, disk_gib=500, state="active")
                )
            busybox = Template.objects.create(name="busybox", distribution="BusyBox", version="1.35")
            bookworm = Template.objects.create(name="bookworm", distribution="Debian", version="12")
            for template in (busybox, bookworm):
                template.hosts.add(*rows.values())
            make_pool("v4-h1", "192.0.2.0/27", "192.0.2.1", rows["h1"])
            make_pool("v4-h2", "192.0.2.32/27", "192.0.2.33", rows["h2"])
            make_pool("v6-h1", "2001:db8:1::/64", "2001:db8:1::1", rows["h1"])
            make_pool("v6-h2", "2001:db8:2::/64", "2001:db8:2::1", rows["h2"])
        plans = {
            "small": make_plan("small", memory_mib=256, swap_mib=0, disk_gib=1, process_limit=256),
            "large": make_plan(
                "large",
                cpu_cores=Decimal("1.00"),
                memory_mib=512,
                swap_mib=0,
                disk_gib=2,
                process_limit=512,
                ipv6_count=2,
                price_monthly=Decimal("10"),
            ),
        }
        yield type(
            "Hosts",
            (),
            dict(rows=rows, busybox=busybox, bookworm=bookworm, plans=plans, agents=pipeline.agents, pipeline=pipeline),
        )
    finally:  # also when the set-up itself failed
        if pipeline.redis.process.poll() is not None:
            pipeline.redis.start()
        quiesce(pipeline)
        pipeline.revive()  # a test that killed an agent and failed before restarting it
        for agent in pipeline.agents.values():
            agent.remove_contexts()
        _use_broker(old_broker)


def quiesce(pipeline) -> None:
    """Drop what is still queued for the hosts (a watchdog's second send, say) and wait until no
    operation runs, so nothing rebuilds a context after the test removed it."""
    import redis

    client = redis.Redis.from_url(pipeline.redis.url)
    client.delete(*(f"host.{name}" for name in HOSTS))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and running_operations():
        time.sleep(0.1)


def running_operations() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if b"run-operation" in f.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def finished(operation, timeout: float = 90):
    """Wait for an operation to finish and return it fresh from the database."""

    def done():
        operation.refresh_from_db()
        return operation if operation.is_finished else None

    return wait_until(
        done,
        timeout,
        f"{operation.get_kind_display().lower()} {operation.pk} to finish "
        f"(status {operation.status}, step {operation.step!r})",
    )
