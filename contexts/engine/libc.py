"""The few Linux system calls Python 3.11 lacks, through ctypes. Each raises OSError naming the call."""

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)

# Namespace flags (linux/sched.h)
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags (linux/mount.h)
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MNT_DETACH = 2

# prctl(2) options (linux/prctl.h)
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

# glibc has no pivot_root wrapper; the system call number depends on the architecture.
SYS_pivot_root = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}.get(
    os.uname().machine, 155
)
# Nor a keyctl one (that is libkeyutils', not always installed).
SYS_keyctl = {"x86_64": 250, "aarch64": 219, "riscv64": 219, "ppc64le": 271, "s390x": 280}.get(os.uname().machine, 250)
KEYCTL_JOIN_SESSION_KEYRING = 1


def _check(result: int, call: str, *args) -> int:
    if result == -1:
        errno = ctypes.get_errno()
        detail = ", ".join(str(a) for a in args)
        raise OSError(errno, f"{call}({detail}): {os.strerror(errno)}")
    return result


def _bytes(path) -> bytes | None:
    return None if path is None else os.fsencode(path)


_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long


def mount(source, target, fstype=None, flags: int = 0, data: str | None = None) -> None:
    _check(
        _libc.mount(_bytes(source), _bytes(target), _bytes(fstype), flags, _bytes(data)),
        "mount",
        source,
        target,
        fstype,
        hex(flags),
        data,
    )


def umount2(target, flags: int = 0) -> None:
    _check(_libc.umount2(_bytes(target), flags), "umount2", target, flags)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare", hex(flags))


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns", fd, hex(nstype))


def pivot_root(new_root, put_old) -> None:
    _check(_libc.syscall(SYS_pivot_root, _bytes(new_root), _bytes(put_old)), "pivot_root", new_root, put_old)


def join_new_session_keyring() -> None:
    """Leave the caller's session keyring for a new, empty, anonymous one (so nothing started from
    here inherits the keys of whoever started it)."""
    _check(_libc.syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, None), "keyctl", "JOIN_SESSION_KEYRING")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname", name)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), "prctl", option, arg2)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def set_capabilities(mask: int | None) -> None:
    """Empty the inheritable set and, given a mask, make the permitted and effective sets exactly it
    (None keeps them). capget, then capset."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.capget(ctypes.byref(header), data), "capget")
    for i, half in enumerate(data):
        half.inheritable = 0
        if mask is not None:
            half.permitted = half.effective = (mask >> (32 * i)) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(header), data), "capset")
