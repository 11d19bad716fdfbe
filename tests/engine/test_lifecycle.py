"""Starting, stopping, rebooting and destroying contexts, and what they leave behind on the host."""

import json
import os
import time
import uuid

import pytest

from contexts.engine import procinfo, safefile
from contexts.engine.errors import (
    ContextExists,
    ContextNotFound,
    EngineError,
    InvalidSpec,
    InvalidState,
    TemplateNotFound,
)
from tests.engine.conftest import inside
from tests.kernel import wait_until


def host_mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return f.read().splitlines()


def test_stop_removes_every_process_including_a_double_forked_daemon(engine, make_context):
    name = make_context()
    # The daemon leaves init's process tree: its parent exits, it gets a new session.
    inside(engine, name, "(setsid sh -c 'sleep 1000 & sleep 1001' </dev/null >/dev/null 2>&1 &) ; sleep 0.2")
    cg = engine._cgroups(engine.state.config(name))
    pids = cg.pids(name)
    assert len(pids) >= 3  # init and the two sleeps
    started = time.monotonic()
    assert engine.stop(name, timeout=5) is True
    assert time.monotonic() - started < 5 + 2
    assert not any(procinfo.is_alive(pid) for pid in pids)
    assert not cg.exists(name)
    assert engine.status(name)["state"] == "stopped"


def test_init_that_ignores_the_halt_request_is_killed_after_the_timeout(engine, make_context):
    name = make_context(init=["/bin/sleep", "1000"])
    pid = engine.status(name)["init_pid"]
    started = time.monotonic()
    engine.stop(name, timeout=1)
    assert 1 <= time.monotonic() - started < 5
    assert not procinfo.is_alive(pid)


def test_context_outlives_the_cli_that_started_it(engine, make_context, cli):
    name = make_context(start=False)
    result = cli("start", name)
    assert result.returncode == 0 and result.stdout.strip() == f"{name} started."
    status = json.loads(cli("status", name, "--json", check=True).stdout)
    assert status["state"] == "running" and procinfo.is_alive(status["init_pid"])


def test_guest_reboot_restarts_and_halt_stops(engine, make_context):
    name = make_context()
    first = engine.status(name)["init_pid"]
    inside(engine, name, "reboot")
    status = wait_until(
        lambda: (s := engine.status(name))["state"] == "running" and s["init_pid"] != first and s, 15, "a reboot", 0.05
    )
    assert status["last_exit"]["reason"] == "rebooted"
    inside(engine, name, "halt")
    status = wait_until(
        lambda: (
            (s := engine.status(name))["state"] == "stopped" and s.get("last_exit", {}).get("reason") == "halted" and s
        ),
        15,
        "a halt",
        0.05,
    )
    assert status["init_pid"] is None


def test_five_start_stop_cycles_leak_no_descriptor_mount_or_process(engine, make_context):
    name = make_context(start=False)
    engine.start(name)
    engine.stop(name, timeout=5)
    fds, mounts = set(os.listdir("/proc/self/fd")), host_mounts()
    for _ in range(5):
        engine.start(name)
        assert engine.status(name)["state"] == "running"
        engine.stop(name, timeout=5)
    assert set(os.listdir("/proc/self/fd")) == fds
    assert host_mounts() == mounts
    assert not engine._cgroups(engine.state.config(name)).exists(name)


def test_guest_mounts_never_show_on_the_host(engine, make_context):
    before = host_mounts()
    name = make_context()
    assert host_mounts() == before
    assert "overlay" in inside(engine, name, "cat /proc/mounts").stdout


def test_planted_symlink_does_not_redirect_a_host_write(engine, make_context, tmp_path):
    canary = tmp_path / "canary"
    canary.write_text("host secret\n")
    name = make_context(hostname="safe.example.com")
    # The guest replaces /etc/hostname and /etc/hosts with links to a host path, then restarts.
    inside(engine, name, f"rm -f /etc/hostname /etc/hosts; ln -s {canary} /etc/hostname; ln -s {canary} /etc/hosts")
    engine.restart(name, timeout=5)
    assert canary.read_text() == "host secret\n"
    assert (
        inside(engine, name, "cat /etc/hostname; test -L /etc/hosts || echo regular").stdout
        == "safe.example.com\nregular\n"
    )


