"""Entering a running context: join its namespaces, then its cgroup, with the guest's capabilities."""

import os
import signal
import sys
import time

from . import capabilities, libc

# The mount namespace comes last: after it the host's /proc and cgroup files are out of sight. The
# cgroup namespace is not joined: the process is moved into the guest's cgroup from outside (see
# _child), which hosts that delegate by cgroup namespace (nsdelegate) only allow from out there.
JOIN_ORDER = ("ipc", "uts", "net", "pid", "mnt")


def fork_inside(init_pid: int, procs_files: list[str], run) -> int:
    """Start `run()` (which must exec) in a new process inside the context of `init_pid` and return the
    pid to wait for. `run` is called once the namespaces and then the cgroup are joined; it calls
    `become_guest_process` before it execs."""
    ns_fds, cgroup_fds = [], []
    try:
        for ns in JOIN_ORDER:
            ns_fds.append(os.open(f"/proc/{init_pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC))
        for path in procs_files:
            cgroup_fds.append(os.open(path, os.O_WRONLY | os.O_CLOEXEC))
        child = os.fork()
        if child == 0:
            _child(ns_fds, cgroup_fds, run)
    finally:
        for fd in ns_fds + cgroup_fds:
            os.close(fd)
    return child


def spawn_inside(init_pid: int, procs_files: list[str], run, timeout: float | None = None) -> int | None:
    """fork_inside, then wait: the exit status, 128+N when killed by signal N; None if it ran past
    `timeout` (it is then killed: what it started inside dies with the guest's cgroup)."""
    child = fork_inside(init_pid, procs_files, run)
    if timeout is None:
        return wait_status(child)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid:
            return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        time.sleep(0.01)
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    return None


def _child(ns_fds, cgroup_fds, run) -> None:
    try:
        for fd in ns_fds:
            libc.setns(fd, 0)
        # Unprivileged before anything enters the guest's PID namespace: its root holds SYS_PTRACE
        # and could otherwise take over a fully privileged process there.
        os.setgroups([])
        capabilities.become_unprivileged_now()
        go_read, go_write = os.pipe()
        grandchild = os.fork()  # only children enter the joined PID namespace
        if grandchild == 0:
            try:
                os.close(go_write)
                os.read(go_read, 1)  # wait until it has been moved into the guest's cgroup
                os.close(go_read)
                for fd in ns_fds + cgroup_fds:
                    os.close(fd)
                os.chdir("/")
                run()
            except BaseException as exc:  # the child must never return into the caller's code
                print(f"contexts: {exc}", file=sys.stderr, flush=True)
            os._exit(126)
        # The cgroup is joined last, and from out here: moving a process in is never refused by
        # pids.max (forking would be), and the move is made from the host's cgroup namespace.
        os.close(go_read)
        for fd in cgroup_fds:
            os.write(fd, str(grandchild).encode())
        os.write(go_write, b"1")
        os.close(go_write)
        for fd in ns_fds + cgroup_fds:
            os.close(fd)
        for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP):  # the terminal's signals are the guest's
            signal.signal(sig, signal.SIG_IGN)
        os._exit(wait_status(grandchild))
    except BaseException as exc:
        print(f"contexts: {exc}", file=sys.stderr, flush=True)
        os._exit(126)


def wait_status(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def set_hostname_of(init_pid: int, hostname: str) -> None:
    """Set the hostname in the UTS namespace of `init_pid`. A child joins that namespace alone (the
    guest has no CAP_SYS_ADMIN to do it itself, and no other namespace is shared with it)."""
    fd = os.open(f"/proc/{init_pid}/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        child = os.fork()
        if child == 0:
            try:
                libc.setns(fd, libc.CLONE_NEWUTS)
                libc.sethostname(hostname)
                os._exit(0)
            except BaseException as exc:
                print(f"contexts: {exc}", file=sys.stderr, flush=True)
                os._exit(1)
    finally:
        os.close(fd)
    if wait_status(child) != 0:
        raise OSError(f"could not set the hostname of the context of pid {init_pid}")
