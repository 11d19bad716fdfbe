"""Session fixtures that touch the real kernel, shared by tests/engine and tests/pipeline: a state
directory, a cgroup parent and a stand-in host network namespace, and templates built once per run.
Registered for the whole suite by tests/conftest.py (pytest_plugins)."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from contexts.engine import cgroups
from contexts.engine.lifecycle import Lifecycle
from contexts.engine.state import StateDir
from contexts.engine.templates import Templates

ROOT = Path(__file__).resolve().parents[1]


class Cli:
    """The host CLI as a separate process against the test state directory."""

    def __init__(self, state, parent, host_netns):
        self.argv = [sys.executable, "-m", "contexts"]
        self.env = os.environ | {
            "CONTEXTS_STATE_DIR": str(state.root),
            "CONTEXTS_CGROUP_PARENT": parent,
            "CONTEXTS_HOST_NETNS": host_netns,
        }
        self.cwd = ROOT

    def __call__(self, *args, check=False, **kwargs) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [*self.argv, *args], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=120, **kwargs
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result


def wait_until(check, timeout: float = 60, what: str = "the condition", interval: float = 0.1):
    """The first truthy value `check` returns, asked every `interval` seconds for up to `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def need_root() -> None:
    """Skip without root, but fail under REQUIRE_ROOT=1 (CI), so these tests never pass by skipping."""
    if os.geteuid() == 0:
        return
    if os.environ.get("REQUIRE_ROOT") == "1":
        pytest.fail("this test needs root and REQUIRE_ROOT=1 is set")
    pytest.skip("needs root: it creates namespaces, cgroups and mounts")


@pytest.fixture(scope="session")
def engine_state():
    """(state directory, cgroup parent, stand-in host network namespace), unique to this run.

    The host ends of the guests' veths, their routes and filters go into a network namespace the
    tests made, never the machine's own network."""
    need_root()
    from pyroute2 import netns

    # Outside pytest's tmp (which may be noexec or too deep for overlay options) and unique per run.
    root = Path(f"/tmp/contexts-test-{os.getpid()}")
    parent = f"contexts-test-{os.getpid()}"
    host_netns = f"cth-{os.getpid()}"
    state = StateDir(root)
    state.ensure()
    netns.create(host_netns)
    yield state, parent, host_netns
    engine = Lifecycle(state, parent, host_netns)
    for name in state.context_names():
        try:
            engine.destroy(name, timeout=2)
        except Exception as exc:  # report, but go on cleaning the rest
            print(f"cleanup of {name} failed: {exc}", file=sys.stderr)
    cgroups.detect(parent).remove_parent()
    netns.remove(host_netns)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def busybox_template(engine_state):
    state = engine_state[0]
    Templates(state).build_busybox("busybox")
    return "busybox"


@pytest.fixture(scope="session")
def debian_template(engine_state):
    """debootstrap takes about a minute from a near mirror; done once per test run."""
    state = engine_state[0]
    mirror = os.environ.get("DEBIAN_MIRROR")  # the host's default otherwise
    record = Templates(state).build_debootstrap("bookworm", "bookworm", mirror, ["sysvinit-core"])
    assert record["init_style"] == "sysvinit"
    return "bookworm"
