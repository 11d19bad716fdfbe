"""The host agent's Celery tasks. They run as root on a host, call the engine, and never touch the
database: everything arrives in the task's spec, everything learned goes back on the `panel` queue.

`manage.py hostagent` starts a worker that consumes only `host.<name>` and imports this module.
"""

import logging
import os
import threading
import time

from celery import current_app, shared_task, signals
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from .engine import hostinfo, operations
from .engine.errors import EngineError
from .engine.lifecycle import Lifecycle
from .engine.spec import OperationSpec
from .engine.state import StateDir, state_dir_from

log = logging.getLogger("contexts.hostagent")

HOST_NAME_ENV = "PANEL_HOST_NAME"
PROGRESS_TASK = "contexts.report_progress"
REPORT_TASK = "contexts.host_report"


class Transient(Exception):
    """Worth another try later: the host was busy (a lock, a device), not wrong."""


def host_name() -> str:
    return os.environ.get(HOST_NAME_ENV) or hostinfo.host_name()


def engine() -> Lifecycle:
    return Lifecycle(
        StateDir(state_dir_from(None)),
        os.environ.get("CONTEXTS_CGROUP_PARENT") or None,
        os.environ.get("CONTEXTS_HOST_NETNS") or None,
    )


def send_to_panel(task: str, *args) -> bool:
    """Send a message to the panel; a broker outage costs the message, never the host's work."""
    try:
        current_app.send_task(
            task,
            args=args,
            queue=settings.PANEL_QUEUE,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.5, "interval_step": 1},
        )
        return True
    except Exception as exc:  # the broker is down: the operation's outcome still goes out at the end
        log.warning("could not send %s to the panel: %s", task, exc)
        return False


@shared_task(
    name="contexts.host.run_operation",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(Transient,),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=5,
)
def run_operation(self, spec: dict) -> dict:
    """Carry out one operation; the returned outcome goes to `contexts.record_outcome` on the panel."""
    operation = str(spec.get("operation")) if isinstance(spec, dict) else "?"
    started = time.monotonic()

    def progress(percent: int, step: str) -> None:
        send_to_panel(PROGRESS_TASK, operation, percent, step)

    outcome = {"operation": operation, "host": host_name()}
    try:
        parsed = OperationSpec.from_dict(spec)
        progress(1, "Started on the host")
        facts = operations.run(engine(), parsed, progress)
        outcome |= {"ok": True, "facts": facts}
    except BlockingIOError as exc:
        raise Transient(str(exc)) from exc
    except EngineError as exc:
        outcome |= {"ok": False, "error": str(exc)}
    except SoftTimeLimitExceeded:
        outcome |= {"ok": False, "error": f"The host gave up after {time.monotonic() - started:.0f} s (time limit)."}
    except Exception as exc:  # a bug or an unexpected host failure: report it readably, keep the worker
        log.exception("operation %s failed", operation)
        outcome |= {"ok": False, "error": f"Unexpected error on the host: {type(exc).__name__}: {exc}"}
    outcome["log"] = f"{spec.get('kind') if isinstance(spec, dict) else '?'} took {time.monotonic() - started:.1f} s"
    return outcome


def report() -> dict:
    """What this host is and holds: capacity, templates, and every context with its state and usage."""
    lifecycle = engine()
    capacity = hostinfo.read_capacity(str(lifecycle.state.root) if lifecycle.state.root.exists() else "/")
    return {
        "host": host_name(),
        "time": time.time(),
        "capacity": {"cpus": capacity.cpus, "memory_mib": capacity.memory_mib, "disk_gib": capacity.disk_gib},
        "templates": lifecycle.state.template_names() if lifecycle.state.root.exists() else [],
        "contexts": operations.inventory(lifecycle) if lifecycle.state.root.exists() else [],
    }


def send_report() -> None:
    try:
        data = report()
    except Exception:
        log.exception("could not read this host's state")
        return
    send_to_panel(REPORT_TASK, data)


@shared_task(name="contexts.host.report_now")
def report_now() -> None:
    """The panel asks for a report at once (after an outage, or from a test)."""
    send_report()


def _heartbeat_loop(interval: float, stop: threading.Event) -> None:
    while not stop.is_set():
        send_report()
        stop.wait(interval)


_stop_heartbeat = threading.Event()


@signals.worker_ready.connect
def start_heartbeat(sender=None, **kwargs):
    # Only in the host agent (a panel process may import this module to send tasks).
    if os.environ.get("PANEL_ROLE") != "host":
        return
    interval = float(os.environ.get("PANEL_HEARTBEAT_SECONDS", settings.HOST_HEARTBEAT_SECONDS))
    threading.Thread(target=_heartbeat_loop, args=(interval, _stop_heartbeat), daemon=True, name="heartbeat").start()


@signals.worker_shutting_down.connect
def stop_heartbeat(**kwargs):
    _stop_heartbeat.set()
