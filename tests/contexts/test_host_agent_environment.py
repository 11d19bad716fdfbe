"""What the host agent hands its worker and the engine processes it starts: only what they need."""

import io
import json
import os
import sys
import types

import pytest
from django.core.management import call_command

from contexts import host_tasks
from contexts.management.commands import hostagent
from tests.conftest import require
from tests.kernel import need_root

SECRETS = ("REDIS_URL", "DATABASE_URL", "SECRET_KEY")
OPERATORS_SHELL = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "DJANGO_SETTINGS_MODULE": "panel.settings",
    "PANEL_MODE": "production",
    "ALLOWED_HOSTS": "panel.example.com",
    "REDIS_URL": "redis://:broker-password@10.0.0.1:6379/0",
    "DATABASE_URL": "postgres://panel:db-password@10.0.0.2/panel",
    "SECRET_KEY": "the-panels-own-secret-key",
    "AWS_SECRET_ACCESS_KEY": "cloud",
    "SSH_AUTH_SOCK": "/tmp/ssh-agent",
    "CONTEXTS_HOST_NETNS": "mgmt",
    "CONTEXTS_UNSAFE_NO_SECCOMP": "1",
}


def test_engine_processes_get_path_locale_and_their_own_settings_only():
    for command in ("run-operation", "report"):
        argv, env = host_tasks.engine_command(command, OPERATORS_SHELL)
        assert argv == [sys.executable, "-m", "contexts", command]
        assert env == {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "CONTEXTS_HOST_NETNS": "mgmt",
            "CONTEXTS_UNSAFE_NO_SECCOMP": "1",
        }
    assert all(
        name in ("PATH", "LANG", "LC_ALL") or name.startswith("CONTEXTS_") for name in host_tasks.ENGINE_ENVIRONMENT
    )


def test_the_worker_gets_the_broker_but_not_the_database_nor_the_panels_key():
    env = hostagent.worker_environment(OPERATORS_SHELL, "h1", "/var/lib/contexts", "contexts-h1")
    assert "DATABASE_URL" not in env and "AWS_SECRET_ACCESS_KEY" not in env and "SSH_AUTH_SOCK" not in env
    assert "HOME" not in env
    assert env["REDIS_URL"] == OPERATORS_SHELL["REDIS_URL"]
    assert env["SECRET_KEY"] != OPERATORS_SHELL["SECRET_KEY"] and len(env["SECRET_KEY"]) >= 50
    assert env["PANEL_ROLE"] == "host" and env["PANEL_HOST_NAME"] == "h1" and env["PANEL_MODE"] == "production"
    assert env["CONTEXTS_STATE_DIR"] == "/var/lib/contexts" and env["CONTEXTS_CGROUP_PARENT"] == "contexts-h1"
    assert env["CONTEXTS_UNSAFE_NO_SECCOMP"] == "1"  # the worker passes it on to the engine
    # What the worker hands the engine from there has no secret left at all.
    assert not set(SECRETS) & set(host_tasks.engine_command("report", env)[1])


def test_a_real_engine_process_has_no_secret_in_its_environment(monkeypatch, tmp_path):
    """host_tasks.report() for real: a wrapper in front of Python records the engine's environment."""
    need_root()  # `python -m contexts report` is a root command
    seen = tmp_path / "environment.json"
    wrapper = tmp_path / "python"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"open({str(seen)!r}, 'w').write(json.dumps(dict(os.environ)))\n"
        f"os.execv({sys.executable!r}, [{sys.executable!r}] + sys.argv[1:])\n"
    )
    wrapper.chmod(0o755)
    monkeypatch.setattr(host_tasks, "sys", types.SimpleNamespace(executable=str(wrapper)))
    for name, value in OPERATORS_SHELL.items():
        if name not in ("PATH", "CONTEXTS_HOST_NETNS"):  # this machine's own PATH; no stand-in namespace
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("CONTEXTS_STATE_DIR", str(tmp_path / "state"))
    data = host_tasks.report()
    environment = json.loads(seen.read_text())
    assert not set(SECRETS) & set(environment), sorted(environment)
    assert "AWS_SECRET_ACCESS_KEY" not in environment and "HOME" not in environment
    assert environment["CONTEXTS_STATE_DIR"] == str(tmp_path / "state")
    # The override did reach the engine, which says so in its report for the panel.
    assert data["unsafe"] == ["Guests run without a syscall filter (CONTEXTS_UNSAFE_NO_SECCOMP is set)."]


@pytest.fixture
def started(monkeypatch, tmp_path, settings):
    """`manage.py hostagent` up to the point where it becomes the worker: its output and exec."""
    need_root()  # the agent's host check requires root
    require(os.environ.get("REDIS_URL", "").startswith("redis://"), "needs Redis: set REDIS_URL=redis://...")
    execs = []
    monkeypatch.setattr(hostagent.os, "execve", lambda path, argv, env: execs.append((path, argv, env)))
    monkeypatch.setenv("DATABASE_URL", "postgres://panel:db-password@127.0.0.1/panel")
    monkeypatch.setenv("SECRET_KEY", "the-panels-own-secret-key")
    monkeypatch.delenv("CONTEXTS_UNSAFE_NO_SECCOMP", raising=False)
    settings.REDIS_URL = "redis://127.0.0.1:6379/12"  # the machine's Redis, which has no password
    out = io.StringIO()
    call_command("hostagent", "--name", "agent-env-test", "--state-dir", str(tmp_path / "state"), stdout=out)
    return out.getvalue(), execs


def test_the_agent_prints_the_broker_warnings_and_starts_a_worker_without_secrets(started):
    out, execs = started
    assert "Warning: broker AUTH" in out and "Warning: broker password" in out
    assert "Host agent agent-env-test: consuming host.agent-env-test" in out  # warnings do not stop it
    [(path, argv, env)] = execs
    assert path == sys.executable and "contexts.host_tasks" in argv
    assert "DATABASE_URL" not in env and env["SECRET_KEY"] != "the-panels-own-secret-key"
    assert env["PANEL_ROLE"] == "host" and env["PANEL_HOST_NAME"] == "agent-env-test"
