"""What this machine offers: CPUs, memory and disk, read from the kernel."""

import os
import shutil
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Capacity:
    cpus: int
    memory_mib: int
    disk_gib: int


def parse_meminfo_total_kib(text: str) -> int:
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    raise ValueError("MemTotal missing from /proc/meminfo")


def usable_cpus() -> int:
    """CPUs this process may run on (respects cpusets and affinity, unlike os.cpu_count)."""
    return len(os.sched_getaffinity(0))


def read_capacity(storage_path: str = "/") -> Capacity:
    with open("/proc/meminfo", encoding="ascii") as f:
        memory_kib = parse_meminfo_total_kib(f.read())
    return Capacity(
        cpus=usable_cpus(),
        memory_mib=memory_kib // 1024,
        disk_gib=shutil.disk_usage(storage_path).total // 2**30,
    )


def host_name() -> str:
    """This machine's name in the form hosts are registered under: lower case, no trailing dot."""
    return socket.gethostname().strip().lower().rstrip(".")
