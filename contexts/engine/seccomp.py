"""The system call filter every guest process runs under: what a guest is denied, compiled to BPF.

Built with libseccomp through ctypes (as BenchExec does): libseccomp knows every architecture's
system call numbers and the x32/i386 traps, and the C library is on every Debian system (apt needs
it). The Python bindings on PyPI are unmaintained or third-party repackagings, and Debian's own
(python3-seccomp) serves only the system Python. The program is compiled on the host side once per
start or entry and handed over as bytes; the process that installs it needs only `prctl`.

A deny list (LXC's way, extended from Docker's default profile), not an allow list: a guest is a
whole Linux system that runs whatever its owner installs, and what it must not reach is a short,
known list. Each entry says why; SECURITY.md in this directory compares it with Docker's and LXC's.
The filter is installed without `no_new_privs`, so setuid programs (su, passwd, sudo) keep working:
that needs CAP_SYS_ADMIN at install time, which the installing process still holds.
"""

import ctypes
import errno
import functools
import os
import termios

from . import libc
from .errors import HostUnsupported

# An error number per denied call. EPERM where the kernel itself would answer so to an unprivileged
# caller; ENOSYS where software commonly falls back when the call is missing (keyrings, io_uring,
# the new mount API, clone3), so it behaves as on a kernel built without the feature.
EPERM, ENOSYS = errno.EPERM, errno.ENOSYS
DENIED: dict[str, tuple[int, str]] = {
    # Reaching the host's kernel itself.
    "kexec_load": (EPERM, "loads a new kernel to boot: CAP_SYS_BOOT, which guests keep for reboot(2), allows it"),
    "kexec_file_load": (EPERM, "as kexec_load"),
    "init_module": (EPERM, "loads kernel code"),
    "finit_module": (EPERM, "loads kernel code"),
    "delete_module": (EPERM, "unloads kernel code"),
    "create_module": (EPERM, "obsolete module call"),
    "get_kernel_syms": (EPERM, "obsolete module call"),
    "query_module": (EPERM, "obsolete module call"),
    "bpf": (EPERM, "kernel programs and maps; a frequent source of kernel exploits"),
    "perf_event_open": (EPERM, "kernel profiling: leaks kernel addresses and host-wide activity"),
    "lookup_dcookie": (EPERM, "profiling helper that names host paths"),
    "iopl": (EPERM, "raw hardware port access"),
    "ioperm": (EPERM, "raw hardware port access"),
    "uselib": (EPERM, "obsolete a.out loader with a history of bugs"),
    "nfsservctl": (EPERM, "obsolete NFS server control"),
    "vm86": (EPERM, "i386 virtual-8086 mode"),
    "vm86old": (EPERM, "i386 virtual-8086 mode"),
    # Host files outside the guest's tree.
    "open_by_handle_at": (EPERM, "opens any file of a file system by handle, bypassing the guest's root"),
    # Keyrings are per user, not per namespace: guest root would share host root's.
    "keyctl": (ENOSYS, "the kernel keyrings are shared with host root"),
    "add_key": (ENOSYS, "the kernel keyrings are shared with host root"),
    "request_key": (ENOSYS, "the kernel keyrings are shared with host root"),
    # Interfaces with a record of privilege escalations.
    "userfaultfd": (EPERM, "lets a caller stall the kernel mid-copy, a building block of kernel exploits"),
    "io_uring_setup": (ENOSYS, "io_uring: a large attack surface, bypasses this filter for the calls it queues"),
    "io_uring_enter": (ENOSYS, "io_uring"),
    "io_uring_register": (ENOSYS, "io_uring"),
    # Mounting, by the new mount API; mount(2) itself fails without CAP_SYS_ADMIN.
    "fsopen": (ENOSYS, "new mount API: libmount falls back to mount(2), which guests cannot use"),
    "fsconfig": (ENOSYS, "new mount API"),
    "fsmount": (ENOSYS, "new mount API"),
    "fspick": (ENOSYS, "new mount API"),
    "open_tree": (ENOSYS, "new mount API"),
    "move_mount": (ENOSYS, "new mount API"),
    "mount_setattr": (ENOSYS, "new mount API"),
    # Host-wide state.
    "swapon": (EPERM, "host swap"),
    "swapoff": (EPERM, "host swap"),
    "acct": (EPERM, "process accounting to a file, host-wide"),
    "quotactl": (EPERM, "disk quotas of host file systems"),
    "quotactl_fd": (EPERM, "disk quotas of host file systems"),
    "syslog": (EPERM, "the host's kernel log"),
    "ustat": (EPERM, "obsolete; statistics of host file systems"),
    "sysfs": (EPERM, "obsolete file system type query"),
    "_sysctl": (EPERM, "obsolete binary sysctl, bypasses the read-only /proc/sys"),
    # clone3 passes its flags in memory the filter cannot read: without it glibc falls back to
    # clone(2), whose flags the filter checks.
    "clone3": (ENOSYS, "its flags cannot be checked (see clone and unshare below)"),
}
CLONE_NEWUSER = 0x10000000
TIOCSTI, TIOCLINUX = termios.TIOCSTI, getattr(termios, "TIOCLINUX", 0x541C)
# clone's flags are its first argument, except on s390x (the stack comes first there).
CLONE_FLAGS_ARG = 1 if os.uname().machine.startswith("s390") else 0
# Calls of old or other architectures: absent from some, and harmless to skip where absent.
MAY_BE_ABSENT = frozenset(
    {"create_module", "get_kernel_syms", "query_module", "uselib", "nfsservctl", "vm86", "vm86old", "ustat",
     "sysfs", "_sysctl", "iopl", "ioperm", "lookup_dcookie"}
)  # fmt: skip
# Calls denied only with some arguments: (name, argument index, mask, value, errno, why); denied when
# (argument & mask) == value. ioctl's request is an int: only its low 32 bits count.
DENIED_WHEN = (
    (
        "clone",
        CLONE_FLAGS_ARG,
        CLONE_NEWUSER,
        CLONE_NEWUSER,
        EPERM,
        "a user namespace would let guest root rewrite its limits",
    ),
    ("unshare", 0, CLONE_NEWUSER, CLONE_NEWUSER, EPERM, "as clone"),
    ("ioctl", 1, 0xFFFFFFFF, TIOCSTI, EPERM, "types into a terminal: a guest must never type into anyone's"),
    ("ioctl", 1, 0xFFFFFFFF, TIOCLINUX, EPERM, "the same through a virtual console"),
)

