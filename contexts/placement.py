"""Choosing a host for a plan. Pure functions over plain numbers, so they are tested without a database."""

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Need:
    cpus: Decimal
    memory_mib: int
    disk_gib: int


@dataclass(frozen=True)
class Room:
    """What a host can still sell."""

    name: str
    cpus: Decimal
    memory_mib: int
    disk_gib: int

    def fits(self, need: Need) -> bool:
        return self.cpus >= need.cpus and self.memory_mib >= need.memory_mib and self.disk_gib >= need.disk_gib

    def shortfalls(self, need: Need) -> list[str]:
        out = []
        if self.cpus < need.cpus:
            out.append(f"{self.cpus} CPUs free of {need.cpus} needed")
        if self.memory_mib < need.memory_mib:
            out.append(f"{self.memory_mib} MiB memory free of {need.memory_mib} needed")
        if self.disk_gib < need.disk_gib:
            out.append(f"{self.disk_gib} GiB disk free of {need.disk_gib} needed")
        return out


def choose_host(rooms: list[Room], need: Need) -> Room | None:
    """The fitting host with the most memory left afterwards (memory is what runs out first), spreading
    load; ties go to the most CPU left, then by name so the choice is repeatable."""
    fitting = [r for r in rooms if r.fits(need)]
    if not fitting:
        return None
    return min(fitting, key=lambda r: (-(r.memory_mib - need.memory_mib), -(r.cpus - need.cpus), r.name))


def explain_no_room(rooms: list[Room], need: Need) -> str:
    if not rooms:
        return "No active host has this template. Import the template on a host or bring a host out of maintenance."
    reasons = "; ".join(f"{r.name}: {', '.join(r.shortfalls(need))}" for r in rooms)
    return f"No host has room for this plan ({reasons}). Add a host or free capacity."


def first_free_id(used: set[int], lowest: int, highest: int) -> int | None:
    for candidate in range(lowest, highest + 1):
        if candidate not in used:
            return candidate
    return None
