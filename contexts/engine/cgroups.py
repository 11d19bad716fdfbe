"""Control groups: one interface for the engine, a cgroup v1 and a v2 backend chosen from /proc/mounts.

Callers never ask which version they are on. The pure parsing functions take file contents as
arguments, so their logic is tested without a kernel.
"""

import os
import signal
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

from .errors import EngineError, HostUnsupported

# v1 controllers a context is placed under, in the order `pids()` prefers to read from.
V1_CONTROLLERS = ("pids", "freezer", "memory", "cpu", "cpuacct", "cpuset", "blkio", "devices")
V2_CONTROLLERS = ("cpu", "cpuset", "memory", "pids", "io")
# Limits the engine cannot do without; the rest (swap, IO throttling, pinning) depend on the kernel.
REQUIRED_FILES = {"cpu.max", "cpu.cfs_quota_us", "cpu.cfs_period_us", "memory.max", "memory.limit_in_bytes", "pids.max"}


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    fstype: str
    options: frozenset[str]


def parse_mounts(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            target = fields[1].replace("\\040", " ")
            mounts.append(Mount(fields[0], target, fields[2], frozenset(fields[3].split(","))))
    return mounts


def v1_hierarchies(mounts: list[Mount]) -> dict[str, str]:
    """Mount point of each v1 controller we use (co-mounted controllers share one)."""
    found = {}
    for m in mounts:
        if m.fstype == "cgroup":
            for controller in V1_CONTROLLERS:
                if controller in m.options and controller not in found:
                    found[controller] = m.target
    return found


def v2_mount(mounts: list[Mount]) -> str | None:
    """The cgroup2 mount that owns the controllers, if the host runs the unified hierarchy."""
    for m in mounts:
        if m.fstype == "cgroup2" and m.target == "/sys/fs/cgroup":
            return m.target
    return None


@dataclass(frozen=True)
class Hierarchy:
    device: str  # major:minor of the hierarchy's super block: the same hierarchy mounted twice shares it
    target: str
    fstype: str


def parse_mountinfo(text: str) -> list[Hierarchy]:
    """Every cgroup (v1) and cgroup2 mount of a whole hierarchy (root "/") from /proc/self/mountinfo.
    A mount of a subtree (as container runtimes make) is left out: a group made there would not be
    at the path we expect."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        fstype = line.split(" - ", 1)[1].split()[0]
        if fstype in ("cgroup", "cgroup2") and fields[3] == "/":
            found.append(Hierarchy(fields[2], fields[4].replace("\\040", " "), fstype))
    return found


def placement_roots(hierarchies: list[Hierarchy], primary: list[str]) -> list[str]:
    """Mount points of the hierarchies besides the `primary` ones (which hold the limits), once each:
    named v1 hierarchies such as name=systemd, v1 controllers we do not use, the cgroup2 mount of a
    hybrid host. A guest is placed in every one of them too: left in a host group of any hierarchy,
    it could reach the host's processes through it."""
    taken = {h.device for h in hierarchies if h.target in primary}
    roots = []
    for h in hierarchies:
        if h.device not in taken and h.target not in primary:
            taken.add(h.device)
            roots.append(h.target)
    return roots


def parse_procs(text: str) -> set[int]:
    return {int(line) for line in text.split()}


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


class Cgroups(ABC):
    """The cgroups of the contexts on this host, all below one parent group."""

    version: int
    extra_roots: tuple[str, ...] | list[str] = ()  # hierarchies a context is only placed in (placement_roots)

    def __init__(self, parent: str):
        self.parent = parent

    @abstractmethod
    def _limit_directories(self, name: str) -> list[str]:
        """The directories that hold the context's limits (one per v1 hierarchy used, one on v2)."""

    def directories(self, name: str) -> list[str]:
        """Every directory that makes up the context's cgroup: the limits' first, then one in each
        other hierarchy mounted on this host."""
        return self._limit_directories(name) + [os.path.join(root, self.parent, name) for root in self.extra_roots]

    @abstractmethod
    def _create_limit_groups(self, name: str) -> None:
        """Create the groups that hold the limits; ones left from an earlier run are reused."""

    def create(self, name: str) -> None:
        """Create the context's cgroup in every hierarchy; a cgroup left from an earlier run is reused."""
        self._create_limit_groups(name)
        for root in self.extra_roots:
            os.makedirs(os.path.join(root, self.parent, name), exist_ok=True)

    @abstractmethod
    def _kill_once(self, name: str) -> None:
        """Send SIGKILL to every process of the context, daemons that double-forked included."""

    def procs_files(self, name: str) -> list[str]:
        return [os.path.join(d, "cgroup.procs") for d in self.directories(name)]

    def exists(self, name: str) -> bool:
        return os.path.isdir(self.directories(name)[0])

    def pids(self, name: str) -> set[int]:
        try:
            return parse_procs(_read(self.procs_files(name)[0]))
        except FileNotFoundError:
            return set()

    def kill_all(self, name: str, timeout: float = 10.0) -> None:
        """Kill every process in the context's cgroup and wait until it is empty."""
        deadline = time.monotonic() + timeout
        while self.pids(name):
            self._kill_once(name)
            if time.monotonic() > deadline:
                raise EngineError(f"Processes {sorted(self.pids(name))} of context {name} survived SIGKILL.")
            time.sleep(0.01)

    def remove(self, name: str) -> None:
        """Kill what is left and remove the cgroup; nothing happens if it is already gone."""
        if not self.exists(name):
            return
        self.kill_all(name)
        for directory in self.directories(name):
            for attempt in range(200):  # a killed process leaves the cgroup a moment after it is reaped
                try:
                    _rmdir(directory)
                    break
                except OSError as exc:
                    if attempt == 199:
                        raise EngineError(f"Cannot remove cgroup {directory}: {exc.strerror}.") from exc
                    time.sleep(0.01)

    @abstractmethod
    def _file(self, name: str, filename: str) -> str:
        """Where the cgroup file `filename` (e.g. memory.max) of the context lives."""

    def apply(self, name: str, pairs: list[tuple[str, str]]) -> None:
        """Write limit settings; files this kernel lacks (swap accounting, IO throttling) are skipped,
        the core ones (CPU, memory, processes) are required."""
        for filename, value in pairs:
            path = self._file(name, filename)
            if not os.path.exists(path):
                if filename in REQUIRED_FILES:
                    raise HostUnsupported(f"This host's cgroups lack {filename}: enable that controller.")
                continue
            try:
                _write(path, value)
            except OSError as exc:
                raise EngineError(f"Cannot set {filename} to {value}: {exc.strerror}.") from exc

    def read(self, name: str, filename: str) -> str | None:
        try:
            return _read(self._file(name, filename))
        except (FileNotFoundError, OSError):
            return None

    @abstractmethod
    def usage(self, name: str) -> dict:
        """CPU seconds, memory current and peak, processes, IO bytes and OOM kills."""

    def cap_device_writeback(self, pairs: list[tuple[str, str]]) -> None:
        """Extra step for hosts where the guest's writeback is not charged to its cgroup (v1)."""
        return  # v2 charges writeback to the group that dirtied the pages

    def remove_parent(self) -> None:
        for directory in self.directories(""):
            _rmdir(directory.rstrip("/"))


class CgroupsV1(Cgroups):
    version = 1

    def __init__(self, parent: str, hierarchies: dict[str, str]):
        super().__init__(parent)
        self.hierarchies = hierarchies
        # In V1_CONTROLLERS order, so pids() reads the pids hierarchy; co-mounted controllers once.
        self.roots = list(dict.fromkeys(hierarchies[c] for c in V1_CONTROLLERS if c in hierarchies))

    def _limit_directories(self, name: str) -> list[str]:
        return [os.path.join(root, self.parent, name) for root in self.roots]

    def _file(self, name: str, filename: str) -> str:
        root = self.hierarchies.get(filename.split(".")[0])
        return os.path.join(root, self.parent, name, filename) if root else "/nonexistent"

    def apply(self, name: str, pairs: list[tuple[str, str]]) -> None:
        # memory.limit_in_bytes may never exceed memory.memsw.limit_in_bytes: open the latter first.
        memsw = self._file(name, "memory.memsw.limit_in_bytes")
        if any(f == "memory.limit_in_bytes" for f, _ in pairs) and os.path.exists(memsw):
            _write(memsw, "-1")
        super().apply(name, pairs)

    def cap_device_writeback(self, pairs: list[tuple[str, str]]) -> None:
        """v1 charges buffered writeback to the root group (the flusher threads), not to the guest that
        dirtied the pages, so caps in the guest's group miss it. A guest's own loop device carries
        only that guest's IO: the same caps on it in the root group catch its writeback too."""
        root = self.hierarchies.get("blkio")
        for filename, value in pairs:
            path = os.path.join(root, filename) if root else ""
            if filename.startswith("blkio.throttle.") and os.path.exists(path):
                _write(path, value)

    def usage(self, name: str) -> dict:
        cpu_ns = self.read(name, "cpuacct.usage")
        oom = _field(self.read(name, "memory.oom_control"), "oom_kill")
        io_read = io_write = 0
        for line in (self.read(name, "blkio.throttle.io_service_bytes") or "").splitlines():
            fields = line.split()
            if len(fields) == 3 and fields[1] == "Read":
                io_read += int(fields[2])
            elif len(fields) == 3 and fields[1] == "Write":
                io_write += int(fields[2])
        return {
            "cpu_seconds": int(cpu_ns) / 1e9 if cpu_ns else 0.0,
            "memory_bytes": _int(self.read(name, "memory.usage_in_bytes")),
            "memory_peak_bytes": _int(self.read(name, "memory.max_usage_in_bytes")),
            "processes": _int(self.read(name, "pids.current")),
            "processes_peak": _int(self.read(name, "pids.peak")),
            "fork_refusals": _field(self.read(name, "pids.events"), "max") or 0,
            "io_read_bytes": io_read,
            "io_write_bytes": io_write,
            "oom_kills": oom or 0,
        }

    def _create_limit_groups(self, name: str) -> None:
        for root in self.roots:
            for directory in (os.path.join(root, self.parent), os.path.join(root, self.parent, name)):
                os.makedirs(directory, exist_ok=True)
                if root == self.hierarchies.get("cpuset"):
                    # A new v1 cpuset is empty and refuses tasks until given CPUs and memory nodes.
                    for key in ("cpuset.cpus", "cpuset.mems"):
                        if not _read(os.path.join(directory, key)).strip():
                            _write(os.path.join(directory, key), _read(os.path.join(os.path.dirname(directory), key)))

    def _kill_once(self, name: str) -> None:
        freezer = self.hierarchies.get("freezer")
        state = os.path.join(freezer, self.parent, name, "freezer.state") if freezer else None
        # Frozen processes cannot fork while we kill them, so a fork bomb cannot outrun the loop.
        if state and os.path.exists(state):
            _write(state, "FROZEN")
        try:
            for pid in self.pids(name):
                _kill(pid)
        finally:
            if state and os.path.exists(state):
                _write(state, "THAWED")


class CgroupsV2(Cgroups):
    version = 2

    def __init__(self, parent: str, mountpoint: str = "/sys/fs/cgroup"):
        super().__init__(parent)
        self.mountpoint = mountpoint

    def _limit_directories(self, name: str) -> list[str]:
        return [os.path.join(self.mountpoint, self.parent, name)]

    def _file(self, name: str, filename: str) -> str:
        return os.path.join(self.mountpoint, self.parent, name, filename)

    def usage(self, name: str) -> dict:
        io_read = io_write = 0
        for line in (self.read(name, "io.stat") or "").splitlines():
            for item in line.split()[1:]:
                key, _, value = item.partition("=")
                if key == "rbytes":
                    io_read += int(value)
                elif key == "wbytes":
                    io_write += int(value)
        return {
            "cpu_seconds": (_field(self.read(name, "cpu.stat"), "usage_usec") or 0) / 1e6,
            "memory_bytes": _int(self.read(name, "memory.current")),
            "memory_peak_bytes": _int(self.read(name, "memory.peak")),
            "processes": _int(self.read(name, "pids.current")),
            "processes_peak": _int(self.read(name, "pids.peak")),
            "fork_refusals": _field(self.read(name, "pids.events"), "max") or 0,
            "io_read_bytes": io_read,
            "io_write_bytes": io_write,
            "oom_kills": _field(self.read(name, "memory.events"), "oom_kill") or 0,
        }

    def _create_limit_groups(self, name: str) -> None:
        parent = os.path.join(self.mountpoint, self.parent)
        os.makedirs(parent, exist_ok=True)
        available = set(_read(os.path.join(self.mountpoint, "cgroup.controllers")).split())
        wanted = " ".join(f"+{c}" for c in V2_CONTROLLERS if c in available)
        if wanted:
            for directory in (self.mountpoint, parent):
                _write(os.path.join(directory, "cgroup.subtree_control"), wanted)
        os.makedirs(os.path.join(parent, name), exist_ok=True)

    def _kill_once(self, name: str) -> None:
        directory = self.directories(name)[0]
        kill_file = os.path.join(directory, "cgroup.kill")
        if os.path.exists(kill_file):  # Linux 5.14+: the kernel kills the whole subtree atomically
            _write(kill_file, "1")
            return
        _write(os.path.join(directory, "cgroup.freeze"), "1")
        try:
            for pid in self.pids(name):
                _kill(pid)
        finally:
            _write(os.path.join(directory, "cgroup.freeze"), "0")


def _int(text: str | None) -> int | None:
    try:
        return int(text.split()[0]) if text else None
    except ValueError:
        return None


def _field(text: str | None, key: str) -> int | None:
    """The number after `key` in a flat-keyed cgroup file such as cpu.stat or memory.events."""
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == key:
            return int(fields[1])
    return None


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def choose(parent: str, mounts_text: str, mountinfo_text: str = "") -> Cgroups:
    """The backend for this host from /proc/mounts, placing contexts also in every other hierarchy
    that /proc/self/mountinfo shows."""
    mounts = parse_mounts(mounts_text)
    chosen = None
    if v2_mount(mounts):
        chosen = CgroupsV2(parent)
    elif v1_hierarchies(mounts):
        chosen = CgroupsV1(parent, v1_hierarchies(mounts))
    if chosen:
        primary = chosen.roots if isinstance(chosen, CgroupsV1) else [chosen.mountpoint]
        chosen.extra_roots = placement_roots(parse_mountinfo(mountinfo_text), primary)
        return chosen
    raise HostUnsupported(
        "No cgroup file system is mounted: mount cgroup2 on /sys/fs/cgroup "
        "(mount -t cgroup2 none /sys/fs/cgroup) or the v1 controllers below it."
    )


def detect(parent: str = "contexts") -> Cgroups:
    return choose(parent, _read("/proc/mounts"), _read("/proc/self/mountinfo"))
