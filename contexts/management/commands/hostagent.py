"""`manage.py hostagent --name NAME`: the worker of one host, in the foreground, as root.

It consumes only `host.<NAME>`, keeps its contexts under its own state directory, and has no
database: the worker runs with PANEL_ROLE=host, whose settings have none. It registers the host with
its first report (capacity read from this machine) and reports every HOST_HEARTBEAT_SECONDS.
"""

import fcntl
import json
import os
import secrets
import sys

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from contexts import host_tasks
from contexts.engine import check as host_check
from contexts.engine.errors import InvalidSpec
from contexts.engine.hostinfo import host_name
from contexts.engine.state import state_dir_from
from contexts.validators import validate_hostname
from panel.celery import worker_command

# All that the worker is handed of the environment the agent was started with: what panel/settings.py
# reads with PANEL_ROLE=host, what contexts/host_tasks.py reads, and what its engine processes need
# (host_tasks.ENGINE_ENVIRONMENT, which the worker passes on). An operator's shell may have exported
# DATABASE_URL, SECRET_KEY, cloud credentials...: none of that belongs on a host's worker.
WORKER_ENVIRONMENT = (
    "DJANGO_SETTINGS_MODULE",
    "PANEL_MODE",
    "PANEL_DATA_DIR",  # the demo's file-system broker lives there
    "DEBUG",
    "ALLOWED_HOSTS",  # production settings refuse to load without it
    "TIME_ZONE",
    "LOG_LEVEL",
    "REDIS_URL",  # the broker: the one secret the worker needs
    "HOST_HEARTBEAT_SECONDS",
    "PANEL_HEARTBEAT_SECONDS",
    "PYTHONUNBUFFERED",  # log lines appear as they happen (the tests read the agents' logs)
) + host_tasks.ENGINE_ENVIRONMENT


def worker_environment(environ, name: str, state_dir, cgroup_parent: str | None) -> dict[str, str]:
    """The whole environment of the worker of host `name`, from the agent's own `environ`."""
    environment = {k: environ[k] for k in WORKER_ENVIRONMENT if k in environ}
    environment |= {
        "PANEL_ROLE": "host",
        "PANEL_HOST_NAME": name,
        "CONTEXTS_STATE_DIR": str(state_dir),
        # Production settings require a secret key; the worker signs nothing (JSON messages, no
        # sessions), so it gets a throwaway one instead of the panel's.
        "SECRET_KEY": secrets.token_urlsafe(50),
    }
    if cgroup_parent:
        environment["CONTEXTS_CGROUP_PARENT"] = cgroup_parent
    return environment


def command_line(name: str, state_dir, cgroup_parent: str) -> list:
    """How to start this command for host `name` (the tests and benchmarks start agents this way)."""
    return [
        sys.executable,
        "manage.py",
        "hostagent",
        "--name",
        name,
        "--state-dir",
        str(state_dir),
        "--cgroup-parent",
        cgroup_parent,
        "--concurrency",
        "4",
        "--loglevel",
        "WARNING",
    ]


def restore_unacknowledged(queue: str) -> int:
    """Put back on `queue` the messages a killed earlier run of this agent had taken but not finished.

    Redis keeps them aside until a visibility timeout made for the longest task; only this agent
    consumes its queue, and it holds the lock, so whatever is aside for it belongs to a dead run."""
    from panel.celery import app

    if not settings.REDIS_URL:
        return 0  # the file-system broker of the demo hands a message out only once
    restored = 0
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        client = channel.client
        for tag, raw in client.hgetall(channel.unacked_key).items():
            try:
                _, _, routing_key = json.loads(raw)
            except (ValueError, TypeError):
                continue
            if routing_key == queue:
                channel.qos.restore_by_tag(tag.decode() if isinstance(tag, bytes) else tag, leftmost=True)
                restored += 1
    return restored


class Command(BaseCommand):
    help = "Run this host's agent: a Celery worker for host.<NAME> that carries out operations as root."

    def add_arguments(self, parser):
        parser.add_argument("--name", default=None, help="The host's name in the panel (default: this machine's).")
        parser.add_argument("--state-dir", default=None, help="Where the contexts live (default /var/lib/contexts).")
        parser.add_argument("--cgroup-parent", default=None, help="Parent cgroup of the contexts (default contexts).")
        parser.add_argument("--concurrency", type=int, default=4, help="Operations carried out at once (default 4).")
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args, **options):
        name = options["name"] or host_name()
        try:
            validate_hostname(name)
        except ValidationError as exc:
            raise CommandError(f"Invalid host name {name!r}: {' '.join(exc.messages)}") from exc
        if not 1 <= options["concurrency"] <= 64:
            raise CommandError("--concurrency must be from 1 to 64.")
        report = host_check.run(broker_url=settings.REDIS_URL or None)  # no URL: the demo's file-system broker
        if not report["ok"]:
            missing = [f"{c['name']} ({c['fix']})" for c in report["checks"] if c["required"] and not c["ok"]]
            raise CommandError("This host cannot run contexts yet: " + "; ".join(missing))
        for c in report["checks"]:  # warnings do not stop the agent, but whoever starts it reads them
            if not c["ok"]:
                fix = f" Fix: {c['fix']}" if c["fix"] else ""
                self.stdout.write(self.style.WARNING(f"Warning: {c['name']}: {c['detail']}.{fix}"))
        try:
            state_dir = state_dir_from(options["state_dir"])
        except InvalidSpec as exc:
            raise CommandError(str(exc)) from exc
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # One agent per state directory: a second one would take messages the first is working on.
        lock = os.open(state_dir / "agent.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise CommandError(f"Another host agent is running on {state_dir}.") from exc
        os.set_inheritable(lock, True)  # held by the worker this process becomes
        queue = settings.HOST_QUEUE_PREFIX + name
        restored = restore_unacknowledged(queue)
        if restored:
            self.stdout.write(f"Put back {restored} unfinished operation(s) of an earlier run on {queue}.")
        environment = worker_environment(os.environ, name, state_dir, options["cgroup_parent"])
        argv = worker_command(
            queue, f"{name}@host", options["concurrency"], options["loglevel"], "--include", "contexts.host_tasks"
        )
        self.stdout.write(f"Host agent {name}: consuming {queue}, contexts in {state_dir}.")
        self.stdout.flush()
        os.execve(sys.executable, argv, environment)
