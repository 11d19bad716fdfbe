"""How fast a context starts and stops, against the tools a user would pick instead, and what an idle
context costs the host in memory.

    sudo .venv/bin/python bench/start.py [--runs 15] [--contexts 20]

Needs root, busybox-static, and lxc for the LXC column (apt-get install lxc). Everything it makes
lives in /tmp/contexts-bench-PID and a cgroup of the same name, and is removed at the end.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, mem_available_kib, remove_everything
from contexts.engine.lifecycle import Lifecycle
from contexts.engine.state import StateDir
from contexts.engine.templates import Templates


def timed(fn, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def ms(samples) -> str:
    return f"{statistics.median(samples) * 1000:7.1f} ms"


def wait_until_exit_recorded(engine: Lifecycle, name: str, run_id: str) -> None:
    while (engine.state.run_record(name).get("last_exit") or {}).get("run_id") != run_id:
        time.sleep(0.0005)


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            with open(f"/proc/{current}/task/{current}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except FileNotFoundError:
            pass
    return out


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--contexts", type=int, default=20, help="idle contexts for the memory figure")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/start.py needs root")

    tag = f"contexts-bench-{os.getpid()}"
    state = StateDir(Path("/tmp") / tag)
    engine = Lifecycle(state, tag)
    try:
        Templates(state).build_busybox("busybox")
        rootfs = str(state.template_rootfs("busybox"))
        print(f"busybox template: {rootfs}; {args.runs} runs each, medians\n")

        # 1. Start to init running, and stop, of a context whose init is busybox init.
        engine.build("idle", "busybox")
        start_api, stop_api = [], []
        for _ in range(args.runs):
            start_api += timed(lambda: engine.start("idle"), 1)
            stop_api += timed(lambda: engine.stop("idle"), 1)
        env = os.environ | {"CONTEXTS_STATE_DIR": str(state.root), "CONTEXTS_CGROUP_PARENT": tag}
        cli = [sys.executable, "-m", "contexts"]
        start_cli, stop_cli = [], []
        for _ in range(args.runs):
            start_cli += timed(
                lambda: subprocess.run([*cli, "start", "idle"], env=env, cwd=ROOT, check=True, capture_output=True), 1
            )
            stop_cli += timed(
                lambda: subprocess.run([*cli, "stop", "idle"], env=env, cwd=ROOT, check=True, capture_output=True), 1
            )

        # 2. A whole run of /bin/true in a fresh context, the same job for every tool.
        engine.build("true", "busybox", init=["/bin/true"])

        def ours_true():
            engine.start("true")
            wait_until_exit_recorded(engine, "true", engine.state.run_record("true")["run_id"])

        ours = timed(ours_true, args.runs)
        unshare_cmd = [
            "unshare",
            "--fork",
            "--pid",
            "--mount",
            "--uts",
            "--ipc",
            "--net",
            "chroot",
            rootfs,
            "/bin/true",
        ]
        unshare = timed(lambda: subprocess.run(unshare_cmd, check=True), args.runs)
        lxc = None
        if shutil.which("lxc-execute"):
            lxc_dir = tempfile.mkdtemp(prefix="contexts-bench-lxc-")
            with open(os.path.join(lxc_dir, "config"), "w") as f:
                f.write(
                    f"lxc.uts.name = bench\nlxc.rootfs.path = dir:{rootfs}\nlxc.net.0.type = empty\n"
                    "lxc.mount.auto = proc:mixed sys:ro\nlxc.autodev = 1\nlxc.apparmor.profile = unconfined\n"
                )
            lxc_cmd = [
                "lxc-execute",
                "-n",
                "bench",
                "-P",
                lxc_dir,
                "-f",
                os.path.join(lxc_dir, "config"),
                "--",
                "/bin/true",
            ]
            subprocess.run(lxc_cmd, check=True)  # warm up
            lxc = timed(lambda: subprocess.run(lxc_cmd, check=True), args.runs)
            shutil.rmtree(lxc_dir, ignore_errors=True)

        print("start (busybox init running)   engine API ", ms(start_api), "   CLI ", ms(start_cli))
        print("stop  (busybox init's own halt) engine API ", ms(stop_api), "   CLI ", ms(stop_cli))
        print()
        print("run /bin/true in a new context (start, run, tear down):")
        print(f"  contexts (engine API)                      {ms(ours)}")
        print(
            f"  unshare --fork --pid --mount --uts --ipc --net chroot   {ms(unshare)}"
            f"   ratio contexts/unshare {statistics.median(ours) / statistics.median(unshare):.1f}"
        )
        if lxc:
            print(
                f"  lxc-execute                                {ms(lxc)}"
                f"   ratio contexts/lxc {statistics.median(ours) / statistics.median(lxc):.2f}"
            )
            lxc_median = statistics.median(lxc)
            print(
                f"  start to init running vs lxc-execute: ratio {statistics.median(start_api) / lxc_median:.2f}"
                f" (API), {statistics.median(start_cli) / lxc_median:.2f} (CLI)"
            )
        else:
            print("  lxc-execute: not installed (apt-get install lxc)")

        # 3. Memory of idle contexts.
        names = [f"m{i}" for i in range(args.contexts)]
        for name in names:
            engine.build(name, "busybox")
        time.sleep(0.5)
        before = mem_available_kib()
        for name in names:
            engine.start(name)
        time.sleep(2)  # let the guests' rc scripts finish
        after = mem_available_kib()
        pss = 0
        for name in names:
            init = engine.status(name)["init_pid"]
            supervisor = parent_of(parent_of(init))  # sh -> unshare -> init
            pss += sum(pss_kib(p) for p in descendants(supervisor))
        print()
        print(f"memory per idle context ({args.contexts} busybox contexts):")
        print(
            f"  processes (supervisor shell, unshare, guest init and its children), PSS: "
            f"{pss / args.contexts / 1024:.2f} MiB"
        )
        print(
            f"  host MemAvailable drop, kernel objects included:                      "
            f"{(before - after) / args.contexts / 1024:.2f} MiB"
        )
        for name in names:
            engine.stop(name, timeout=5)
    finally:
        remove_everything(engine, tag)


if __name__ == "__main__":
    main()
