"""Turning the current process into a guest process: its network basics, signals, environment,
capabilities and descriptors. Used on the start path, so it imports only what Python loads for free
(no enum, re or json): every millisecond here is a millisecond of every context start."""

import _signal
import _socket
import fcntl
import os
import struct

from . import capabilities, libc

GUEST_NAMESPACES = libc.CLONE_NEWNS | libc.CLONE_NEWUTS | libc.CLONE_NEWIPC | libc.CLONE_NEWNET | libc.CLONE_NEWCGROUP
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def bring_up_loopback() -> None:
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | _IFF_UP))
    finally:
        s.close()


def allow_unprivileged_ping() -> None:
    """ICMP echo sockets for every group in this network namespace, so ping needs no NET_RAW."""
    fd = os.open("/proc/sys/net/ipv4/ping_group_range", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, b"0 2147483647")
    finally:
        os.close(fd)


def reset_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ; exec keeps ignored signals ignored, so restore defaults."""
    for number in range(1, _signal.NSIG):
        try:
            _signal.signal(number, _signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # SIGKILL, SIGSTOP and the real-time signals libc reserves
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])


def guest_environment(term: str | None = None) -> dict[str, str]:
    """All a process started in a guest by the host gets: nothing of the caller's environment.
    `container=` is how init systems (systemd) and tools learn they run in a container."""
    env = {"PATH": GUEST_PATH, "HOME": "/root", "container": "contexts"}
    if term:
        env["TERM"] = term
    return env


def become_guest_process(keep_fds=(0, 1, 2), drop_capabilities: bool = True) -> None:
    """Last steps before exec in a guest: guest capabilities, no host groups or descriptors.
    (`drop_capabilities=False` where the caller dropped them already, before entering the guest.)"""
    if drop_capabilities:
        os.setgroups([])
        capabilities.drop_for_guest()
    reset_signals()
    # Every descriptor but those kept, without asking /proc (it may be the guest's by now).
    # (Never an empty range: Python 3.11 passes closerange(n, n) to close_range(n, n - 1), which
    # the kernel takes as "from n to the highest descriptor".)
    low = 0
    for fd in sorted(set(keep_fds)) + [os.sysconf("SC_OPEN_MAX")]:
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
