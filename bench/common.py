"""Helpers shared by the benchmarks."""

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def database_url(name: str) -> str:
    """The URL of database `name` on the server of DATABASE_URL (the test suite's by default)."""
    base = os.environ.get("DATABASE_URL", "postgres://panel:panel@127.0.0.1:5432/panel").rsplit("/", 1)[0]
    return f"{base}/{name}"


def fresh_database(name: str) -> None:
    """Drop database `name` if it exists and create it empty."""
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def need_root(script: str) -> None:
    if os.geteuid() != 0:
        sys.exit(f"{script} needs root")


def mem_available_kib() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def settle_memory_kib(seconds: float = 2.0) -> int:
    """MemAvailable after letting the page cache and slabs settle a moment."""
    time.sleep(seconds)
    return mem_available_kib()


def median_ms(samples) -> str:
    return f"{statistics.median(samples) * 1000:7.1f} ms"


def remove_everything(engine, tag: str) -> None:
    """Destroy every context a benchmark made, its cgroup parent and its state directory."""
    import shutil

    from contexts.engine import cgroups

    for name in engine.state.context_names():
        engine.destroy(name, timeout=5)
    cgroups.detect(tag).remove_parent()
    shutil.rmtree(engine.state.root, ignore_errors=True)
