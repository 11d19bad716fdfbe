"""Fixtures for tests that drive the real kernel: a state directory, a cgroup parent and a busybox
template made once per run, and contexts that are destroyed after each test even when it fails."""

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from contexts.engine import cgroups
from contexts.engine.lifecycle import Lifecycle
from contexts.engine.state import StateDir
from contexts.engine.templates import Templates

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.fixture
def engine(engine_state) -> Lifecycle:
    return Lifecycle(*engine_state)


@pytest.fixture
def make_context(engine, busybox_template):
    """Build (and by default start) a context; every context made is destroyed after the test."""
    made = []

    def make(start=True, template=None, **options):
        name = f"t-{uuid.uuid4().hex[:10]}"
        engine.build(name, template or busybox_template, **options)
        made.append(name)
        if start:
            engine.start(name)
        return name

    yield make
    for name in made:
        if name in engine.state.context_names():
            engine.destroy(name, timeout=2)


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


@pytest.fixture
def cli(engine_state) -> Cli:
    return Cli(*engine_state)


def inside(engine, name, script: str) -> subprocess.CompletedProcess:
    """Run a shell script inside the context through the CLI, capturing its output."""
    env = os.environ | {
        "CONTEXTS_STATE_DIR": str(engine.state.root),
        "CONTEXTS_CGROUP_PARENT": engine.cgroup_parent,
        "CONTEXTS_HOST_NETNS": engine.host_netns,
    }
    return subprocess.run(
        [sys.executable, "-m", "contexts", "exec", name, "--", "/bin/sh", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
