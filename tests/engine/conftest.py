"""Fixtures for engine tests: contexts that are destroyed after each test even when it fails, the
host CLI as a process, and commands run inside a guest. The session-wide state directory and
templates come from tests/kernel.py."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from contexts.engine.lifecycle import Lifecycle

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
