"""The host agent's Celery tasks. They run as root on a host, call the engine, and never touch the
database: everything arrives in the task's spec, everything learned goes back on the `panel` queue.

`manage.py hostagent` starts a worker that consumes only `host.<name>` and imports this module.
"""

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time

from celery import current_app, shared_task, signals
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from .engine import hostinfo
from .engine.lifecycle import ENGINE_SETTINGS

log = logging.getLogger("contexts.hostagent")

HOST_NAME_ENV = "PANEL_HOST_NAME"
PROGRESS_TASK = "contexts.report_progress"
REPORT_TASK = "contexts.host_report"
# All that an engine process (`python -m contexts ...`) is handed of the agent's environment: its
# programs, a locale and the engine's own settings. The broker URL, the database URL and the secret
# key stay out, so nothing the engine starts (guests, their helpers) can ever inherit them.
ENGINE_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", *ENGINE_SETTINGS)


class Transient(Exception):
    """Worth another try later: the host was busy (a lock, a device), not wrong."""


def host_name() -> str:
    return os.environ.get(HOST_NAME_ENV) or hostinfo.host_name()


def engine_command(command: str, environ=None) -> tuple[list[str], dict[str, str]]:
    """The argv and the whole environment of an engine process running `command` (`report`, ...)."""
    environ = os.environ if environ is None else environ
    return [sys.executable, "-m", "contexts", command], {k: environ[k] for k in ENGINE_ENVIRONMENT if k in environ}


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
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(Transient,),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=5,
)
def run_operation(spec: dict) -> dict:
    """Carry out one operation; the returned outcome goes to `contexts.record_outcome` on the panel.

    The engine works in a process of its own (`python -m contexts run-operation`): it forks helpers
    (network namespaces, guest processes), which must not happen inside the pool's own processes,
    and a crash there is a failed operation, not a lost worker."""
    operation = str(spec.get("operation")) if isinstance(spec, dict) else "?"
    kind = spec.get("kind") if isinstance(spec, dict) else "?"
    started = time.monotonic()
    outcome = {"operation": operation, "host": host_name()}
    # stderr goes to a file: a pipe read only at the end could fill up and stall the engine.
    errors = tempfile.TemporaryFile("w+")
    argv, env = engine_command("run-operation")
    process = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        cwd=settings.BASE_DIR,
    )
    try:
        process.stdin.write(json.dumps(spec))
        process.stdin.close()
        result = None
        for line in process.stdout:
            message = json.loads(line)
            if "progress" in message:
                log.info("operation %s: %s%% %s", operation, message["progress"], message["step"])
                send_to_panel(PROGRESS_TASK, operation, message["progress"], message["step"])
            else:
                result = message
        process.wait()
        if result is None:
            errors.seek(0)
            result = {"ok": False, "error": f"The host's engine stopped unexpectedly: {errors.read().strip()[-300:]}"}
    except SoftTimeLimitExceeded:
        process.kill()
        process.wait()
        result = {"ok": False, "error": f"The host gave up after {time.monotonic() - started:.0f} s (time limit)."}
    finally:
        errors.close()
    if result.pop("transient", False):
        raise Transient(result["error"][-300:])
    outcome |= result
    outcome["log"] = f"{kind} took {time.monotonic() - started:.1f} s"
    return outcome


def report() -> dict:
    """This host's report, read by the CLI in a process of its own: the worker's main process must
    not fork for netlink work itself (its pool is forked from it, and pyroute2's helper processes
    are signalled by pid when they finish)."""
    argv, env = engine_command("report")
    result = subprocess.run(
        argv,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=settings.BASE_DIR,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip()[-300:] or f"status {result.returncode}")
    return {"host": host_name(), "time": time.time()} | json.loads(result.stdout)


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
