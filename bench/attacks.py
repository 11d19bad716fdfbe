"""The noisy-neighbour attacks, shared by bench/noisy.py and tests/engine/test_noisy.py.

Each is a busybox shell script that guest A runs for the attack window, and a judgement of whether
the attack stopped at A's limits, read from what the kernel reports for A.
"""

import os
import time

PLAN = {
    "cpus": 0.5,
    "memory_bytes": 128 * 2**20,
    "swap_bytes": 0,
    "pids": 64,
    "rate_mbit": 20,
    "io_read_bps": 50 * 2**20,
    "io_write_bps": 20 * 2**20,
}
DISK = 256 * 2**20
INODES = 16384
A_ADDR, B_ADDR, PEER, HOST_UP = "198.51.100.10", "198.51.100.11", "198.51.100.2", "198.51.100.1"

ATTACKS = {
    "cpu spin": "for i in 1 2 3 4; do (while :; do :; done) & done; wait",
    "fork bomb": "f() { f | f & }; while :; do f; sleep 0.05; done",
    "memory balloon": "while :; do a=$(head -c 400000000 /dev/zero | tr '\\0' x); done",
    "disk fill": "while :; do dd if=/dev/zero of=/root/fill.$$ bs=1M 2>/dev/null; sleep 0.2; done",
    "inode exhaustion": "mkdir -p /root/i; n=0; while :; do : > /root/i/$n || sleep 0.1; n=$((n+1)); done",
    "io flood": "for i in 1 2; do (while :; do dd if=/dev/zero of=/root/s$i bs=64k count=256 conv=fsync 2>/dev/null; "
    "done) & (while :; do dd if=/dev/zero of=/root/b$i bs=1M count=40 2>/dev/null; done) & done; wait",
    "network flood": f"for i in 1 2 3 4; do (while :; do cat /dev/zero | nc {PEER} 9; done) & done; "
    f"(while :; do nc -w1 {B_ADDR} 80 </dev/null; nc -w1 169.254.0.1 80 </dev/null; done) & wait",
    "kernel objects": "for i in $(seq 200); do (inotifyd - /tmp:n /root:n /etc:n >/dev/null 2>&1 &); done; "
    "for i in $(seq 200); do (sleep 3600 3</dev/null 4</dev/null 5</dev/null &); done; sleep 3600",
}


def judge(attack: str, engine, name: str) -> tuple[bool, str]:
    """Did A's attack stop at its limit? Returns (contained, what the kernel reported)."""
    from contexts.engine import disk

    usage = engine.usage(name)
    if attack == "cpu spin":
        time.sleep(1)
        rate = engine.usage(name)["cpu_seconds"] - usage["cpu_seconds"]
        return rate <= PLAN["cpus"] * 1.2, f"A used {rate:.2f} CPU"
    if attack in ("fork bomb", "kernel objects"):
        peak = usage["processes_peak"] or usage["processes"]
        return peak <= PLAN["pids"], f"A peaked at {peak} processes, {usage['fork_refusals']} forks refused"
    if attack == "memory balloon":
        peak = usage["memory_peak_bytes"]
        return peak <= PLAN["memory_bytes"], f"peak {peak // 2**20} MiB, {usage['oom_kills']} OOM kills"
    if attack == "inode exhaustion":
        st = os.statvfs(engine.state.context_dir(name) / disk.MOUNT)
        return st.f_files - st.f_ffree <= st.f_files, f"A has {st.f_files - st.f_ffree} of {st.f_files} inodes"
    if attack in ("disk fill", "io flood"):
        used, size = disk.usage(engine.state.context_dir(name))
        return used <= size, f"A's disk {used // 2**20}/{size // 2**20} MiB"
    if attack == "network flood":
        time.sleep(1)
        mbit = (engine.usage(name)["net_out_bytes"] - usage["net_out_bytes"]) * 8 / 1e6
        return mbit <= PLAN["rate_mbit"] * 1.15, f"A sent {mbit:.1f} Mbit/s"
    raise KeyError(attack)
