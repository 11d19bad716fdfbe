"""Resource limits: validation, and their translation into cgroup v1 and v2 files.

Pure functions over plain values, so both backends' logic is tested without a kernel. The cgroup
backends write what `settings()` returns, in order, live or at start.
"""

import math
import os
import re

from .errors import InvalidSpec

_SIZE = re.compile(r"^(\d+)\s*([KMGT]?)(i?B)?$", re.IGNORECASE)
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_bytes(text) -> int:
    """Bytes from '64M', '10G', '512MiB' or a plain number of bytes."""
    match = _SIZE.match(str(text).strip())
    if not match:
        raise InvalidSpec(f"Invalid size {text!r}: write it like 512M or 10G.")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


PERIOD_US = 100_000
KEYS = (
    "cpus",
    "cpu_weight",
    "cpuset",
    "memory_bytes",
    "memory_high_bytes",
    "swap_bytes",
    "pids",
    "io_weight",
    "io_read_bps",
    "io_write_bps",
    "io_read_iops",
    "io_write_iops",
    "rate_mbit",  # applied by the network module, not a cgroup
)


def io_device_of(path) -> str | None:
    """MAJ:MIN of the whole disk under `path` (IO limits apply to disks, not partitions)."""
    st = os.stat(path)
    device = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    sys_dir = f"/sys/dev/block/{device}"
    if not os.path.exists(sys_dir):
        return None
    if os.path.exists(os.path.join(sys_dir, "partition")):
        with open(os.path.join(os.path.realpath(sys_dir), "..", "dev")) as f:
            return f.read().strip()
    return device


def host_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def host_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def parse_cpuset(text: str, available: list[int]) -> list[int]:
    cpus = set()
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            cpus.update(range(int(low), int(high or low) + 1))
    except ValueError as exc:
        raise InvalidSpec(f"Invalid CPU list {text!r}: write it like 0-1 or 0,2.") from exc
    if not cpus or not cpus <= set(available):
        raise InvalidSpec(f"CPU list {text!r} names CPUs this host does not offer ({format_cpuset(available)}).")
    return sorted(cpus)


def format_cpuset(cpus) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def validate(limits: dict, cpus_available: list[int] | None = None, memory_available: int | None = None) -> dict:
    """The limits with every value checked against sense and this host; unknown keys are refused."""
    cpus_available = cpus_available or host_cpus()
    memory_available = memory_available or host_memory_bytes()
    unknown = set(limits) - set(KEYS)
    if unknown:
        raise InvalidSpec(f"Unknown limit(s): {', '.join(sorted(unknown))}.")
    out = {k: v for k, v in limits.items() if v is not None}

    def whole(key, low, high, what):
        value = out.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high):
            raise InvalidSpec(f"{what} must be a whole number from {low} to {high}, not {value!r}.")

    if "cpus" in out:
        cpus = out["cpus"]
        if not isinstance(cpus, (int, float)) or not 0.01 <= cpus <= len(cpus_available):
            raise InvalidSpec(f"CPUs must be from 0.01 to {len(cpus_available)} (this host's CPUs), not {cpus!r}.")
        out["cpus"] = float(cpus)
    whole("cpu_weight", 1, 10000, "CPU weight")
    whole("io_weight", 1, 10000, "IO weight")
    whole("pids", 8, 4_194_304, "The process limit")
    whole("rate_mbit", 1, 100_000, "The network rate in Mbit/s")
    whole("memory_bytes", 16 * 2**20, memory_available, "The memory limit in bytes (16 MiB up to the host's memory)")
    whole("memory_high_bytes", 16 * 2**20, memory_available, "The memory high mark in bytes")
    whole("swap_bytes", 0, 2**50, "The swap limit in bytes")
    for key in ("io_read_bps", "io_write_bps", "io_read_iops", "io_write_iops"):
        whole(key, 1, 2**50, key.replace("_", " "))
    if "memory_high_bytes" in out and "memory_bytes" in out and out["memory_high_bytes"] > out["memory_bytes"]:
        raise InvalidSpec("The memory high mark must not be above the memory limit.")
    if "cpuset" in out:
        out["cpuset"] = format_cpuset(parse_cpuset(str(out["cpuset"]), cpus_available))
    return out


