"""Hard-link cloning and unification, against the tools a user would pick instead.

    sudo .venv/bin/python bench/clone.py [--runs 5] [--copies 5]

On a Debian bookworm minbase template, built once with the project's own
`template build --debootstrap` and kept in /var/tmp/contexts-bench for later runs: median wall
time of our clone against `cp -al` (GNU coreutils' hard-link copy) and `cp -a` (a full copy), and
the disk each adds; then our unification against util-linux `hardlink` over five full copies (time
and bytes reclaimed).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import common  # noqa: F401  (puts the project on the path)
from contexts.engine import clone, unify
from contexts.engine.state import StateDir
from contexts.engine.templates import Templates

STATE = Path("/var/tmp/contexts-bench")


def blocks(root: Path, seen: set | None = None) -> int:
    """Allocated bytes of every inode below root not already in `seen` (which it then extends)."""
    seen = set() if seen is None else seen
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                total += st.st_blocks * 512
    return total


def timed(fn, runs: int, reset) -> list[float]:
    samples = []
    for _ in range(runs):
        reset()
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def med(samples) -> float:
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--copies", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/clone.py needs root")

    state = StateDir(STATE)
    if "bookworm-minbase" not in state.template_names():
        print("building the template once (debootstrap, about a minute)...", flush=True)
        Templates(state).build_debootstrap("bookworm-minbase", "bookworm")
    template = state.template_rootfs("bookworm-minbase")
    work = STATE / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    template_bytes = blocks(template)
    files = sum(len(f) for _, _, f in os.walk(template))
    print(f"template: {template_bytes / 2**20:.1f} MiB in {files} files; {args.runs} runs each, medians\n")

    target = work / "clone"

    def reset():
        shutil.rmtree(target, ignore_errors=True)

    ours = timed(lambda: clone.clone_tree(template, target), args.runs, reset)
    ours_added = blocks(target, {(s.st_dev, s.st_ino) for s in _stats(template)})
    cp_al = timed(lambda: subprocess.run(["cp", "-al", str(template), str(target)], check=True), args.runs, reset)
    cp_al_added = blocks(target, {(s.st_dev, s.st_ino) for s in _stats(template)})
    cp_a = timed(lambda: subprocess.run(["cp", "-a", str(template), str(target)], check=True), args.runs, reset)
    cp_a_added = blocks(target, {(s.st_dev, s.st_ino) for s in _stats(template)})
    reset()
    print(f"{'clone':12} {'time':>10} {'disk added':>12} {'of template':>12}")
    for name, samples, added in (
        ("contexts", ours, ours_added),
        ("cp -al", cp_al, cp_al_added),
        ("cp -a", cp_a, cp_a_added),
    ):
        print(
            f"{name:12} {med(samples) * 1000:8.1f} ms {added / 2**20:9.2f} MiB {100 * added / template_bytes:10.2f} %"
        )
    print(
        f"ratio contexts / cp -al: {med(ours) / med(cp_al):.2f} (time), contexts / cp -a: {med(ours) / med(cp_a):.2f}\n"
    )

    # Unification over full copies, as if five template versions or guests had the same files.
    copies = [work / f"copy{i}" for i in range(args.copies)]

    def make_copies():
        for c in copies:
            shutil.rmtree(c, ignore_errors=True)
            subprocess.run(["cp", "-a", str(template), str(c)], check=True)

    def total() -> int:
        seen: set = set()
        return sum(blocks(c, seen) for c in copies)

    make_copies()
    before = total()
    start = time.perf_counter()
    report = unify.unify([str(c) for c in copies], [], excludes=())
    ours_time = time.perf_counter() - start
    ours_reclaimed = before - total()
    make_copies()
    before = total()
    start = time.perf_counter()
    subprocess.run(["hardlink", "--quiet", *map(str, copies)], check=True)
    hl_time = time.perf_counter() - start
    hl_reclaimed = before - total()
    shutil.rmtree(work, ignore_errors=True)
    print(f"unify {args.copies} full copies ({before / 2**20:.0f} MiB):")
    print(
        f"  contexts unify   {ours_time:7.2f} s   reclaimed {ours_reclaimed / 2**20:8.1f} MiB "
        f"(it reports {report.bytes_reclaimed / 2**20:.1f} MiB, {report.files_linked} files)"
    )
    print(f"  util-linux hardlink {hl_time:4.2f} s   reclaimed {hl_reclaimed / 2**20:8.1f} MiB")
    print(
        f"  ratio contexts / hardlink: {ours_time / hl_time:.2f} (time), "
        f"{ours_reclaimed / hl_reclaimed:.3f} (bytes reclaimed)"
    )


def _stats(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            yield os.lstat(os.path.join(dirpath, name))


if __name__ == "__main__":
    main()
