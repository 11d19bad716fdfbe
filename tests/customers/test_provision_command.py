"""`manage.py provision` for staff scripts."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from contexts.models import VirtualServer
from customers.models import Customer

ROOT = Path(__file__).resolve().parents[2]


def provision(*extra, **opts):
    out = StringIO()
    args = dict(
        customer="Alice Ltd", email="alice@example.com", plan="small", template="busybox", hostname="www.alice.example"
    )
    args.update(opts)
    argv = [f"--{k}={v}" for k, v in args.items()] + list(extra)
    call_command("provision", *argv, stdout=out)
    return out.getvalue()


def test_json_output(world):
    data = json.loads(provision("--json"))
    server = VirtualServer.objects.get()
    assert data["server"] == server.name and data["host"] == world.host.name
    assert data["addresses"] == ["192.0.2.2", "2001:db8::2"]
    assert Customer.objects.get().logins.get().check_password(data["password"])
    assert data["state"] == "provisioning"


def test_plain_output(world):
    out = provision()
    assert "Provisioned www.alice.example as vps-" in out and "password:" in out and "192.0.2.2" in out


@pytest.mark.parametrize(
    "opts, message",
    [
        (dict(plan="gold"), "Unknown plan 'gold'. Active plans: small."),
        (dict(template="windows"), "Unknown template 'windows'. Active templates: busybox."),
        (dict(hostname="no_underscores"), "not a valid hostname"),
        (dict(email="alice"), "not a valid email address"),
    ],
)
def test_bad_input_is_a_clear_error_and_creates_nothing(world, opts, message):
    with pytest.raises(CommandError, match=message.replace(".", r"\.").replace("(", r"\(")):
        provision(**opts)
    assert not Customer.objects.exists() and not VirtualServer.objects.exists()


def test_from_the_shell_against_a_fresh_database(tmp_path):
    """The whole command as a staff script runs it: exit status and output, on a migrated SQLite file."""
    env = os.environ | {
        "DATABASE_URL": f"sqlite:///{tmp_path}/panel.sqlite3",
        "PANEL_DATA_DIR": str(tmp_path),
        "REDIS_URL": "",
    }

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    assert manage("migrate", "-v0").returncode == 0
    assert manage("demo").returncode == 0
    bad = manage(
        "provision",
        "--customer",
        "x",
        "--email",
        "x@example.com",
        "--plan",
        "nope",
        "--template",
        "busybox",
        "--hostname",
        "x.example",
    )
    assert bad.returncode == 1
    assert bad.stderr.strip() == "CommandError: Unknown plan 'nope'. Active plans: small, medium, large."
    good = manage(
        "provision",
        "--customer",
        "Carol",
        "--email",
        "carol@example.com",
        "--plan",
        "medium",
        "--template",
        "busybox",
        "--hostname",
        "carol.example",
        "--json",
    )
    assert good.returncode == 0, good.stderr
    data = json.loads(good.stdout)
    assert data["hostname"] == "carol.example" and len(data["addresses"]) == 3  # medium: 1 IPv4 + 2 IPv6
