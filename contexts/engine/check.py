"""`python -m contexts check`: what this host supports for contexts, and how to fix what is missing."""

import os
import shutil

from . import cgroups


def _kernel_filesystems() -> set[str]:
    with open("/proc/filesystems") as f:
        return {line.split()[-1] for line in f if line.strip()}


def has_overlayfs() -> bool:
    return "overlay" in _kernel_filesystems()


def run() -> dict:
    checks = []

    def add(name, ok, detail, fix="", required=True):
        checks.append({"name": name, "ok": bool(ok), "detail": detail, "fix": "" if ok else fix, "required": required})

    add(
        "root",
        os.geteuid() == 0,
        "running as root" if os.geteuid() == 0 else "not root",
        "run the host CLI as root (sudo)",
    )
    for ns in ("pid", "mnt", "uts", "ipc", "net", "cgroup"):
        present = os.path.exists(f"/proc/self/ns/{ns}")
        add(
            f"{ns} namespace",
            present,
            "available" if present else "missing",
            f"use a kernel built with the {ns} namespace (CONFIG_*_NS)",
        )
    filesystems = _kernel_filesystems()
    add(
        "overlayfs",
        "overlay" in filesystems,
        "available" if "overlay" in filesystems else "not in /proc/filesystems",
        "modprobe overlay (or build the kernel with CONFIG_OVERLAY_FS)",
    )
    for fs in ("proc", "sysfs", "tmpfs", "devpts"):
        add(fs, fs in filesystems, "available" if fs in filesystems else "missing", f"build the kernel with {fs}")
    try:
        cg = cgroups.detect()
        add(
            "cgroups",
            True,
            f"cgroup v{cg.version}" + (f" ({', '.join(sorted(cg.hierarchies))})" if cg.version == 1 else ""),
        )
        add(
            "writeback control",
            cg.version == 2,
            "cgroup v2: buffered writes are charged to the guest that made them"
            if cg.version == 2
            else "cgroup v1 charges buffered writeback to the root group, not the writer: guests with a disk "
            "limit are held to their write rate on their own loop device, guests without one are not, and "
            "the kernel's writeback threads run outside every guest's CPU cap (bench/noisy.py measures it)",
            "boot the host with the unified hierarchy (systemd.unified_cgroup_hierarchy=1, or cgroup_no_v1=all)",
            required=False,
        )
    except Exception as exc:
        add("cgroups", False, str(exc), "mount cgroup2 on /sys/fs/cgroup")
    # Without user namespaces every guest's root is the host's uid 0, so per-user kernel limits are shared.
    with open("/proc/sys/fs/inotify/max_user_instances") as f:
        instances = int(f.read())
    add(
        "per-user limits",
        instances >= 1024,
        f"inotify instances per user: {instances}; all guests' root and the host's root share them",
        "sysctl -w fs.inotify.max_user_instances=8192 (guests' process limits bound what each can take); "
        "user namespaces per guest would separate them",
        required=False,
    )
    for program, package in (
        ("unshare", "util-linux"),
        ("setsid", "util-linux"),
        ("nsenter", "util-linux"),
        ("tar", "tar"),
        ("nft", "nftables"),
        ("mkfs.ext4", "e2fsprogs"),
    ):
        path = shutil.which(program)
        add(program, path, path or "missing", f"apt-get install {package}")
    add(
        "busybox-static",
        os.path.exists("/bin/busybox"),
        "/bin/busybox" if os.path.exists("/bin/busybox") else "missing: needed for `template build --busybox`",
        "apt-get install busybox-static",
        required=False,
    )
    lxcfs = os.path.exists("/var/lib/lxcfs/proc/meminfo")
    add(
        "lxcfs",
        lxcfs,
        "serving /var/lib/lxcfs" if lxcfs else "not running: guests see the host's memory in free",
        "apt-get install lxcfs (its service mounts /var/lib/lxcfs)",
        required=False,
    )
    path = shutil.which("debootstrap")
    add(
        "debootstrap",
        path,
        path or "missing: needed for `template build --debootstrap`",
        "apt-get install debootstrap",
        required=False,
    )
    try:
        with open("/proc/sys/kernel/kexec_load_disabled") as f:
            disabled = f.read().strip() == "1"
        add(
            "kexec disabled",
            disabled,
            "yes" if disabled else "guests keep CAP_SYS_BOOT, which also allows kexec_load",
            "sysctl -w kernel.kexec_load_disabled=1 (until reboot; add it to /etc/sysctl.d to keep it)",
            required=False,
        )
    except FileNotFoundError:
        pass
    return {"ok": all(c["ok"] for c in checks if c["required"]), "checks": checks}


def print_report(report: dict) -> None:
    for c in report["checks"]:
        mark = "ok  " if c["ok"] else ("MISS" if c["required"] else "warn")
        print(f"[{mark}] {c['name']:16} {c['detail']}")
        if c["fix"]:
            print(f"       fix: {c['fix']}")
    print("This host can run contexts." if report["ok"] else "This host cannot run contexts yet: fix the MISS lines.")
