"""The guest's file system view: overlay root, /proc with sensitive paths hidden, read-only /sys, a
minimal /dev, then pivot_root. Runs in the guest's fresh mount namespace, so nothing shows on the host."""

import os
import stat

from . import libc

# Hidden as OCI runtimes hide them: files get /dev/null bound over them, directories an empty tmpfs.
MASKED_PROC_PATHS = (
    "kcore",
    "keys",
    "key-users",
    "timer_list",
    "timer_stats",
    "sched_debug",
    "latency_stats",
    "kallsyms",
    "kmsg",
    "acpi",
    "scsi",
    "asound",
    "sysrq-trigger",
    "sys/kernel/sysrq",
    # Host memory layout and kernel object addresses: aids to kernel exploits, readable by uid 0.
    "kpageflags",
    "kpagecount",
    "kpagecgroup",
    "slabinfo",
    "vmallocinfo",
)
READ_ONLY_PROC_PATHS = ("sys", "bus", "fs", "irq")
# vmcoreinfo gives kernel addresses; powercap's energy counters are a side channel (Docker masks it).
MASKED_SYS_PATHS = ("firmware", "kernel/security", "kernel/debug", "kernel/vmcoreinfo", "devices/virtual/powercap")

# name: (kind, major, minor, mode)
DEVICES = {
    "null": (stat.S_IFCHR, 1, 3, 0o666),
    "zero": (stat.S_IFCHR, 1, 5, 0o666),
    "full": (stat.S_IFCHR, 1, 7, 0o666),
    "random": (stat.S_IFCHR, 1, 8, 0o666),
    "urandom": (stat.S_IFCHR, 1, 9, 0o666),
    "tty": (stat.S_IFCHR, 5, 0, 0o666),
}

NOSUID_NODEV_NOEXEC = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC


def make_private() -> None:
    """Stop mount events in this namespace from propagating back to the host."""
    libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)


def mount_overlay(lower: str, upper: str, work: str, target: str, flags: int = 0) -> None:
    libc.mount("overlay", target, "overlay", flags, f"lowerdir={lower},upperdir={upper},workdir={work}")


def _bind_read_only(path: str) -> None:
    libc.mount(path, path, None, libc.MS_BIND | libc.MS_REC)
    libc.mount(None, path, None, libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY | libc.MS_REC)


def _mask(path: str, null: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        libc.mount("tmpfs", path, "tmpfs", libc.MS_RDONLY | NOSUID_NODEV_NOEXEC, "size=0")
    elif os.path.exists(path):
        libc.mount(null, path, None, libc.MS_BIND)


def _ensure_dir(path: str, mode: int = 0o755) -> None:
    if os.path.islink(path):
        os.unlink(path)  # a guest-made symlink in place of a mount point would redirect the mount
    os.makedirs(path, mode=mode, exist_ok=True)


def mount_proc(root: str) -> None:
    """A /proc for the guest's PID namespace. Needs the guest's /dev (for its null device) first."""
    null = os.path.join(root, "dev/null")
    proc = os.path.join(root, "proc")
    _ensure_dir(proc)
    libc.mount("proc", proc, "proc", NOSUID_NODEV_NOEXEC)
    for name in READ_ONLY_PROC_PATHS:
        if os.path.exists(os.path.join(proc, name)):
            _bind_read_only(os.path.join(proc, name))
    for name in MASKED_PROC_PATHS:
        _mask(os.path.join(proc, name), null)


LXCFS_FILES = (
    "proc/meminfo",
    "proc/cpuinfo",
    "proc/stat",
    "proc/uptime",
    "proc/swaps",
    "proc/loadavg",
    "proc/diskstats",
    "sys/devices/system/cpu/online",
)


def mount_lxcfs(root: str, lxcfs: str) -> None:
    """Show the guest its own memory, CPUs and uptime: LXCFS answers each read from the reader's cgroup."""
    for rel in LXCFS_FILES:
        source, target = os.path.join(lxcfs, rel), os.path.join(root, rel)
        if os.path.exists(source) and os.path.exists(target):
            libc.mount(source, target, None, libc.MS_BIND)


def mount_sys(root: str) -> None:
    sys_dir = os.path.join(root, "sys")
    _ensure_dir(sys_dir)
    libc.mount("sysfs", sys_dir, "sysfs", libc.MS_RDONLY | NOSUID_NODEV_NOEXEC)
    for name in MASKED_SYS_PATHS:
        _mask(os.path.join(sys_dir, name), os.path.join(root, "dev/null"))


def mount_dev(root: str) -> None:
    """A tmpfs /dev with only the harmless nodes, its own pty instance and shared memory."""
    dev = os.path.join(root, "dev")
    _ensure_dir(dev)
    libc.mount("tmpfs", dev, "tmpfs", libc.MS_NOSUID | libc.MS_NOEXEC, "mode=755,size=64k")
    for name, (kind, major, minor, mode) in DEVICES.items():
        path = os.path.join(dev, name)
        os.mknod(path, kind | mode, os.makedev(major, minor))
        os.chmod(path, mode)
    # The console goes nowhere: a guest's boot messages must not reach a host terminal.
    console = os.path.join(dev, "console")
    os.mknod(console, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    os.makedirs(os.path.join(dev, "pts"))
    libc.mount(
        "devpts",
        os.path.join(dev, "pts"),
        "devpts",
        libc.MS_NOSUID | libc.MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620,gid=5",
    )
    os.symlink("pts/ptmx", os.path.join(dev, "ptmx"))
    os.makedirs(os.path.join(dev, "shm"), mode=0o1777)
    os.chmod(os.path.join(dev, "shm"), 0o1777)
    libc.mount("tmpfs", os.path.join(dev, "shm"), "tmpfs", NOSUID_NODEV_NOEXEC, "mode=1777,size=65536k")
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, os.path.join(dev, name))


def pivot_into(root: str) -> None:
    """Make `root` the root of this mount namespace and detach the old root entirely."""
    os.chdir(root)
    libc.pivot_root(".", ".")  # the old root ends up stacked under the new one ...
    libc.umount2(".", libc.MNT_DETACH)  # ... and is lazily detached from it here
    os.chdir("/")