def visible_cpus(limits: dict, context_id: int, available: list[int]) -> list[int]:
    """The CPUs a guest runs on: its pinned list, or as many as its cap rounded up, spread over the
    host by context id so neighbours land on different cores. `nproc` inside shows their number."""
    if limits.get("cpuset"):
        return parse_cpuset(limits["cpuset"], available)
    if "cpus" not in limits:
        return list(available)
    count = min(len(available), max(1, math.ceil(limits["cpus"] - 1e-9)))
    start = context_id % len(available)
    return sorted(available[(start + i) % len(available)] for i in range(count))


def settings(limits: dict, version: int, context_id: int, available: list[int], io_device: str | None) -> list:
    """(file, value) pairs to write into the context's cgroup, in a safe order."""
    out = []
    cpus = visible_cpus(limits, context_id, available)
    out.append(("cpuset.cpus", format_cpuset(cpus)))
    quota = int(limits["cpus"] * PERIOD_US) if "cpus" in limits else None
    weight = limits.get("cpu_weight", 100)
    memory, swap, high = limits.get("memory_bytes"), limits.get("swap_bytes"), limits.get("memory_high_bytes")
    if version == 2:
        out.append(("cpu.max", f"{quota if quota else 'max'} {PERIOD_US}"))
        out.append(("cpu.weight", str(weight)))
        out.append(("memory.high", str(high) if high else "max"))
        out.append(("memory.max", str(memory) if memory else "max"))
        # As on v1 (memsw = memory + swap): with a memory limit and no swap given, no swap.
        out.append(("memory.swap.max", str(swap or 0) if memory else "max"))
        out.append(("pids.max", str(limits["pids"]) if "pids" in limits else "max"))
        if "io_weight" in limits:
            out.append(("io.weight", f"default {limits['io_weight']}"))
        caps = _io_caps(limits)
        if io_device and caps:
            out.append(("io.max", f"{io_device} " + " ".join(f"{k}={v}" for k, v in caps.items())))
        return out
    out.append(("cpu.cfs_period_us", str(PERIOD_US)))
    out.append(("cpu.cfs_quota_us", str(quota) if quota else "-1"))
    out.append(("cpu.shares", str(max(2, weight * 1024 // 100))))
    out.append(("memory.soft_limit_in_bytes", str(high) if high else "-1"))
    # memory.limit must stay <= memsw.limit at every step: memsw.limit is written around it by the backend.
    out.append(("memory.limit_in_bytes", str(memory) if memory else "-1"))
    if memory:
        out.append(("memory.memsw.limit_in_bytes", str(memory + (swap or 0))))
    else:
        out.append(("memory.memsw.limit_in_bytes", "-1"))
    out.append(("pids.max", str(limits["pids"]) if "pids" in limits else "max"))
    if "io_weight" in limits:
        out.append(("blkio.weight", str(max(10, min(1000, limits["io_weight"] // 10)))))
    if io_device:
        for key, name in (
            ("rbps", "read_bps_device"),
            ("wbps", "write_bps_device"),
            ("riops", "read_iops_device"),
            ("wiops", "write_iops_device"),
        ):
            value = _io_caps(limits).get(key, 0)  # 0 removes the cap
            out.append((f"blkio.throttle.{name}", f"{io_device} {value}"))
    return out


def _io_caps(limits: dict) -> dict:
    names = {"rbps": "io_read_bps", "wbps": "io_write_bps", "riops": "io_read_iops", "wiops": "io_write_iops"}
    return {short: limits[long] for short, long in names.items() if long in limits}
