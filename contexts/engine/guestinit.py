"""What runs as PID 1 of a new context until it becomes the guest's init, and what runs after it ends.

Started by the context's supervisor, a shell that stays behind as `unshare --pid --fork`'s parent:

    unshare --pid --fork -- python -m contexts.engine.guestinit STATE NAME RUN
    exec python -m contexts.engine.guestinit --exited STATUS STATE NAME RUN

The first sets up the namespaces, cgroup and file system and execs the guest's init; no Python stays
resident. When init ends, `unshare` exits the way init did (SIGHUP for a guest reboot, SIGINT for a
halt), and the second records that and restarts the context after a reboot.
"""

import json
import os
import socket
import sys
import time
from pathlib import Path

from . import cgroups, libc, rootfs, safefile
from .namespaces import (
    GUEST_NAMESPACES,
    allow_unprivileged_ping,
    become_guest_process,
    bring_up_loopback,
    guest_environment,
)
from .procinfo import read_stat
from .state import StateDir


def hosts_file(hostname: str) -> str:
    short = hostname.split(".")[0]
    names = hostname if short == hostname else f"{hostname} {short}"
    return f"127.0.0.1\tlocalhost\n127.0.1.1\t{names}\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def write_init_record(dir_fd: int, record: dict) -> None:
    """init.json in the context directory, written through a descriptor that stays valid after pivot_root."""
    tmp = f".init.json.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    with os.fdopen(fd, "w") as f:
        json.dump(record, f)
    os.rename(tmp, "init.json", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def become_context(state: StateDir, name: str, run_id: str) -> None:
    config = state.config(name)
    directory = state.context_dir(name)
    dir_fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    host_pid = int(os.readlink("/proc/self"))  # /proc is still the host's: this is our host pid
    record = {"run_id": run_id, "pid": host_pid, "starttime": read_stat(host_pid)[1], "state": "starting"}
    write_init_record(dir_fd, record)
    try:
        cg = cgroups.detect(config["cgroup_parent"])
        for path in cg.procs_files(name):
            with open(path, "w") as f:
                f.write("0")
        libc.unshare(GUEST_NAMESPACES)
        bring_up_loopback()
        allow_unprivileged_ping()
        socket.sethostname(config["hostname"])

        root = str(directory / "rootfs")
        rootfs.make_private()
        rootfs.mount_overlay(
            str(state.template_rootfs(config["template"])), str(directory / "upper"), str(directory / "work"), root
        )
        safefile.write_file(root, "etc/hostname", config["hostname"] + "\n")
        safefile.write_file(root, "etc/hosts", hosts_file(config["hostname"]))
        rootfs.mount_dev(root)
        rootfs.mount_proc(root)
        rootfs.mount_sys(root)
        rootfs.pivot_into(root)

        console = os.open("/dev/console", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(console, fd)
        write_init_record(dir_fd, record | {"state": "running", "started": time.time()})
        become_guest_process()  # closes dir_fd and everything else from the host
        init = config["init"]
        os.execve(init[0], init, guest_environment("linux"))
    except BaseException as exc:
        try:
            write_init_record(dir_fd, record | {"state": "failed", "error": str(exc)})
        except OSError:
            pass
        print(f"contexts: starting {name} failed: {exc}", file=sys.stderr, flush=True)
        os._exit(1)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--exited"]:
        status, state_dir, name, run_id = argv[1:5]
        from .lifecycle import Lifecycle  # only needed after the guest has ended

        Lifecycle(StateDir(Path(state_dir))).after_exit(name, run_id, int(status))
        return
    state_dir, name, run_id = argv[:3]
    become_context(StateDir(Path(state_dir)), name, run_id)


if __name__ == "__main__":
    main(sys.argv[1:])
