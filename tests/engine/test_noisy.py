"""Each noisy-neighbour attack as a test: it stops at the attacker's limits, the host and the
neighbour stay responsive. Timings belong to bench/noisy.py; these assert containment only."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.engine.conftest import inside
from tests.engine.test_network import peer  # noqa: F401  (the peer namespace fixture)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))  # one definition of the attacks
from attacks import ATTACKS, DISK, INODES, PLAN, judge  # noqa: E402

A_ADDR, B_ADDR = "198.51.100.10", "198.51.100.11"


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attack_is_contained(engine, make_context, cli, peer, attack):  # noqa: F811
    neighbour = make_context(addresses=[B_ADDR], limits=PLAN)
    attacker = make_context(addresses=[A_ADDR], disk=DISK, inodes=INODES, limits=PLAN)
    marker = inside(engine, neighbour, "echo safe > /root/mine; md5sum /etc/passwd").stdout
    process = subprocess.Popen(
        [*cli.argv, "exec", attacker, "--", "/bin/sh", "-c", ATTACKS[attack]],
        env=cli.env,
        cwd=cli.cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)
        contained, why = judge(attack, engine, attacker)
        assert contained, why
        started = time.monotonic()
        subprocess.run(["/bin/true"], check=True, timeout=5)  # the host still starts processes
        answer = inside(engine, neighbour, "cat /root/mine; md5sum /etc/passwd")
        assert answer.stdout == "safe\n" + marker.split("\n", 1)[0] + "\n"
        assert time.monotonic() - started < 5
    finally:
        process.kill()
        process.wait()
        engine.stop(attacker, timeout=2)
