"""The capabilities a guest keeps: what Linux-VServer left its guests, nothing that reaches the host."""

from . import libc

# linux/capability.h numbers
CAP_NUMBERS = {
    "CHOWN": 0,
    "DAC_OVERRIDE": 1,
    "DAC_READ_SEARCH": 2,
    "FOWNER": 3,
    "FSETID": 4,
    "KILL": 5,
    "SETGID": 6,
    "SETUID": 7,
    "SETPCAP": 8,
    "LINUX_IMMUTABLE": 9,
    "NET_BIND_SERVICE": 10,
    "NET_BROADCAST": 11,
    "NET_ADMIN": 12,
    "NET_RAW": 13,
    "IPC_LOCK": 14,
    "IPC_OWNER": 15,
    "SYS_MODULE": 16,
    "SYS_RAWIO": 17,
    "SYS_CHROOT": 18,
    "SYS_PTRACE": 19,
    "SYS_PACCT": 20,
    "SYS_ADMIN": 21,
    "SYS_BOOT": 22,
    "SYS_NICE": 23,
    "SYS_RESOURCE": 24,
    "SYS_TIME": 25,
    "SYS_TTY_CONFIG": 26,
    "MKNOD": 27,
    "LEASE": 28,
    "AUDIT_WRITE": 29,
    "AUDIT_CONTROL": 30,
    "SETFCAP": 31,
    "MAC_OVERRIDE": 32,
    "MAC_ADMIN": 33,
    "SYSLOG": 34,
    "WAKE_ALARM": 35,
    "BLOCK_SUSPEND": 36,
    "AUDIT_READ": 37,
    "PERFMON": 38,
    "BPF": 39,
    "CHECKPOINT_RESTORE": 40,
}

# SYS_BOOT stays: inside a PID namespace reboot(2) only ends that namespace's init, which is how a
# guest's `reboot` and `halt` reach us. SETPCAP is left out: nothing a guest runs needs to change
# other processes' capabilities, and without it the bounding set cannot be widened back.
# DAC_READ_SEARCH is left out too, though Linux-VServer kept it: without user namespaces it allows
# open_by_handle_at on any host file system the guest holds a descriptor of (the "Shocker" escape),
# and DAC_OVERRIDE already gives guest root every permission check it needs.
# SYS_PTRACE is left out as well, though Linux-VServer kept it: it is what lets a tracer attach to a
# non-dumpable process, and the host's helpers that enter a guest are non-dumpable for exactly that
# reason. Without it a guest's root still debugs its own processes (strace, gdb): tracing a process
# of the same user with no more capabilities than the tracer needs no capability.
GUEST_CAPABILITIES = frozenset(
    {
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "NET_BIND_SERVICE",
        "SYS_CHROOT",
        "SYS_TTY_CONFIG",
        "LEASE",
        "SETFCAP",
        "AUDIT_WRITE",
        "SYS_BOOT",
    }
)


def last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def to_drop(keep=GUEST_CAPABILITIES, last: int | None = None) -> list[int]:
    """Numbers of every capability the kernel knows that is not kept."""
    kept = {CAP_NUMBERS[name] for name in keep}
    return [n for n in range(0, (last_cap() if last is None else last) + 1) if n not in kept]


def drop_for_guest(numbers: list[int] | None = None) -> None:
    """Shrink this process's bounding set to the guest's and clear its ambient set.

    Root's capabilities after the next exec are its inheritable set plus the bounding set, so with
    the inheritable set empty the guest's programs, setuid ones included, never hold more than
    GUEST_CAPABILITIES.
    """
    for number in to_drop() if numbers is None else numbers:  # numbers: read before entering a guest
        libc.prctl(libc.PR_CAPBSET_DROP, number)
    libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_CLEAR_ALL)
    libc.set_capabilities(None)  # root gains inheritable ∪ bounding at exec: keep it empty


def become_guest_now() -> None:
    """Hold only the guest's capabilities from now on, not only from the next exec: for a process
    about to fork into a guest's PID namespace (after `drop_for_guest`)."""
    libc.set_capabilities(sum(1 << CAP_NUMBERS[name] for name in GUEST_CAPABILITIES))


def bounding_set_of(pid: int | str = "self") -> set[str]:
    """Capability names in a process's bounding set, read from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                mask = int(line.split()[1], 16)
                return {name for name, n in CAP_NUMBERS.items() if mask >> n & 1}
    return set()
