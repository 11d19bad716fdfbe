"""Resource limits on real cgroups: CPU, memory, processes, and what the guest sees of them."""

import subprocess
import time

import pytest

from contexts.engine.errors import InvalidSpec
from tests.engine.conftest import inside

MiB = 2**20


def cpu_used(engine, name, seconds: float) -> float:
    before = engine.usage(name)["cpu_seconds"]
    time.sleep(seconds)
    return (engine.usage(name)["cpu_seconds"] - before) / seconds


def test_cpu_cap_holds_and_changes_live(engine, make_context):
    name = make_context(limits={"cpus": 0.5})
    inside(
        engine,
        name,
        "(while :; do :; done) </dev/null >/dev/null 2>&1 & (while :; do :; done) </dev/null >/dev/null 2>&1 &",
    )
    time.sleep(0.5)
    assert 0.4 <= cpu_used(engine, name, 3) <= 0.6
    pid = engine.status(name)["init_pid"]
    engine.set_limits(name, {"cpus": 0.25})
    assert engine.status(name)["init_pid"] == pid  # no restart
    time.sleep(0.5)
    assert 0.15 <= cpu_used(engine, name, 3) <= 0.35


def test_memory_hog_is_oom_killed_inside_and_others_keep_running(engine, make_context):
    hog = make_context(limits={"memory_bytes": 64 * MiB, "swap_bytes": 0})
    neighbour = make_context()
    result = inside(engine, hog, "a=$(head -c 150000000 /dev/zero | tr '\\0' x); echo survived ${#a}")
    assert "survived" not in result.stdout
    assert engine.usage(hog)["oom_kills"] >= 1
    assert engine.status(hog)["state"] == "running"  # init was not the victim
    assert inside(engine, neighbour, "echo fine").stdout == "fine\n"
    assert engine.usage(hog)["memory_peak_bytes"] <= 64 * MiB


def test_fork_bomb_stops_at_the_process_limit(engine, make_context, cli):
    bombed = make_context(limits={"pids": 64})
    neighbour = make_context()
    subprocess.Popen(
        # Bombed again and again: a single bomb dies out once its forks start failing.
        [*cli.argv, "exec", bombed, "--", "/bin/sh", "-c", "f() { f | f & }; while :; do f; sleep 0.05; done"],
        env=cli.env,
        cwd=cli.cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while engine.usage(bombed)["fork_refusals"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    usage = engine.usage(bombed)
    assert usage["fork_refusals"] > 0  # it hit the limit ...
    assert (usage["processes_peak"] or usage["processes"]) <= 64  # ... and never went past it
    started = time.monotonic()
    subprocess.run(["/bin/true"], check=True, timeout=5)  # the host still starts processes
    assert inside(engine, neighbour, "echo pong").stdout == "pong\n"
    assert time.monotonic() - started < 1.5
    # Staff still get in: exec joins the cgroup after its last fork.
    assert cli("exec", bombed, "--", "/bin/echo", "still here").stdout == "still here\n"
    engine.stop(bombed, timeout=2)
    assert engine.usage(bombed)["state"] == "stopped"


def test_guest_sees_its_own_cpus_and_memory(engine, make_context):
    name = make_context(limits={"cpus": 1, "memory_bytes": 96 * MiB})
    out = inside(engine, name, "nproc; grep MemTotal /proc/meminfo").stdout.split()
    assert out[0] == "1"
    assert out[1:3] == ["MemTotal:", str(96 * 1024)], "/proc/meminfo shows the host's memory: is lxcfs running?"


@pytest.mark.parametrize(
    "limits, message",
    [
        ({"cpus": -1}, "CPUs must be from 0.01"),
        ({"cpus": 10_000}, "CPUs must be from 0.01"),
        ({"memory_bytes": 2**60}, "memory limit"),
        ({"pids": 2}, "process limit"),
        ({"cpu_weight": 0}, "CPU weight"),
        ({"cpuset": "999"}, "does not offer"),
        ({"memory_bytes": 64 * MiB, "memory_high_bytes": 128 * MiB}, "high mark must not be above"),
        ({"bogus": 1}, "Unknown limit"),
    ],
)
def test_bad_limits_are_refused_and_change_nothing(engine, make_context, limits, message):
    name = make_context(start=False, limits={"cpus": 0.5})
    with pytest.raises(InvalidSpec, match=message):
        engine.set_limits(name, limits)
    assert engine.state.config(name)["limits"] == {"cpus": 0.5}


def test_disk_write_rate_holds_for_buffered_writeback(engine, make_context):
    """Writeback of a guest's dirty pages is held to its write rate, even when the host flushes it
    (cgroup v1 charges that to the root group: the engine caps the guest's own loop device there)."""
    from contexts.engine import disk

    rate = 8 * MiB
    name = make_context(disk=256 * MiB, limits={"io_write_bps": rate})
    directory = engine.state.context_dir(name)
    device = disk.device(directory)
    assert device, "a guest with a disk limit has a loop device of its own"
    inside(engine, name, "dd if=/dev/zero of=/root/dirty bs=1M count=24 2>/dev/null")
    start = time.monotonic()
    subprocess.run(["sync", "--file-system", str(directory / disk.MOUNT)], check=True, timeout=60)
    seconds = time.monotonic() - start
    assert seconds > 24 * MiB / rate * 0.6, f"24 MiB reached the disk in {seconds:.2f} s, past the 8 MiB/s cap"
    engine.destroy(name, timeout=2)
    for path in ("/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device",):
        try:
            with open(path) as f:
                assert not any(line.startswith(device + " ") for line in f), "the cap outlived the guest"
        except FileNotFoundError:
            pass