_ACT_ALLOW = 0x7FFF0000
_ACT_KILL_PROCESS = 0x80000000
_FLTATR_ACT_BADARCH = 2
_FLTATR_CTL_NNP = 3
_CMP_MASKED_EQ = 7
# seccomp(2) constants (linux/seccomp.h) and prctl(2)'s
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_PR_SET_DUMPABLE = 4
UNSAFE_OVERRIDE = "CONTEXTS_UNSAFE_NO_SECCOMP"


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


@functools.cache  # asked for by the support check and the compiler, on every start and entry
def _library():
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


def _errno_action(number: int) -> int:
    return 0x00050000 | (number & 0xFFFF)


def unsafe_override() -> bool:
    """Staff's explicit, documented choice to run guests without a filter on a host that cannot."""
    return os.environ.get(UNSAFE_OVERRIDE) == "1"


def support_problem() -> str | None:
    """None when this host can filter guests' system calls, else what is missing and how to fix it."""
    try:
        with open("/proc/self/status") as f:
            if not any(line.startswith("Seccomp:") for line in f):
                return "This kernel has no seccomp: use a kernel built with CONFIG_SECCOMP_FILTER."
        with open("/proc/sys/kernel/seccomp/actions_avail") as f:
            actions = set(f.read().split())
    except FileNotFoundError:
        return "This kernel has no seccomp filters: use a kernel built with CONFIG_SECCOMP_FILTER."
    if not {"errno", "kill_process"} <= actions:
        return "This kernel's seccomp lacks the errno or kill_process action: use Linux 4.14 or later."
    try:
        _library()
    except OSError:
        return "libseccomp is missing: apt-get install libseccomp2."
    return None


def compile_filter() -> bytes:
    """The guests' filter as a BPF program for this machine's architecture. Another architecture's
    calling convention (i386's int 0x80, x32 on x86-64) kills the process: answering its exit with an
    error would leave it running in an undefined state."""
    lib = _library()
    ctx = lib.seccomp_init(_ACT_ALLOW)
    if not ctx:
        raise OSError(errno.ENOMEM, "seccomp_init failed")
    try:
        _check(lib.seccomp_attr_set(ctx, _FLTATR_ACT_BADARCH, _ACT_KILL_PROCESS), "seccomp_attr_set(badarch)")
        _check(lib.seccomp_attr_set(ctx, _FLTATR_CTL_NNP, 0), "seccomp_attr_set(nnp)")
        for name, (number, _) in DENIED.items():
            call = _resolve(lib, name)
            if call is not None:
                _check(lib.seccomp_rule_add_array(ctx, _errno_action(number), call, 0, None), f"rule {name}")
        for name, arg, mask, value, number, _ in DENIED_WHEN:
            call = _resolve(lib, name)
            compare = (_ArgCmp * 1)(_ArgCmp(arg, _CMP_MASKED_EQ, mask, value))
            _check(lib.seccomp_rule_add_array(ctx, _errno_action(number), call, 1, compare), f"rule {name}")
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            _check(lib.seccomp_export_bpf(ctx, fd), "seccomp_export_bpf")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)


def _resolve(lib, name: str) -> int | None:
    """The call's number here; None for an old call this architecture lacks. A library too old to
    know a call we must deny is refused: the filter would silently let it through."""
    call = lib.seccomp_syscall_resolve_name(name.encode())
    if call >= 0:
        return call
    if name in MAY_BE_ABSENT:
        return None
    raise HostUnsupported(f"This libseccomp does not know the system call {name}: upgrade libseccomp2 (2.5 or later).")


def _check(result: int, what: str) -> None:
    if result < 0:
        raise OSError(-result, f"libseccomp {what}: {os.strerror(-result)}")


def install(program: bytes) -> None:
    """Put this process (and everything it execs and forks) under `program`. Needs CAP_SYS_ADMIN,
    since it is installed without no_new_privs; ctypes only, for the start path."""
    if len(program) % 8:
        raise ValueError("a BPF program is a whole number of 8-byte instructions")
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _Fprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(fprog))


def for_guests() -> bytes | None:
    """The program to install on guests, or None under the staff's override on a host that cannot
    filter. A host that cannot filter otherwise refuses to start guests."""
    if unsafe_override():
        return None
    problem = support_problem()
    if problem:
        raise HostUnsupported(
            f"Guests are not started without their system call filter. {problem} "
            f"(`contexts check` lists it; {UNSAFE_OVERRIDE}=1 starts them unfiltered, UNSAFE.)"
        )
    return compile_filter()
