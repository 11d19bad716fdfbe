"""Carrying out one operation sent by the panel, on this host, idempotently.

Each handler looks at what exists first and does only what is missing, so a message delivered twice
(a worker killed mid-way, a retry, the panel's watchdog sending it again) ends in the same place as
one delivery. `progress(percent, step)` reports how far it got; the returned facts say what now holds.
"""

from collections.abc import Callable

from . import seccomp
from .errors import ContextNotFound, InvalidSpec, InvalidState
from .lifecycle import PROTECTION_VERSION, Lifecycle
from .spec import ContextSpec, OperationSpec

MiB, GiB = 2**20, 2**30
Progress = Callable[[int, str], None]


def engine_limits(context: ContextSpec) -> dict:
    limits = context.limits
    return {
        "cpus": limits.cpus,
        "cpu_weight": limits.cpu_weight,
        "memory_bytes": limits.memory_mib * MiB,
        "swap_bytes": limits.swap_mib * MiB,
        "pids": limits.pids,
        "rate_mbit": limits.rate_mbit,
    }


def _exists(engine: Lifecycle, name: str) -> bool:
    return name in engine.state.context_names()


def _running(engine: Lifecycle, name: str) -> bool:
    return engine.status(name)["state"] == "running"


def _has_started(engine: Lifecycle, name: str) -> bool:
    return "started_at" in engine.state.run_record(name)


def _require(engine: Lifecycle, name: str) -> None:
    if not _exists(engine, name):
        raise ContextNotFound(f"Context {name} does not exist on this host; reinstall it to create it again.")


def _build(engine: Lifecycle, spec: OperationSpec, progress: Progress) -> None:
    context = spec.context
    progress(10, "Cloning the template")
    engine.build(
        context.name,
        context.template,
        hostname=context.hostname,
        addresses=[a.address for a in context.addresses],
        context_id=context.context_id,
        disk=context.limits.disk_gib * GiB,
        inodes=context.limits.inodes,
        limits=engine_limits(context),
        origin=spec.operation,
        host_ports=list(context.host_ports),
    )


def _configure_accounts(engine: Lifecycle, spec: OperationSpec, progress: Progress) -> None:
    progress(60, "Configuring accounts")
    if spec.params.get("password_hash"):
        engine.set_root_password(spec.context.name, spec.params["password_hash"])
    if spec.params.get("ssh_keys") is not None:
        engine.set_ssh_keys(spec.context.name, spec.params["ssh_keys"])


def _ensure_running(engine: Lifecycle, name: str, progress: Progress) -> None:
    if not _running(engine, name):
        progress(80, "Starting")
        engine.start(name)


def create(engine: Lifecycle, spec: OperationSpec, progress: Progress) -> None:
    name = spec.context.name
    if _exists(engine, name):
        origin = engine.state.config(name).get("origin")
        if origin != spec.operation:
            raise InvalidState(
                f"Context {name} already exists on this host and was not made by this operation: "
                "destroy it or reinstall it instead."
            )
        if _has_started(engine, name):  # an earlier delivery got as far as starting it
            _ensure_running(engine, name, progress)
            return
        engine.destroy(name)  # an earlier delivery stopped part-way: a never-started clone holds no data
    _build(engine, spec, progress)
    _configure_accounts(engine, spec, progress)
    _ensure_running(engine, name, progress)


def reinstall(engine: Lifecycle, spec: OperationSpec, progress: Progress) -> None:
    name = spec.context.name
    if _exists(engine, name):
        if engine.state.config(name).get("origin") == spec.operation and _has_started(engine, name):
            _ensure_running(engine, name, progress)  # done already: never wipe the fresh install again
            return
        progress(5, "Removing the old installation")
        engine.destroy(name)
    _build(engine, spec, progress)
    _configure_accounts(engine, spec, progress)
    _ensure_running(engine, name, progress)


def start(engine: Lifecycle, spec: OperationSpec, progress: Progress) -> None:
    _require(engine, spec.context.name)
    _ensure_running(engine, spec.context.name, progress)


def stop(engine: Lifecycle, spec: OperationSpec, progress: Progress) -> None:
    _require(engine, spec.context.name)
    progress(30, "Stopping")
    engine.stop(spec.context.name)


def restart(engine: Lifecycle, spec: OperationSpec, progress: Progress) -> None:
    name = spec.context.name
    _require(engine, name)
    progress(30, "Restarting")
    if _running(engine, name):
        engine.restart(name)
    else:
        engine.start(name)


def unsuspend(engine: Lifecycle, spec: OperationSpec, progress: Progress) -> None:
    _require(engine, spec.context.name)
    if spec.params.get("resume", True):
        _ensure_running(engine, spec.context.name, progress)


def destroy(engine: Lifecycle, spec: OperationSpec, progress: Progress) -> None:
    if _exists(engine, spec.context.name):
        progress(30, "Stopping and removing storage and network")
        engine.destroy(spec.context.name)


def change_plan(engine: Lifecycle, spec: OperationSpec, progress: Progress) -> None:
    context, name = spec.context, spec.context.name
    _require(engine, name)
    config = engine.state.config(name)
    disk = context.limits.disk_gib * GiB
    # The disk first: it is the step that can be refused, and then nothing else has changed.
    if config.get("disk_bytes") and config["disk_bytes"] != disk:
        progress(20, "Resizing the disk")
        try:
            engine.set_disk_limit(name, disk)
        except InvalidState:
            if not _running(engine, name):
                raise
            # This kernel cannot grow (or shrink) it mounted: a short stop does it offline.
            progress(30, "Stopping to resize the disk (this host cannot do it live)")
            engine.stop(name)
            try:
                engine.set_disk_limit(name, disk)
            finally:
                engine.start(name)
    progress(50, "Applying limits")
    engine.set_limits(name, engine_limits(context))
    progress(80, "Updating addresses")
    wanted = [a.address for a in context.addresses]
    for address in [a for a in config["addresses"] if a not in wanted]:
        engine.change_address(name, address, add=False)
    for address in [a for a in wanted if a not in engine.state.config(name)["addresses"]]:
        engine.change_address(name, address, add=True)
    progress(90, "Updating the host ports it may reach")
    engine.set_host_ports(name, list(context.host_ports))


