"""Small acts on a running context's namespaces from the host: waiting for a helper, renaming."""

import os
import sys

from . import libc


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
