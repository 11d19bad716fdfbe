"""Entering a running context: join its namespaces, then its cgroup, with the guest's capabilities."""

import os
import signal
import sys

from . import libc

# The mount namespace comes last: after it the host's /proc and cgroup files are out of sight.
JOIN_ORDER = ("cgroup", "ipc", "uts", "net", "pid", "mnt")


def fork_inside(init_pid: int, procs_files: list[str], run) -> int:
    """Start `run()` (which must exec) in a new process inside the context of `init_pid` and return the
    pid to wait for. `run` is called once the namespaces and then the cgroup are joined; it calls
    `become_guest_process` before it execs."""
    ns_fds = [os.open(f"/proc/{init_pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC) for ns in JOIN_ORDER]
    cgroup_fds = [os.open(path, os.O_WRONLY | os.O_CLOEXEC) for path in procs_files]
    try:
        child = os.fork()
        if child == 0:
            _child(ns_fds, cgroup_fds, run)
    finally:
        for fd in ns_fds + cgroup_fds:
            os.close(fd)
    return child


def spawn_inside(init_pid: int, procs_files: list[str], run) -> int:
    """fork_inside, then wait: the exit status, 128+N when killed by signal N."""
    return wait_status(fork_inside(init_pid, procs_files, run))


def _child(ns_fds, cgroup_fds, run) -> None:
    try:
        for fd in ns_fds:
            libc.setns(fd, 0)
        grandchild = os.fork()  # only children enter the joined PID namespace
        if grandchild == 0:
            try:
                # The cgroup is joined last: moving in is never refused by pids.max, forking would be.
                for fd in cgroup_fds:
                    os.write(fd, b"0")
                for fd in ns_fds + cgroup_fds:
                    os.close(fd)
                os.chdir("/")
                run()
            except BaseException as exc:  # the child must never return into the caller's code
                print(f"contexts: {exc}", file=sys.stderr, flush=True)
            os._exit(126)
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