def apply_limits(engine: Lifecycle, spec: OperationSpec, progress: Progress) -> None:
    """The spec's CPU, memory, process and network limits, live (a traffic throttle, or its end), and
    its plan's host ports (the spec always carries them: reapplying repairs drift)."""
    _require(engine, spec.context.name)
    progress(50, "Applying limits")
    engine.set_limits(spec.context.name, engine_limits(spec.context))
    engine.set_host_ports(spec.context.name, list(spec.context.host_ports))


def change_hostname(engine: Lifecycle, spec: OperationSpec, progress: Progress) -> None:
    _require(engine, spec.context.name)
    progress(50, "Renaming")
    engine.set_hostname(spec.context.name, spec.context.hostname)


def reset_password(engine: Lifecycle, spec: OperationSpec, progress: Progress) -> None:
    _require(engine, spec.context.name)
    if not spec.params.get("password_hash"):
        raise InvalidSpec("A password reset needs password_hash.")
    progress(50, "Writing the new password")
    engine.set_root_password(spec.context.name, spec.params["password_hash"])


def set_ssh_keys(engine: Lifecycle, spec: OperationSpec, progress: Progress) -> None:
    _require(engine, spec.context.name)
    progress(50, "Writing SSH keys")
    engine.set_ssh_keys(spec.context.name, spec.params.get("ssh_keys") or [])


HANDLERS = {
    "create": create,
    "reinstall": reinstall,
    "start": start,
    "stop": stop,
    "restart": restart,
    "suspend": stop,
    "unsuspend": unsuspend,
    "destroy": destroy,
    "change_plan": change_plan,
    "hostname": change_hostname,
    "password": reset_password,
    "ssh_keys": set_ssh_keys,
    "limits": apply_limits,
}


def run(engine: Lifecycle, spec: OperationSpec, progress: Progress) -> dict:
    """Carry out `spec` and return what holds afterwards: {"exists", "state", "addresses", "hostname"}."""
    handler = HANDLERS.get(spec.kind)
    if handler is None:
        raise InvalidSpec(f"This host does not know the operation {spec.kind!r}.")
    handler(engine, spec, progress)
    name = spec.context.name
    if not _exists(engine, name):
        return {"exists": False, "state": "absent", "addresses": [], "hostname": None}
    status = engine.status(name)
    return {"exists": True, "state": status["state"], "addresses": status["addresses"], "hostname": status["hostname"]}


def host_report(engine: Lifecycle) -> dict:
    """What this host offers and holds: capacity, templates, every context with its usage, and
    `unsafe`: sentences for staff when guests here run with less protection than they should."""
    from . import hostinfo

    exists = engine.state.root.exists()
    capacity = hostinfo.read_capacity(str(engine.state.root) if exists else "/")
    contexts = inventory(engine) if exists else []
    unsafe = []
    if seccomp.unsafe_override():  # the override starts guests without the filter, supported or not
        unsafe.append("Guests run without a syscall filter (CONTEXTS_UNSAFE_NO_SECCOMP is set).")
    behind = outdated_guests(engine, [c["name"] for c in contexts if c["state"] == "running"])
    if behind:
        shown = ", ".join(behind[:5]) + (f" and {len(behind) - 5} more" if len(behind) > 5 else "")
        unsafe.append(
            f"{len(behind)} running guest(s) started before this host's current protections or without the "
            f"syscall filter ({shown}): restart them."
        )
    return {
        "capacity": {"cpus": capacity.cpus, "memory_mib": capacity.memory_mib, "disk_gib": capacity.disk_gib},
        "templates": engine.state.template_names() if exists else [],
        "contexts": contexts,
        "unsafe": unsafe,
    }


def outdated_guests(engine: Lifecycle, running: list[str]) -> list[str]:
    """Running guests whose start gave them less than a start gives now (an upgrade happened since,
    or the filter was off): a restart brings them up to date."""
    behind = []
    for name in running:
        protection = engine.state.run_record(name).get("protection") or {}
        if protection.get("version", 0) < PROTECTION_VERSION or not protection.get("filtered"):
            behind.append(name)
    return behind


def inventory(engine: Lifecycle) -> list[dict]:
    """Every context on this host with its state and usage, for the panel's reconciliation."""
    from . import disk

    out = []
    for name in engine.state.context_names():
        try:
            config = engine.state.config(name)
            usage = engine.usage(name, config)
            disk_used = disk.used_if_mounted(engine.state.context_dir(name)) if config.get("disk_bytes") else None
        except (ContextNotFound, FileNotFoundError):
            continue  # destroyed while we looked
        out.append(
            {
                "name": name,
                "state": usage["state"],
                "context_id": config["context_id"],
                "cpu_seconds": usage.get("cpu_seconds", 0.0),
                "memory_bytes": usage.get("memory_bytes", 0),
                "memory_peak_bytes": usage.get("memory_peak_bytes", 0),
                "disk_bytes": disk_used,
                "net_in_bytes": usage.get("net_in_bytes", 0),
                "net_out_bytes": usage.get("net_out_bytes", 0),
            }
        )
    return out
