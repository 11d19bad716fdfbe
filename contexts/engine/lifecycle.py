"""The life of a context: build, start, stop, restart, destroy, status, exec and enter.

Composes the other modules. Every change to one context holds its lock, so the CLI, host workers and
the context's own supervisor never act on it at the same time.
"""

import contextlib
import marshal
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from . import (
    cgroups,
    clone,
    diskusage,
    entry,
    guestfiles,
    guestproc,
    libc,
    namespaces,
    network,
    procinfo,
    rootfs,
    safefile,
    seccomp,
)
from . import check as host_check
from . import disk as diskimage
from . import limits as resources
from . import unify as unification
from .errors import (
    ContextExists,
    ContextNotFound,
    EngineError,
    HostUnsupported,
    InvalidSpec,
    InvalidState,
    StartFailed,
)
from .spec import CONTEXT_ID_RANGE, check_host_ports, check_hostname, check_name
from .state import StateDir, read_json, write_json

DEFAULT_CGROUP_PARENT = "contexts"
# The engine's settings from the environment: all the host agent hands an engine process of its own
# environment, and all a context's supervisor gets, so a restart after a guest's reboot sees the same.
ENGINE_SETTINGS = (
    "CONTEXTS_STATE_DIR",
    "CONTEXTS_CGROUP_PARENT",
    "CONTEXTS_HOST_NETNS",
    "CONTEXTS_UPLINK",
    network.PROTECTED_ENV,
    seccomp.UNSAFE_OVERRIDE,
    "CONTEXTS_DEBUG",
)
# Raised whenever what a newly started guest gets from the host changes in a way a running guest
# does not (a filter, a firewall chain): the host's report names guests started under an older one.
PROTECTION_VERSION = 2
START_TIMEOUT = 30.0
# The supervisor: a shell waiting on `unshare`, which waits on the guest's init. Constant text; the
# values arrive as positional parameters, never spliced into it.
SUPERVISOR = (
    'unshare --pid --fork -- "$1" -S -s -E -m contexts.engine.guestinit "$2" "$3" "$4"\n'
    'exec "$1" -s -E -m contexts.engine.guestinit --exited "$?" "$2" "$3" "$4"\n'
)
PROJECT_ROOT = str(Path(__file__).resolve().parents[2])  # where the `contexts` package lives
LXCFS_DIR = "/var/lib/lxcfs"  # where Debian's lxcfs serves /proc files computed from the reader's cgroup

# How each init style is asked to halt: a signal, or a command run inside.
HALT = {
    "busybox": signal.SIGUSR2,  # busybox init: poweroff
    "systemd": signal.SIGRTMIN + 4,  # systemd: poweroff
    "sysvinit": ["/sbin/telinit", "0"],
    "signal": signal.SIGTERM,
}
EXIT_REASONS = {128 + signal.SIGHUP: "rebooted", 128 + signal.SIGINT: "halted", 128 + signal.SIGKILL: "killed"}


def hosts_file(hostname: str) -> str:
    short = hostname.split(".")[0]
    names = hostname if short == hostname else f"{hostname} {short}"
    return f"127.0.0.1\tlocalhost\n127.0.1.1\t{names}\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def hostname_files(hostname: str) -> dict[str, str]:
    """The guest files that carry its hostname, by path below its root."""
    return {"etc/hostname": hostname + "\n", "etc/hosts": hosts_file(hostname)}


def limits_of(config: dict) -> dict | None:
    """The context's limits as shown by status: its cgroup limits and its disk limit."""
    limits = dict(config.get("limits") or {})
    if config.get("disk_bytes"):
        limits["disk_bytes"] = config["disk_bytes"]
    return limits or None


def describe_exit(status: int) -> str:
    return EXIT_REASONS.get(status) or (
        f"init exited with status {status}" if status < 128 else f"init ended by signal {status - 128}"
    )


