"""What runs as PID 1 of a new context until it becomes the guest's init, and what runs after it ends.

Started by the context's supervisor, a shell that stays behind as `unshare --pid --fork`'s parent:

    unshare --pid --fork -- python -m contexts.engine.guestinit STATE NAME RUN
    exec python -m contexts.engine.guestinit --exited STATUS STATE NAME RUN

The first sets up the namespaces, cgroup and file system and execs the guest's init; no Python stays
resident. When init ends, `unshare` exits the way init did (SIGHUP for a guest reboot, SIGINT for a
halt), and the second records that and restarts the context after a reboot.

The start path imports nothing beyond what Python loads anyway plus ctypes: everything it needs was
prepared by `start` in the context's `boot` file (marshal, which needs no import).
"""

import marshal
import os
import sys

from . import libc, rootfs, safefile
from .guestproc import GUEST_NAMESPACES, allow_unprivileged_ping, become_guest_process, bring_up_loopback
from .procinfo import read_stat
from .seccomp import install as install_filter


def json_string(text: str) -> str:
    """`text` as a JSON string, by hand: json is not imported on the start path (a tenth of its
    time), and after pivot_root no import may ever happen (it would load the guest's files)."""
    escaped = "".join(c if " " <= c and c not in '"\\' and c != "\x7f" else f"\\u{ord(c):04x}" for c in text)
    return f'"{escaped}"'


def write_init_record(dir_fd: int, run_id: str, pid: int, starttime: int, state: str, error: str = "") -> None:
    """init.json, through a descriptor of the context directory that stays valid after pivot_root."""
    extra = f', "error": {json_string(error)}' if error else ""
    text = f'{{"run_id": "{run_id}", "pid": {pid}, "starttime": {starttime}, "state": "{state}"{extra}}}'
    tmp = f".init.json.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.rename(tmp, "init.json", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def become_context(directory: str, run_id: str) -> None:
    # Everything this process needs is imported. Once the guest's root is ours, an import would run
    # the guest's files (a planted json.py) as a fully privileged process: make any import fail.
    sys.path.clear()
    os.umask(0o022)  # not the starter's: the guest's files get the usual modes
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("0")  # not the host agent's (which a unit file may make unkillable)
    dir_fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    host_pid = int(os.readlink("/proc/self"))  # /proc is still the host's: this is our host pid
    starttime = read_stat(host_pid)[1]
    write_init_record(dir_fd, run_id, host_pid, starttime, "starting")
    try:
        with open(os.path.join(directory, "boot"), "rb") as f:
            boot = marshal.load(f)
        if boot["run_id"] != run_id:
            raise RuntimeError("the boot record belongs to another start")
        libc.join_new_session_keyring()  # not the keys of whoever started the context
        for path in boot["procs_files"]:
            with open(path, "w") as f:
                f.write("0")
        if boot["netns"]:  # prepared by the host with the guest's veth and addresses
            fd = os.open(boot["netns"], os.O_RDONLY | os.O_CLOEXEC)
            libc.setns(fd, libc.CLONE_NEWNET)
            os.close(fd)
            libc.unshare(GUEST_NAMESPACES & ~libc.CLONE_NEWNET)
        else:
            libc.unshare(GUEST_NAMESPACES)
        bring_up_loopback()
        allow_unprivileged_ping()
        libc.sethostname(boot["hostname"])

        root = boot["target"]
        rootfs.make_private()
        # nodev: a device node anywhere in the guest's tree is inert (its /dev is a tmpfs of our making).
        rootfs.mount_overlay(boot["lower"], boot["upper"], boot["work"], root, libc.MS_NODEV)
        for path, text in boot["files"].items():
            safefile.write_file(root, path, text)
        rootfs.mount_dev(root)
        rootfs.mount_proc(root)
        rootfs.mount_sys(root)
        if boot["lxcfs"]:
            rootfs.mount_lxcfs(root, boot["lxcfs"])
        rootfs.pivot_into(root)

        init = boot["init"]
        if not os.access(init[0], os.X_OK):
            raise RuntimeError(f"{init[0]} is not an executable program in the guest")
        console = os.open("/dev/console", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(console, fd)
        write_init_record(dir_fd, run_id, host_pid, starttime, "running")
        # dir_fd stays for a failure record below; it is close-on-exec, so init never holds it.
        become_guest_process(keep_fds=(0, 1, 2, dir_fd))
        if boot["seccomp"]:  # the last step: it needs CAP_SYS_ADMIN, which exec then drops
            install_filter(boot["seccomp"])
        os.execve(init[0], init, boot["environment"])
    except BaseException as exc:
        try:
            write_init_record(dir_fd, run_id, host_pid, starttime, "failed", str(exc) or type(exc).__name__)
        except OSError:
            pass
        print(f"contexts: starting failed: {exc}", file=sys.stderr, flush=True)
        os._exit(1)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--exited"]:
        status, state_dir, name, run_id = argv[1:5]
        from pathlib import Path

        from .lifecycle import Lifecycle
        from .state import StateDir

        Lifecycle(StateDir(Path(state_dir))).after_exit(name, run_id, int(status))
        return
    state_dir, name, run_id = argv[:3]
    become_context(os.path.join(state_dir, "contexts", name), run_id)


if __name__ == "__main__":
    main(sys.argv[1:])
