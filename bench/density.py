"""How many idle contexts a host holds: memory per idle context and start time, against bare
`unshare` sleepers (namespaces without anything a VPS needs).

    sudo .venv/bin/python bench/density.py [--count 50]

Everything it makes lives in /tmp/contexts-density-PID and a cgroup of that name, removed at the end.
"""

import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path

from common import median_ms, need_root, remove_everything, settle_memory_kib
from contexts.engine.lifecycle import Lifecycle
from contexts.engine.state import StateDir
from contexts.engine.templates import Templates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args()
    need_root("bench/density.py")
    tag = f"contexts-density-{os.getpid()}"
    state = StateDir(Path("/tmp") / tag)
    engine = Lifecycle(state, tag)
    sleepers = []
    try:
        Templates(state).build_busybox("busybox")
        names = [f"d{i}" for i in range(args.count)]
        for name in names:
            engine.build(name, "busybox")
        before = settle_memory_kib()
        starts = []
        for name in names:
            began = time.perf_counter()
            engine.start(name)
            starts.append(time.perf_counter() - began)
        after = settle_memory_kib(3)
        contexts_kib = (before - after) / args.count

        unshare = ["unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--net", "sleep", "3600"]
        before = settle_memory_kib()
        spawn = []
        for _ in range(args.count):
            began = time.perf_counter()
            sleepers.append(subprocess.Popen(unshare))
            spawn.append(time.perf_counter() - began)
        after = settle_memory_kib(3)
        sleepers_kib = (before - after) / args.count

        print(f"{args.count} idle busybox contexts vs {args.count} `unshare ... sleep` processes")
        print(f"  memory per idle context:  {contexts_kib / 1024:6.2f} MiB   (goal: at most 2 MiB)")
        ratio = contexts_kib / max(sleepers_kib, 1)
        print(f"  memory per bare sleeper:  {sleepers_kib / 1024:6.2f} MiB   ratio {ratio:.1f}")
        print(f"  median start, context:  {median_ms(starts)}  (to its init running, engine API)")
        print(f"  median spawn, sleeper:  {median_ms(spawn)}  (fork+exec; it does not wait for the child)")
        print(
            f"  slowest context start:  {max(starts) * 1000:7.1f} ms; total {sum(starts):.1f} s "
            f"(median of the last ten {statistics.median(starts[-10:]) * 1000:.1f} ms)"
        )
    finally:
        for process in sleepers:
            process.kill()
            process.wait()
        remove_everything(engine, tag)


if __name__ == "__main__":
    main()
