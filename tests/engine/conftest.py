"""Fixtures for engine tests: contexts that are destroyed after each test even when it fails, the
host CLI as a process, and commands run inside a guest. The session-wide state directory and
templates come from tests/kernel.py."""

import os
import select
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from contexts.engine.lifecycle import Lifecycle
from tests.kernel import Cli

ROOT = Path(__file__).resolve().parents[2]


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


def read_until(fd: int, done, timeout: float = 20.0) -> bytes:
    """Read a terminal's master `fd` until `done(seen)` is true or the time is up."""
    seen = b""
    deadline = time.monotonic() + timeout
    while not done(seen) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    return seen