def test_etc_turned_into_a_symlink_makes_start_fail_cleanly(engine, make_context):
    name = make_context()
    inside(engine, name, "mv /etc /etc.real && /bin/busybox ln -s / /etc")
    engine.stop(name, timeout=5)
    with pytest.raises(Exception, match="is a symlink"):
        engine.start(name)
    assert engine.status(name)["state"] == "stopped"
    assert not engine._cgroups(engine.state.config(name)).exists(name)


def test_starting_twice_and_stopping_twice(engine, make_context):
    name = make_context()
    with pytest.raises(InvalidState, match="already running"):
        engine.start(name)
    assert engine.stop(name, timeout=5) is True
    assert engine.stop(name, timeout=5) is False  # nothing to stop: a no-op


def test_bad_input_is_refused(engine, busybox_template):
    with pytest.raises(InvalidSpec, match="Invalid context name"):
        engine.build("../escape", busybox_template)
    with pytest.raises(InvalidSpec, match="Invalid context name"):
        engine.build("UPPER", busybox_template)
    with pytest.raises(TemplateNotFound, match="No template named 'nope' \\(templates here: .*busybox"):
        engine.build("t-ok", "nope")
    with pytest.raises(ContextNotFound):
        engine.start("t-missing")
    with pytest.raises(InvalidSpec, match="Invalid address"):
        engine.build("t-ok", busybox_template, addresses=["300.1.1.1/24"])
    with pytest.raises(InvalidSpec, match="absolute path"):
        engine.build("t-ok", busybox_template, init=["sleep", "1"])
    assert "t-ok" not in engine.state.context_names()


def test_names_and_context_ids_are_unique(engine, make_context):
    name = make_context(start=False)
    with pytest.raises(ContextExists):
        engine.build(name, engine.state.config(name)["template"])
    taken = engine.state.config(name)["context_id"]
    with pytest.raises(ContextExists, match=f"Context id {taken} is taken"):
        engine.build(f"t-{uuid.uuid4().hex[:8]}", engine.state.config(name)["template"], context_id=taken)


def test_destroy_removes_everything(engine, make_context):
    name = make_context()
    directory = engine.state.context_dir(name)
    inside(engine, name, "echo data > /root/file")
    assert safefile.read_file(directory / "upper", "root/file") == b"data\n"
    engine.destroy(name, timeout=5)
    assert not directory.exists()
    assert name not in engine.state.context_names()


def test_cli_errors_are_one_line_and_exit_non_zero(cli, busybox_template, make_context):
    for args, message in (
        (("start", "Bad_Name"), "contexts: error: Invalid context name 'Bad_Name'"),
        (("build", "t-x", "--template", "missing"), "contexts: error: No template named 'missing'"),
        (("status", "t-nothing"), "contexts: error: No context named 't-nothing'."),
        (("exec", "t-nothing", "--", "true"), "contexts: error: No context named 't-nothing'."),
    ):
        result = cli(*args)
        assert result.returncode == 1, result
        assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr
    name = make_context()
    result = cli("start", name)
    assert result.returncode == 1 and "already running" in result.stderr
    stopped = cli("stop", name, "--timeout", "5")
    assert stopped.returncode == 0
    again = cli("stop", name)
    assert again.returncode == 0 and "was not running" in again.stderr


def test_status_and_list_json(cli, make_context):
    name = make_context(hostname="json.example.com", addresses=["192.0.2.10/24"])
    status = json.loads(cli("status", name, "--json", check=True).stdout)
    assert {
        "name",
        "state",
        "context_id",
        "init_pid",
        "hostname",
        "template",
        "init",
        "addresses",
        "limits",
        "last_exit",
    } <= set(status)
    assert status["hostname"] == "json.example.com" and status["addresses"] == ["192.0.2.10"]
    listed = json.loads(cli("list", "--json", check=True).stdout)
    assert name in [s["name"] for s in listed]


def test_state_directory_is_closed_to_other_host_users(engine, make_context):
    name = make_context(start=False)
    engine.state.ensure()
    for directory in (engine.state.root, engine.state.contexts, engine.state.templates):
        assert directory.stat().st_mode & 0o777 == 0o700
    assert engine.state.context_dir(name).parent == engine.state.contexts


def test_build_refuses_without_overlayfs(engine, busybox_template, monkeypatch):
    # A double for the kernel's file system list: overlayfs cannot be unloaded from the running kernel.
    monkeypatch.setattr("contexts.engine.check.has_overlayfs", lambda: False)
    with pytest.raises(EngineError, match="no overlayfs"):
        engine.build("t-no-overlay", busybox_template)
    assert "t-no-overlay" not in engine.state.context_names()
