"""Noisy neighbours: can one guest starve another or the host? Measured, not assumed.

    sudo .venv/bin/python bench/noisy.py [--probes 600] [--attack-seconds 8]

Two busybox guests with the same small plan (0.5 CPU, 128 MiB, no swap, 64 processes, 256 MiB
disk with 20 MiB/s writes, 20 Mbit/s). A steady probe runs as guest B (in B's cgroup and network namespace, on B's
files): a fixed bit of CPU, a small file write and read-back, and a TCP round trip to a peer.
First idle, then while guest A runs each attack, it reports B's median and 99th percentile, the
p99 ratio against idle, whether A's attack stopped at its limit, whether the host stayed
responsive, and whether anything outside A was harmed. All networking happens inside network
namespaces the benchmark creates (a stand-in host and a peer), removed at the end.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from attacks import A_ADDR, ATTACKS, B_ADDR, DISK, HOST_UP, INODES, PEER, PLAN, judge

from common import ROOT, mem_available_kib, need_root, remove_everything
from contexts.engine import cgroups, libc, limits
from contexts.engine.lifecycle import Lifecycle
from contexts.engine.state import StateDir
from contexts.engine.templates import Templates


class Probe:
    """Runs as guest B: joins its cgroup and network namespace and works on its files."""

    def __init__(self, engine: Lifecycle, name: str):
        self.init_pid = engine.status(name)["init_pid"]
        self.procs = engine._cgroups(engine.state.config(name)).procs_files(name)
        self.netns = f"/run/netns/ctx-{name}"
        self.file = f"/proc/{self.init_pid}/root/tmp/probe"

    def run(self, count: int) -> list[float]:
        read, write = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(read)
            try:
                fd = os.open(self.netns, os.O_RDONLY)
                libc.setns(fd, libc.CLONE_NEWNET)
                for path in self.procs:
                    with open(path, "w") as f:
                        f.write("0")
                out = []
                for _ in range(count):
                    start = time.perf_counter()
                    sum(i * i for i in range(20000))  # CPU
                    with open(self.file, "wb") as f:  # file
                        f.write(b"x" * 4096)
                    with open(self.file, "rb") as f:
                        f.read()
                    with socket.create_connection((PEER, 7), timeout=5) as s:  # network
                        s.sendall(b"ping" * 16)
                        s.recv(64)
                    out.append(time.perf_counter() - start)
                    time.sleep(0.005)
                os.write(write, ",".join(f"{x:.6f}" for x in out).encode())
            finally:
                os._exit(0)
        os.close(write)
        data = b""
        while chunk := os.read(read, 1 << 16):
            data += chunk
        os.waitpid(child, 0)
        return [float(x) for x in data.decode().split(",")] if data else []


def p99(samples):
    return statistics.quantiles(samples, n=100)[98]


def host_responsive() -> float:
    start = time.perf_counter()
    subprocess.run(["/bin/true"], check=True, timeout=5)
    return time.perf_counter() - start


def inotify_works() -> bool:
    import ctypes

    fd = ctypes.CDLL(None, use_errno=True).inotify_init1(0)
    if fd >= 0:
        os.close(fd)
        return True
    return False


def host_spin_reference(probe: Probe, tag: str, context_id: int, probes: int) -> float:
    """B's p99 ratio while a plain host process, no guest at all, spins under A's CPU cap on A's CPUs:
    what this machine itself does to B when the neighbouring CPU is busy (shared cores, hypervisor)."""
    cg = cgroups.detect(tag)
    cg.create("reference")
    spinners = []
    try:
        settings = limits.settings({"cpus": PLAN["cpus"]}, cg.version, context_id, limits.host_cpus(), None)
        cg.apply("reference", settings)
        idle = p99(probe.run(probes))
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(4)]
        for spinner in spinners:
            for path in cg.procs_files("reference"):
                with open(path, "w") as f:
                    f.write(str(spinner.pid))
        time.sleep(1)
        return p99(probe.run(probes)) / idle
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
        cg.remove("reference")


def host_snapshot(state: StateDir) -> dict:
    st = os.statvfs(state.root)
    return {
        "free": st.f_bavail * st.f_frsize,
        "procs": len([p for p in os.listdir("/proc") if p.isdigit()]),
        "mem": mem_available_kib() * 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=600)
    parser.add_argument("--attack-seconds", type=float, default=8)
    args = parser.parse_args()
    need_root("bench/noisy.py")
    from pyroute2 import IPRoute, netns

    tag = f"contexts-noisy-{os.getpid()}"
    host_ns, peer_ns = f"nh-{os.getpid()}", f"np-{os.getpid()}"
    state = StateDir(Path("/tmp") / tag)
    engine = Lifecycle(state, tag, host_ns)
    os.environ["CONTEXTS_UPLINK"] = "up0"
    netns.create(host_ns)
    netns.create(peer_ns)
    echo = None
    try:
        with IPRoute(netns=host_ns) as host:
            host.link("add", ifname="up0", kind="veth", peer={"ifname": "up0p"})
            host.link("set", index=host.link_lookup(ifname="up0p")[0], net_ns_fd=peer_ns)
            index = host.link_lookup(ifname="up0")[0]
            host.link("set", index=index, state="up")
            host.addr("add", index=index, address=HOST_UP, prefixlen=24)
        with IPRoute(netns=peer_ns) as peer:
            peer.link("set", index=peer.link_lookup(ifname="lo")[0], state="up")
            index = peer.link_lookup(ifname="up0p")[0]
            peer.link("set", index=index, state="up")
            peer.addr("add", index=index, address=PEER, prefixlen=24)
        echo = subprocess.Popen(["nsenter", f"--net=/run/netns/{peer_ns}", sys.executable, "-c", ECHO_SERVER, PEER])
        Templates(state).build_busybox("busybox")
        engine.build("b", "busybox", addresses=[B_ADDR], disk=DISK, inodes=INODES, limits=PLAN)
        engine.start("b")
        time.sleep(1)
        probe = Probe(engine, "b")
        idle = probe.run(args.probes)
        idle_p50, idle_p99 = statistics.median(idle), p99(idle)
        print(
            f"kernel {os.uname().release}, cgroup v{cgroups.detect(tag).version}, "
            f"{os.cpu_count()} CPUs; probe = CPU + 4 KiB file + TCP round trip, {args.probes} runs"
        )
        print(
            f"B idle: median {idle_p50 * 1000:.2f} ms, p99 {idle_p99 * 1000:.2f} ms "
            "(ratios divide by B's idle p99 measured again just before each attack)\n"
        )
        print(
            f"{'attack':18} {'contained':10} {'B p50 ms':>9} {'B p99 ms':>9} {'idle p99':>9} {'p99 ratio':>9} "
            f"{'host ok':>8} {'harm outside A':>15}"
        )
        reference = host_spin_reference(probe, tag, engine.state.config("b")["context_id"] + 1, args.probes)
        contained_count, worst = 0, 0.0
        b_file = Path(f"/proc/{probe.init_pid}/root/etc/passwd").read_bytes()
        for name, script in ATTACKS.items():
            engine.build("a", "busybox", addresses=[A_ADDR], disk=DISK, inodes=INODES, limits=PLAN)
            engine.start("a")
            # B's idle p99 right before each attack: a 2-core VM's own jitter drifts over a run.
            idle_p99 = p99(probe.run(args.probes))
            before = host_snapshot(state)
            attacker = subprocess.Popen(
                [sys.executable, "-m", "contexts", "exec", "a", "--", "/bin/sh", "-c", script],
                cwd=ROOT,
                env=os.environ
                | {
                    "CONTEXTS_STATE_DIR": str(state.root),
                    "CONTEXTS_CGROUP_PARENT": tag,
                    "CONTEXTS_HOST_NETNS": host_ns,
                },
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(min(2.0, args.attack_seconds / 3))
            samples = probe.run(args.probes)
            responsive = host_responsive()
            after = host_snapshot(state)
            inotify = inotify_works()
            contained, why = judge(name, engine, "a")
            harmed = []
            if before["free"] - after["free"] > DISK * 1.5:
                harmed.append("host disk")
            if after["procs"] - before["procs"] > PLAN["pids"] + 20:
                harmed.append("host processes")
            if before["mem"] - after["mem"] > PLAN["memory_bytes"] * 2:
                harmed.append("host memory")
            if not inotify:
                harmed.append("host inotify")
            if Path(f"/proc/{probe.init_pid}/root/etc/passwd").read_bytes() != b_file:
                harmed.append("B's files")
            if len(samples) < args.probes:
                harmed.append("B's probe failed")
            ratio = p99(samples) / idle_p99 if len(samples) > 2 else float("inf")
            contained = contained and not harmed and responsive < 1.0
            contained_count += contained
            worst = max(worst, ratio)
            print(
                f"{name:18} {'yes' if contained else 'NO':10} {statistics.median(samples) * 1000:9.2f} "
                f"{p99(samples) * 1000:9.2f} {idle_p99 * 1000:9.2f} {ratio:9.2f} {responsive * 1000:6.0f}ms "
                f"{', '.join(harmed) or 'none':>15}"
                f"   ({why})"
            )
            attacker.kill()
            engine.destroy("a", timeout=2)
        print(f"\ncontained: {contained_count}/{len(ATTACKS)}, worst neighbour p99 ratio: {worst:.2f}")
        print(
            f"reference, no guest involved: a host process capped and pinned like A, spinning: B's p99 ratio "
            f"{reference:.2f} (what this machine does to B whenever the neighbouring CPU is busy)"
        )
        if cgroups.detect(tag).version == 1:
            print(
                "note: this host runs cgroup v1, which charges buffered writeback to the root group; the engine"
                " caps each guest's own loop device there, but the kernel's writeback and loop threads still run"
                " outside A's CPU cap (`python -m contexts check`)."
            )
    finally:
        if echo:
            echo.kill()
        remove_everything(engine, tag)
        netns.remove(host_ns)
        netns.remove(peer_ns)


ECHO_SERVER = """
import socket, sys, threading
def listen(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], port)); s.listen(64)
    return s
def echo(c):
    with c:
        c.sendall(c.recv(64))
def discard(c):
    with c:
        while c.recv(65536):
            pass
def serve(s, handler):
    while True:
        c, _ = s.accept()
        threading.Thread(target=handler, args=(c,), daemon=True).start()
threading.Thread(target=serve, args=(listen(9), discard), daemon=True).start()
serve(listen(7), echo)
"""


if __name__ == "__main__":
    main()