class Lifecycle:
    def __init__(self, state: StateDir, cgroup_parent: str | None = None, host_netns: str | None = None):
        self.state = state
        self.cgroup_parent = cgroup_parent or os.environ.get("CONTEXTS_CGROUP_PARENT") or DEFAULT_CGROUP_PARENT
        # Where the host ends of the guests' veths live: the root namespace, or a stand-in in tests.
        self.host_netns = host_netns or os.environ.get("CONTEXTS_HOST_NETNS") or None

    def _network(self, config: dict) -> network.Network:
        return network.Network(
            config.get("host_netns"),
            os.environ.get("CONTEXTS_UPLINK") or None,
            network.protected_networks(os.environ.get(network.PROTECTED_ENV)),
        )

    @staticmethod
    def _wants_network(config: dict) -> bool:
        return bool(config["addresses"] or (config.get("limits") or {}).get("rate_mbit"))

    def _cgroups(self, config: dict) -> cgroups.Cgroups:
        return cgroups.detect(config["cgroup_parent"])

    # build / destroy

    def build(
        self,
        name: str,
        template: str,
        hostname: str | None = None,
        init: list[str] | None = None,
        addresses=(),
        context_id: int | None = None,
        disk: int | None = None,
        inodes: int | None = None,
        limits: dict | None = None,
        origin: str | None = None,
        host_ports=(),
    ) -> dict:
        """Create a context: a hard-link clone of the template as its read-only lower layer, an empty
        private layer (in an image of `disk` bytes when given), and its configuration."""
        check_name(name)
        if not host_check.has_overlayfs():
            raise HostUnsupported(
                "This kernel has no overlayfs, so guests cannot get a private copy-on-write layer over the shared "
                "template: modprobe overlay, or use a kernel built with CONFIG_OVERLAY_FS."
            )
        hostname = check_hostname(hostname or name)
        limits = resources.validate(limits or {})
        record = self.state.template_record(template)  # raises TemplateNotFound with the list
        addresses = network.parse_addresses(addresses)
        host_ports = check_host_ports(host_ports)
        if init is not None and (not init or not init[0].startswith("/")):
            raise InvalidSpec("--init needs an absolute path to the program, e.g. --init '/bin/sleep 1000'.")
        self.state.ensure()
        with self.state.host_locked():
            directory = self.state.context_dir(name)
            if directory.exists():
                raise ContextExists(f"Context {name!r} exists already.")
            used = {self.state.config(n)["context_id"] for n in self.state.context_names()}
            if context_id is None:
                context_id = next(
                    (i for i in range(CONTEXT_ID_RANGE[0], CONTEXT_ID_RANGE[1] + 1) if i not in used), None
                )
                if context_id is None:
                    raise EngineError("No free context id left on this host.")
            elif not CONTEXT_ID_RANGE[0] <= context_id <= CONTEXT_ID_RANGE[1]:
                raise InvalidSpec(f"Context id must be in {CONTEXT_ID_RANGE[0]}..{CONTEXT_ID_RANGE[1]}.")
            elif context_id in used:
                raise ContextExists(f"Context id {context_id} is taken on this host.")
            self._check_addresses_free(addresses)
            staging = self.state.contexts / f".{name}.building"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(mode=0o700)
            clone.clone_tree(self.state.template_rootfs(template), staging / "lower")
            for sub in ("rootfs",) if disk else ("upper", "work", "rootfs"):
                (staging / sub).mkdir(mode=0o755)
            config = {
                "name": name,
                "context_id": context_id,
                "hostname": hostname,
                "template": template,
                "init": init or ["/sbin/init"],
                "init_style": record["init_style"] if init is None else "signal",
                "addresses": addresses,
                "host_ports": host_ports,  # ports of the host itself it may reach: none by default
                "cgroup_parent": self.cgroup_parent,
                "host_netns": self.host_netns,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "template_version": record.get("version"),
                "template_checksum": record.get("checksum"),
                "disk_bytes": disk,
                "inodes": inodes,
                "limits": limits,
                "origin": origin,  # the operation that built it, so a redelivered one is recognised
            }
            write_json(staging / "config.json", config)
            os.rename(staging, directory)
            if disk:
                try:
                    diskimage.create(directory, disk, inodes)
                except BaseException:
                    diskimage.unmount(directory)
                    shutil.rmtree(directory)
                    raise
        return config

    def destroy(self, name: str, timeout: float = 30.0) -> None:
        self.state.config(name)
        directory = self.state.context_dir(name)
        doomed = self.state.contexts / f".{name}.destroyed-{uuid.uuid4().hex[:8]}"
        with self.state.locked(name):
            config = self.state.config(name)
            self._stop_locked(name, config, timeout)
            self._cgroups(config).remove(name)
            if config.get("disk_bytes"):
                self._uncap_device(name, config, self._cgroups(config))
                diskimage.unmount(directory)
            # Out of sight in one step, so the exiting supervisor or another CLI finds nothing half-removed.
            os.rename(directory, doomed)
        # rmtree never follows symlinks the guest left in its layer.
        shutil.rmtree(doomed)

    # start

    def start(self, name: str) -> dict:
        self.state.config(name)  # a clear error before waiting for the lock
        with self.state.locked(name):
            config = self.state.config(name)  # what holds now: it may have changed while we waited
            if self._running(name):
                raise InvalidState(f"Context {name} is already running.")
            return self._start_locked(name, config)

    def _start_locked(self, name: str, config: dict) -> dict:
        try:
            return self._launch(name, config)
        except BaseException:
            # Whatever step failed, leave no cgroup, namespace, veth or route behind.
            self._cgroups(config).remove(name)
            self._release_network(name, config)
            raise

    def _launch(self, name: str, config: dict) -> dict:
        program = seccomp.for_guests()  # a host that cannot filter refuses here, before anything is made
        directory = self.state.context_dir(name)
        limited = bool(config.get("disk_bytes"))
        if limited:
            diskimage.ensure_mounted(directory)  # gone after a host reboot
        upper, work = diskimage.layers(directory, limited)
        cg = self._cgroups(config)
        cg.remove(name)  # anything left from a crashed run goes first
        cg.create(name)
        self._apply_limits(name, config, cg)
        netns_path = None
        if self._wants_network(config):
            netns_path = self._network(config).setup(
                name,
                config["context_id"],
                config["addresses"],
                (config.get("limits") or {}).get("rate_mbit"),
                config.get("host_ports") or [],  # configs from before host ports have none
            )
        run_id = uuid.uuid4().hex
        # Everything the guest's first process needs, so it can start without reading JSON or state.
        boot = {
            "run_id": run_id,
            "lower": str(directory / "lower"),
            "upper": upper,
            "work": work,
            "target": str(directory / "rootfs"),
            "hostname": config["hostname"],
            "files": hostname_files(config["hostname"]),
            "init": config["init"],
            "environment": guestproc.guest_environment("linux"),
            "procs_files": cg.procs_files(name),
            "lxcfs": LXCFS_DIR if os.path.exists(os.path.join(LXCFS_DIR, "proc/meminfo")) else None,
            "netns": netns_path,
            "seccomp": program,
        }
        with open(directory / "boot", "wb") as f:
            marshal.dump(boot, f)
        run = self.state.run_record(name) | {
            "run_id": run_id,
            "desired": "running",
            "started_at": time.time(),
            "protection": {"version": PROTECTION_VERSION, "filtered": program is not None},
        }
        self.state.write_run_record(name, run)
        (directory / "init.json").unlink(missing_ok=True)
        with open(directory / "console.log", "ab") as log:
            subprocess.run(
                [
                    "setsid",
                    "--fork",
                    "/bin/sh",
                    "-c",
                    SUPERVISOR,
                    "contexts-supervisor",
                    sys.executable,
                    str(self.state.root),
                    name,
                    run_id,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=PROJECT_ROOT,
                check=True,
                # The host's settings, for a restart after a guest's reboot; nothing else of ours.
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
                | {key: os.environ[key] for key in ENGINE_SETTINGS if key in os.environ},
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            init = read_json(directory / "init.json") or {}
            if init.get("run_id") == run_id and init.get("state") == "running":
                return self.status(name)
            if init.get("run_id") == run_id and init.get("state") == "failed":
                cg.remove(name)
                self._release_network(name, config)
                raise StartFailed(f"Context {name} did not start: {init.get('error')}")
            time.sleep(0.001)
        cg.remove(name)
        self._release_network(name, config)
        log = directory / "console.log"
        raise StartFailed(f"Context {name} did not start within {START_TIMEOUT:.0f} s; see {log}.")

    # stop / restart

    def stop(self, name: str, timeout: float = 30.0) -> bool:
        """Halt the context; True if it was running, False if there was nothing to stop."""
        self.state.config(name)  # a clear error before waiting for the lock
        with self.state.locked(name):
            config = self.state.config(name)  # what holds now: it may have changed while we waited
            run_id = self.state.run_record(name).get("run_id")
            stopped = self._stop_locked(name, config, timeout)
        if stopped:
            self._wait_for_exit_record(name, run_id)
        return stopped

    def _wait_for_exit_record(self, name: str, run_id: str, timeout: float = 5.0) -> None:
        """Give the supervisor (which needed our lock) a moment to record how init ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.state.run_record(name).get("last_exit") or {}).get("run_id") == run_id:
                return
            time.sleep(0.01)

    def _stop_locked(self, name: str, config: dict, timeout: float) -> bool:
        init = self._running(name)
        cg = self._cgroups(config)
        run = self.state.run_record(name)
        if run.get("desired") == "running":
            self.state.write_run_record(name, run | {"desired": "stopped"})
        if init is None:
            cg.remove(name)
            self._release_network(name, config)
            return False
        pid, starttime = init["pid"], init["starttime"]
        self._ask_to_halt(name, config, pid, timeout)
        deadline = time.monotonic() + timeout
        while procinfo.is_alive(pid, starttime) and time.monotonic() < deadline:
            time.sleep(0.02)
        # Whatever is left, daemons that left init's process tree included, dies with the cgroup.
        cg.remove(name)
        if procinfo.is_alive(pid, starttime):
            os.kill(pid, signal.SIGKILL)  # the kernel then kills the whole PID namespace
            while procinfo.is_alive(pid, starttime):
                time.sleep(0.01)
        self._release_network(name, config)
        return True

    def _ask_to_halt(self, name: str, config: dict, pid: int, timeout: float) -> None:
        how = HALT.get(config.get("init_style"), signal.SIGTERM)
        try:
            if isinstance(how, list):
                # The guest controls that program: it gets the stop timeout at most, like init itself.
                self.run_inside(name, how, stdio=subprocess.DEVNULL, timeout=max(1.0, timeout / 2))
            else:
                os.kill(pid, how)
        except (OSError, EngineError):
            pass  # the timeout and SIGKILL follow

    def restart(self, name: str, timeout: float = 30.0) -> dict:
        self.state.config(name)  # a clear error before waiting for the lock
        with self.state.locked(name):
            config = self.state.config(name)  # what holds now: it may have changed while we waited
            self._stop_locked(name, config, timeout)
            return self._start_locked(name, config)

    def after_exit(self, name: str, run_id: str, status: int) -> None:
        """Called by the supervisor once init has ended: record why, clean up, restart after a reboot."""
        with contextlib.ExitStack() as stack:
            try:
                config = self.state.config(name)
                stack.enter_context(self.state.locked(name))
            except (ContextNotFound, FileNotFoundError):
                return  # destroyed meanwhile
            run = self.state.run_record(name)
            if run.get("run_id") != run_id:
                return  # a newer run took over, or the context was destroyed while we waited
            init = read_json(self.state.context_dir(name) / "init.json") or {}
            reason = init.get("error") if init.get("state") == "failed" else describe_exit(status)
            self._cgroups(config).remove(name)
            self._release_network(name, config)
            run = self.state.run_record(name)  # the network totals just changed
            rebooted = status == 128 + signal.SIGHUP and run.get("desired") == "running"
            run |= {
                "desired": "running" if rebooted else "stopped",
                "last_exit": {"status": status, "reason": reason, "at": time.time(), "run_id": run_id},
            }
            self.state.write_run_record(name, run)
            if rebooted:
                self._start_locked(name, config)

    # status

    def _running(self, name: str) -> dict | None:
        """init.json of the current run if its init process is alive, else None."""
        run = self.state.run_record(name)
        init = read_json(self.state.context_dir(name) / "init.json") or {}
        if (
            init.get("run_id")
            and init.get("run_id") == run.get("run_id")
            and init.get("state") in ("starting", "running")
        ):
            if procinfo.is_alive(init["pid"], init["starttime"]):
                return init
        return None

    def status(self, name: str) -> dict:
        config = self.state.config(name)
        init = self._running(name)
        run = self.state.run_record(name)
        state = "stopped" if init is None else ("running" if init["state"] == "running" else "starting")
        return {
            "name": name,
            "state": state,
            "context_id": config["context_id"],
            "init_pid": init["pid"] if init else None,
            "hostname": config["hostname"],
            "template": config["template"],
            "init": config["init"],
            "addresses": config["addresses"],
            "host_ports": config.get("host_ports") or [],
            "limits": limits_of(config),
            "last_exit": run.get("last_exit"),
        }

    def statuses(self) -> list[dict]:
        return [self.status(name) for name in self.state.context_names()]

    # exec / enter

    def run_inside(self, name: str, argv: list[str], stdio=None, timeout: float | None = None) -> int | None:
        """Run argv inside the context as a guest process; return its exit status (None: it ran past
        `timeout` and was killed). `stdio=subprocess.DEVNULL` gives it the guest's /dev/null; else it
        gets a terminal of the guest's own when ours is one, or pipes relayed to ours."""
        if not argv:
            raise InvalidSpec("Give the command to run, e.g. exec NAME -- ps.")
        mode = "null" if stdio == subprocess.DEVNULL else entry.choose_mode()
        return self._enter(name, argv, mode, timeout)

    def enter(self, name: str) -> int:
        """An interactive login shell inside, on a terminal of the guest's own; returns its exit status."""
        return self._enter(name, None, "pty", None)

    def _enter(self, name: str, argv: list[str] | None, mode: str, timeout: float | None) -> int | None:
        config = self.state.config(name)
        init = self._running(name)
        if init is None or init["state"] != "running":
            raise InvalidState(f"Context {name} is not running.")
        term = (os.environ.get("TERM") or "xterm") if mode == "pty" else None  # a terminal's type, or none
        return entry.run(
            init["pid"],
            init["starttime"],
            self._cgroups(config).procs_files(name),
            argv,
            guestproc.guest_environment(term),
            mode,
            seccomp.for_guests(),
            timeout,
        )

    # files and names inside the guest

    @contextlib.contextmanager
    def _guest_root(self, name: str, config: dict):
        """The guest's root as the guest sees it, for editing files (caller holds the context's lock).

        A running guest's files are reached through its init's root, so copy-up happens as usual; a
        stopped guest's layers are mounted for the moment (nodev, nosuid), never written underneath."""
        init = self._running(name)
        if init and init["state"] == "running":
            yield f"/proc/{init['pid']}/root/"
            return
        directory = self.state.context_dir(name)
        limited = bool(config.get("disk_bytes"))
        if limited:
            diskimage.ensure_mounted(directory)
        upper, work = diskimage.layers(directory, limited)
        target = str(directory / "rootfs")
        rootfs.mount_overlay(str(directory / "lower"), upper, work, target, libc.MS_NODEV | libc.MS_NOSUID)
        try:
            yield target
        finally:
            libc.umount2(target)

    def set_hostname(self, name: str, hostname: str) -> dict:
        """Rename the guest: its configuration, /etc/hostname and /etc/hosts, and live in its UTS namespace."""
        hostname = check_hostname(hostname)
        self.state.config(name)
        with self.state.locked(name):
            config = self.state.config(name)
            config["hostname"] = hostname
            write_json(self.state.context_dir(name) / "config.json", config)
            with self._guest_root(name, config) as root:
                for path, text in hostname_files(hostname).items():
                    safefile.write_file(root, path, text)
            init = self._running(name)
            if init and init["state"] == "running":
                namespaces.set_hostname_of(init["pid"], hostname)
        return self.status(name)

    def set_root_password(self, name: str, password_hash: str) -> None:
        """Write root's password (a crypt hash) into the guest's /etc/shadow."""
        guestfiles.check_password_hash(password_hash)
        self.state.config(name)
        with self.state.locked(name):
            config = self.state.config(name)
            with self._guest_root(name, config) as root:
                guestfiles.set_root_password(root, password_hash)

    def set_ssh_keys(self, name: str, keys: list[str]) -> None:
        """Replace root's authorized_keys in the guest."""
        keys = guestfiles.check_ssh_keys(keys)
        self.state.config(name)
        with self.state.locked(name):
            config = self.state.config(name)
            with self._guest_root(name, config) as root:
                guestfiles.set_root_ssh_keys(root, keys)

    def set_disk_limit(self, name: str, size: int) -> dict:
        """Change the guest's disk limit: raising works live, lowering needs it stopped."""
        self.state.config(name)  # a clear error before waiting for the lock
        with self.state.locked(name):
            config = self.state.config(name)  # what holds now: it may have changed while we waited
            if not config.get("disk_bytes"):
                raise InvalidState(
                    f"Context {name} was built without a disk limit; its files live on the host's file system. "
                    "Build it with --disk to limit it."
                )
            diskimage.resize(self.state.context_dir(name), size, running=self._running(name) is not None)
            config["disk_bytes"] = size
            write_json(self.state.context_dir(name) / "config.json", config)
        return self.status(name)

    # disk sharing

    def layer_dirs(self, name: str) -> tuple[str, str, str]:
        """(lower, upper, work) of a context."""
        config = self.state.config(name)
        directory = self.state.context_dir(name)
        limited = bool(config.get("disk_bytes"))
        if limited:
            diskimage.ensure_mounted(directory)
        return (str(directory / "lower"), *diskimage.layers(directory, limited))

    def unify(self, names: list[str] | None = None, excludes=unification.DEFAULT_EXCLUDES) -> dict:
        """Share identical files among templates and the named (default: all) stopped contexts."""
        names = sorted(set(names or self.state.context_names()))  # one lock order for everyone
        trees = [str(self.state.template_rootfs(t)) for t in self.state.template_names()]
        private, report_running = [], []
        with contextlib.ExitStack() as stack:
            for name in names:
                self.state.config(name)  # ContextNotFound for a wrong name
                stack.enter_context(self.state.locked(name))  # nobody starts it meanwhile
                if self._running(name):
                    report_running.append(name)
                    continue
                lower, upper, _ = self.layer_dirs(name)
                trees.append(lower)
                private.append((upper, lower))
            result = unification.unify(trees, private, excludes)
            result.skipped_running = report_running
            for name in names:
                if name not in report_running and self.state.config(name).get("disk_bytes"):
                    # Space freed inside the image goes back to the host's file system.
                    subprocess.run(["fstrim", str(self.state.context_dir(name) / diskimage.MOUNT)], capture_output=True)
        return result.as_dict()

    def disk_report(self) -> dict:
        templates = {t: [str(self.state.template_rootfs(t))] for t in self.state.template_names()}
        contexts = {}
        for name in self.state.context_names():
            lower, upper, _ = self.layer_dirs(name)
            contexts[name] = [lower, upper]
        return diskusage.report(templates, contexts)

    # resource limits

    def _io_device(self, name: str, config: dict) -> str | None:
        if config.get("disk_bytes"):
            return diskimage.device(self.state.context_dir(name))
        return resources.io_device_of(self.state.contexts)

    def _apply_limits(self, name: str, config: dict, cg) -> None:
        device = self._io_device(name, config)
        pairs = resources.settings(
            config.get("limits") or {}, cg.version, config["context_id"], resources.host_cpus(), device
        )
        cg.apply(name, pairs)
        if config.get("disk_bytes") and device:
            cg.cap_device_writeback([(f, v) for f, v in pairs if v.startswith(device + " ")])

    def _uncap_device(self, name: str, config: dict, cg) -> None:
        """Clear a guest's root-group caps on its loop device before another guest may get that device."""
        device = config.get("disk_bytes") and diskimage.device(self.state.context_dir(name))
        if device:
            caps = resources.settings({}, cg.version, config["context_id"], resources.host_cpus(), device)
            cg.cap_device_writeback([(f, v) for f, v in caps if v.startswith(device + " ")])

    def set_limits(self, name: str, changes: dict) -> dict:
        """Change limits; a running context gets them at once, without a restart."""
        self.state.config(name)  # a clear error before waiting for the lock
        with self.state.locked(name):
            config = self.state.config(name)  # what holds now: it may have changed while we waited
            limits = resources.validate(
                (config.get("limits") or {}) | {k: v for k, v in changes.items() if v is not None}
            )
            config["limits"] = limits
            if self._running(name):
                self._apply_limits(name, config, self._cgroups(config))
                if "rate_mbit" in changes:
                    if not os.path.exists(os.path.join(network.NETNS_DIR, network.netns_name(name))):
                        raise InvalidState(f"{name} runs without a network: restart it to apply a rate.")
                    self._network(config).set_rate(name, config["context_id"], limits.get("rate_mbit"))
            write_json(self.state.context_dir(name) / "config.json", config)
        return self.status(name)

    def usage(self, name: str, config: dict | None = None) -> dict:
        """CPU, memory and traffic figures; `config` when the caller has just read it."""
        config = config or self.state.config(name)
        running = self._running(name) is not None
        figures = self._cgroups(config).usage(name) if running else {}
        totals = self.state.run_record(name).get("net_totals") or {"net_out_bytes": 0, "net_in_bytes": 0}
        if running and self._wants_network(config):
            current = self._network(config).counters(config["context_id"])
            totals = {k: totals[k] + current[k] for k in totals}
        return {"name": name, "state": "running" if running else "stopped", **figures, **totals}

    # network

    def _release_network(self, name: str, config: dict) -> None:
        """Tear the network down, keeping its byte counters in the run record across restarts."""
        if not self._wants_network(config) and not os.path.exists(
            os.path.join(network.NETNS_DIR, network.netns_name(name))
        ):
            return
        final = self._network(config).teardown(name, config["context_id"], config["addresses"])
        run = self.state.run_record(name)
        totals = run.get("net_totals") or {"net_out_bytes": 0, "net_in_bytes": 0}
        run["net_totals"] = {k: totals[k] + final[k] for k in totals}
        self.state.write_run_record(name, run)

    def _check_addresses_free(self, addresses: list[str], except_name: str | None = None) -> None:
        for other in self.state.context_names():
            if other == except_name:
                continue
            taken = set(addresses) & set(self.state.config(other)["addresses"])
            if taken:
                raise InvalidSpec(f"{', '.join(sorted(taken))} already belongs to context {other} on this host.")

    def change_address(self, name: str, address: str, add: bool) -> dict:
        """Add or remove one address; a running guest gets the change at once."""
        (address,) = network.parse_addresses([address])
        self.state.config(name)
        with self.state.host_locked(), self.state.locked(name):
            config = self.state.config(name)
            addresses = list(config["addresses"])
            if add:
                if address in addresses:
                    raise InvalidSpec(f"{name} has {address} already.")
                self._check_addresses_free([address], except_name=name)
                addresses.append(address)
            else:
                if address not in addresses:
                    raise InvalidSpec(f"{name} does not have {address}.")
                addresses.remove(address)
            running = self._running(name) is not None
            had_network = os.path.exists(os.path.join(network.NETNS_DIR, network.netns_name(name)))
            if running and not had_network:
                raise InvalidState(f"{name} was started without a network: restart it to give it addresses.")
            if running:
                self._network(config).change_address(
                    name, config["context_id"], address, add, addresses, config.get("host_ports") or []
                )
            config["addresses"] = addresses
            write_json(self.state.context_dir(name) / "config.json", config)
        return self.status(name)

    def set_host_ports(self, name: str, ports) -> dict:
        """Set the ports of the host itself ("tcp/53", ...) the guest may reach; a running guest's
        filter is rewritten at once. Always rewritten, so a redelivered operation also repairs drift."""
        ports = check_host_ports(ports)
        self.state.config(name)  # a clear error before waiting for the lock
        with self.state.locked(name):
            config = self.state.config(name)
            # Without a network the guest has an empty namespace of its own: nothing to rewrite.
            if self._running(name) and os.path.exists(os.path.join(network.NETNS_DIR, network.netns_name(name))):
                self._network(config).set_filter(config["context_id"], config["addresses"], ports)
            config["host_ports"] = ports
            write_json(self.state.context_dir(name) / "config.json", config)
        return self.status(name)
