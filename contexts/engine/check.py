"""`python -m contexts check`: what this host supports for contexts, and how to fix what is missing."""

import ipaddress
import os
import shutil
import socket
import textwrap
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from . import cgroups, network, seccomp

LEGACY_TIOCSTI = "/proc/sys/dev/tty/legacy_tiocsti"
KEXEC_LOAD_DISABLED = "/proc/sys/kernel/kexec_load_disabled"
# cgroup v1 controllers a kernel may offer: a v1 hierarchy is known by the controllers (and name=)
# it was mounted with, so the same hierarchy mounted twice is listed once.
V1_CONTROLLER_NAMES = frozenset(
    {
        "blkio",
        "cpu",
        "cpuacct",
        "cpuset",
        "debug",
        "devices",
        "freezer",
        "hugetlb",
        "memory",
        "misc",
        "net_cls",
        "net_prio",
        "perf_event",
        "pids",
        "rdma",
    }
)
BROKER_SCHEMES = ("redis", "rediss")
BROKER_TIMEOUT = 2.0


def _kernel_filesystems() -> set[str]:
    with open("/proc/filesystems") as f:
        return {line.split()[-1] for line in f if line.strip()}


def has_overlayfs() -> bool:
    return "overlay" in _kernel_filesystems()


def cgroup_layout(mounts_text: str) -> tuple[str, list[str]]:
    """("v2" | "v1" | "hybrid" | "none", every cgroup hierarchy mounted) from the text of /proc/mounts.

    Hybrid is v1 controllers beside a cgroup2 mount and/or named v1 hierarchies (name=systemd):
    each is a tree a guest's processes belong to, so each is listed once however often it is
    mounted, with its mount point where that is not the usual /sys/fs/cgroup/<name>."""
    controllers: dict[str, str] = {}  # "cpu+cpuacct" -> first mount point
    named: dict[str, str] = {}  # "name=systemd" -> first mount point
    unified = None
    for m in cgroups.parse_mounts(mounts_text):
        if m.fstype == "cgroup2":
            unified = unified or m.target  # one unified hierarchy per kernel
        elif m.fstype == "cgroup":
            found = sorted(o for o in m.options if o in V1_CONTROLLER_NAMES)
            names = sorted(o for o in m.options if o.startswith("name="))
            if found:
                controllers.setdefault("+".join(found + names), m.target)
            elif names:
                named.setdefault("+".join(names), m.target)
    if controllers and (named or unified):
        layout = "hybrid"
    elif controllers or named:
        layout = "v1"
    elif unified:
        layout = "v2"
    else:
        layout = "none"
    hierarchies = []
    for key, target in sorted(controllers.items()) + sorted(named.items()):
        usual = {"/sys/fs/cgroup/" + part.removeprefix("name=") for part in key.split("+")}
        usual.add("/sys/fs/cgroup/" + key.replace("+", ","))  # co-mounted: /sys/fs/cgroup/cpu,cpuacct
        hierarchies.append(key if target in usual else f"{key} at {target}")
    if unified:
        hierarchies.append(f"cgroup2 at {unified}")  # always shown: where it is decides v2 or hybrid use
    return layout, hierarchies


@dataclass(frozen=True)
class Broker:
    """Where a broker URL points. It never holds the password, so it can be printed and logged."""

    scheme: str
    host: str
    port: int
    has_password: bool

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_broker_url(url: str) -> Broker:
    """The broker a Redis URL names; ValueError (never quoting the URL: it may hold a password)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or 6379
    except ValueError:
        raise ValueError("the broker URL is not a valid URL") from None
    if parts.scheme not in BROKER_SCHEMES:
        raise ValueError(f"only redis:// and rediss:// broker URLs are checked, not {parts.scheme or 'this'}://")
    # kombu and redis-py also take the password as a query parameter.
    password = parts.password or parse_qs(parts.query).get("password", [""])[0]
    return Broker(parts.scheme, parts.hostname or "localhost", port, bool(password))


def local_addresses(fib_trie: str, if_inet6: str) -> set:
    """This host's own addresses, from the texts of /proc/net/fib_trie and /proc/net/if_inet6."""
    found = set()
    last = None
    for line in fib_trie.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "|--":
            last = fields[1]
        elif last and fields[1:3] == ["host", "LOCAL"]:
            found.add(ipaddress.ip_address(last))
    for line in if_inet6.splitlines():
        fields = line.split()
        if fields and len(fields[0]) == 32:
            found.add(ipaddress.IPv6Address(int(fields[0], 16)))
    return found


def _own_addresses() -> set:
    texts = []
    for path in ("/proc/net/fib_trie", "/proc/net/if_inet6"):
        try:
            with open(path) as f:
                texts.append(f.read())
        except FileNotFoundError:  # a kernel without IPv6
            texts.append("")
    return local_addresses(*texts)


def classify_address(address: str, own: set) -> str:
    """ "loopback", "own" (an address of this host) or "elsewhere" (reached through forwarding)."""
    ip = ipaddress.ip_address(address.split("%")[0])  # fe80::1%eth0: the zone is not part of it
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified or ip in own:
        return "own"
    return "elsewhere"


def _resolve(broker: Broker) -> list[str]:
    infos = socket.getaddrinfo(broker.host, broker.port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def ping_without_auth(host: str, port: int, timeout: float = BROKER_TIMEOUT) -> str:
    """The first line a Redis server answers to a bare PING: "+PONG" when it asks for no password.

    Nothing but PING is sent: this must be harmless to any server the URL points at."""
    with socket.create_connection((host, port), timeout=timeout) as connection:
        connection.settimeout(timeout)
        connection.sendall(b"PING\r\n")
        reply = b""
        while b"\r\n" not in reply and len(reply) < 512:
            chunk = connection.recv(512)
            if not chunk:
                break
            reply += chunk
    line = reply.split(b"\r\n")[0].decode("ascii", "replace")
    return "".join(c if c.isprintable() else "?" for c in line)  # no escape sequences for the admin's terminal


def broker_checks(url: str, own: set | None = None, protected: list[str] | None = None) -> list[dict]:
    """Warnings about the broker the host agent uses (none is required: the agent starts anyway)."""
    checks = []

    def add(name, ok, detail, fix=""):
        checks.append({"name": name, "ok": bool(ok), "detail": detail, "fix": "" if ok else fix, "required": False})

    try:
        broker = parse_broker_url(url)
    except ValueError as exc:
        add("broker", False, str(exc), "give the agent's broker URL, e.g. redis://:PASSWORD@10.0.0.1:6379/0")
        return checks
    add(
        "broker password",
        broker.has_password,
        f"{broker}: the URL carries a password"
        if broker.has_password
        else f"{broker}: the URL has no password, so the broker takes commands from anyone who reaches it",
        "set requirepass in redis.conf and put it in the URL: redis://:PASSWORD@HOST:6379/0",
    )
    try:
        addresses = _resolve(broker)
    except (OSError, UnicodeError) as exc:
        add("broker address", False, f"{broker}: cannot resolve {broker.host}: {exc}", "check the broker URL's host")
        return checks
    own = _own_addresses() if own is None else own
    if protected is None:
        protected = network.protected_networks(os.environ.get(network.PROTECTED_ENV))
    networks = [ipaddress.ip_network(n) for n in protected]
    elsewhere = [a for a in addresses if classify_address(a, own) == "elsewhere"]
    # Guests' forward chains drop what goes to a protected network: a broker there is out of reach.
    exposed = [a for a in elsewhere if not any(ipaddress.ip_address(a) in n for n in networks)]
    add(
        "broker address",
        not exposed,
        f"{broker} is on this host ({', '.join(addresses)}), out of guests' reach"
        if not elsewhere
        else f"{broker} is in CONTEXTS_PROTECTED_NETWORKS ({', '.join(elsewhere)}): guests are never forwarded there"
        if not exposed
        else f"{broker} is {', '.join(exposed)}, another machine: guests on this host reach other machines "
        "through its forwarding",
        "list the broker's network in CONTEXTS_PROTECTED_NETWORKS (guests are never forwarded there), make it "
        "listen only on a management network guests cannot route to, or firewall its port against the guests",
    )
    if broker.scheme != "redis":
        add("broker AUTH", True, f"{broker}: not asked (a plain PING is no TLS)")
        return checks
    try:
        reply = ping_without_auth(broker.host, broker.port)
    except OSError as exc:
        add("broker AUTH", False, f"{broker}: could not ask ({exc})", "check that the broker runs and the URL is right")
        return checks
    add(
        "broker AUTH",
        not reply.startswith("+PONG"),
        f"{broker} refuses commands without a password ({reply[:60]})"
        if not reply.startswith("+PONG")
        else f"{broker} answered PING without AUTH: it requires no password",
        "set requirepass in redis.conf (and the password in REDIS_URL), then restart Redis",
    )
    return checks


def _syscall_filter_check(add) -> bool:
    """Adds the "syscall filter" line; True when guests get the filter."""
    problem = seccomp.support_problem()
    if seccomp.unsafe_override():
        add(
            "syscall filter",
            False,
            (f"{problem} " if problem else "this host can filter system calls, but ")
            + "CONTEXTS_UNSAFE_NO_SECCOMP is set: guests run UNSAFE without the filter",
            ("fix the kernel as said, then " if problem else "")
            + "unset CONTEXTS_UNSAFE_NO_SECCOMP and restart the host agent, then the guests (they get the filter "
            "when they start)",
            required=False,
        )
        return False
    add(
        "syscall filter",
        problem is None,
        f"guests are denied {len(seccomp.DENIED)} system calls ({', '.join(list(seccomp.DENIED)[:4])}, ...)"
        if problem is None
        else "unavailable, so guests do not start",
        f"{problem} (Only for a kernel without seccomp: CONTEXTS_UNSAFE_NO_SECCOMP=1 starts guests without "
        "the filter, UNSAFE.)",
    )
    return problem is None


def _tiocsti_check() -> tuple:
    """Whether a guest process could type into the terminal of whoever entered it (TIOCSTI)."""
    try:
        with open(LEGACY_TIOCSTI) as f:
            legacy = f.read().strip() != "0"
    except FileNotFoundError:
        # Kernels before 6.2 have no switch: TIOCSTI on one's controlling terminal always works.
        return (
            "legacy TIOCSTI",
            False,
            "this kernel has no dev.tty.legacy_tiocsti (before 6.2): TIOCSTI always works. `contexts exec`/`enter` "
            "never hand a host terminal to a guest, but other tools that enter guests (nsenter, a shell started "
            "by hand) would let the guest type commands into the admin's terminal",
            "a kernel of 6.2 or later with dev.tty.legacy_tiocsti=0; until then enter guests only with "
            "`contexts exec`/`enter`",
        )
    if not legacy:
        return "legacy TIOCSTI", True, "off: nothing can type into another's terminal without CAP_SYS_ADMIN", ""
    return (
        "legacy TIOCSTI",
        False,
        "on: `contexts exec`/`enter` never hand a host terminal to a guest, but other tools that enter guests "
        "(nsenter, a shell started by hand) would let the guest type commands into the admin's terminal",
        "sysctl -w dev.tty.legacy_tiocsti=0 (until reboot; add dev.tty.legacy_tiocsti = 0 to a file in "
        "/etc/sysctl.d to keep it)",
    )


def run(broker_url: str | None = None) -> dict:
    """Every check; with `broker_url` (the host agent's), also warnings about that broker."""
    checks = []

    def add(name, ok, detail, fix="", required=True):
        checks.append({"name": name, "ok": bool(ok), "detail": detail, "fix": "" if ok else fix, "required": required})

    add(
        "root",
        os.geteuid() == 0,
        "running as root" if os.geteuid() == 0 else "not root",
        "run the host CLI as root (sudo)",
    )
    for ns in ("pid", "mnt", "uts", "ipc", "net", "cgroup"):
        present = os.path.exists(f"/proc/self/ns/{ns}")
        add(
            f"{ns} namespace",
            present,
            "available" if present else "missing",
            f"use a kernel built with the {ns} namespace (CONFIG_*_NS)",
        )
    filtered = _syscall_filter_check(add)
    filesystems = _kernel_filesystems()
    add(
        "overlayfs",
        "overlay" in filesystems,
        "available" if "overlay" in filesystems else "not in /proc/filesystems",
        "modprobe overlay (or build the kernel with CONFIG_OVERLAY_FS)",
    )
    for fs in ("proc", "sysfs", "tmpfs", "devpts"):
        add(fs, fs in filesystems, "available" if fs in filesystems else "missing", f"build the kernel with {fs}")
    try:
        cg = cgroups.detect()
        add(
            "cgroups",
            True,
            f"cgroup v{cg.version}" + (f" ({', '.join(sorted(cg.hierarchies))})" if cg.version == 1 else ""),
        )
        add(
            "writeback control",
            cg.version == 2,
            "cgroup v2: buffered writes are charged to the guest that made them"
            if cg.version == 2
            else "cgroup v1 charges buffered writeback to the root group, not the writer: guests with a disk "
            "limit are held to their write rate on their own loop device, guests without one are not, and "
            "the kernel's writeback threads run outside every guest's CPU cap (bench/noisy.py measures it)",
            "boot the host with the unified hierarchy (systemd.unified_cgroup_hierarchy=1, or cgroup_no_v1=all)",
            required=False,
        )
    except Exception as exc:
        add("cgroups", False, str(exc), "mount cgroup2 on /sys/fs/cgroup")
    with open("/proc/mounts") as f:
        layout, hierarchies = cgroup_layout(f.read())
    add("cgroup layout", True, f"{layout}: " + (", ".join(hierarchies) or "nothing mounted"), required=False)
    # Without user namespaces every guest's root is the host's uid 0, so per-user kernel limits are shared.
    with open("/proc/sys/fs/inotify/max_user_instances") as f:
        instances = int(f.read())
    add(
        "per-user limits",
        instances >= 1024,
        f"inotify instances per user: {instances}; all guests' root and the host's root share them",
        "sysctl -w fs.inotify.max_user_instances=8192 (guests' process limits bound what each can take); "
        "user namespaces per guest would separate them",
        required=False,
    )
    for program, package in (
        ("unshare", "util-linux"),
        ("setsid", "util-linux"),
        ("nsenter", "util-linux"),
        ("tar", "tar"),
        ("nft", "nftables"),
        ("mkfs.ext4", "e2fsprogs"),
    ):
        path = shutil.which(program)
        add(program, path, path or "missing", f"apt-get install {package}")
    add(
        "busybox-static",
        os.path.exists("/bin/busybox"),
        "/bin/busybox" if os.path.exists("/bin/busybox") else "missing: needed for `template build --busybox`",
        "apt-get install busybox-static",
        required=False,
    )
    lxcfs = os.path.exists("/var/lib/lxcfs/proc/meminfo")
    add(
        "lxcfs",
        lxcfs,
        "serving /var/lib/lxcfs" if lxcfs else "not running: guests see the host's memory in free",
        "apt-get install lxcfs (its service mounts /var/lib/lxcfs)",
        required=False,
    )
    path = shutil.which("debootstrap")
    add(
        "debootstrap",
        path,
        path or "missing: needed for `template build --debootstrap`",
        "apt-get install debootstrap",
        required=False,
    )
    try:
        with open(KEXEC_LOAD_DISABLED) as f:
            disabled = f.read().strip() == "1"
        # Guests keep CAP_SYS_BOOT (reboot), which also allows kexec_load; the filter denies them the call.
        if filtered:
            why = "guests are denied kexec_load by the syscall filter anyway: this is defence in depth"
        else:
            why = "guests run without the syscall filter, so this alone keeps their CAP_SYS_BOOT from kexec_load"
        add(
            "kexec disabled",
            disabled,
            f"yes; {why}" if disabled else f"no; {why}",
            "sysctl -w kernel.kexec_load_disabled=1 (until reboot; add it to /etc/sysctl.d to keep it)",
            required=False,
        )
    except FileNotFoundError:
        pass
    add(*_tiocsti_check(), required=False)
    if broker_url:
        checks.extend(broker_checks(broker_url))
    return {"ok": all(c["ok"] for c in checks if c["required"]), "checks": checks}


def print_report(report: dict) -> None:
    # Long details wrap under their own column, so each check stays one block a person can scan.
    width = max(60, min(shutil.get_terminal_size().columns, 120))
    indent = " " * 25
    for c in report["checks"]:
        mark = "ok  " if c["ok"] else ("MISS" if c["required"] else "warn")
        print(textwrap.fill(c["detail"], width, initial_indent=f"[{mark}] {c['name']:17} ", subsequent_indent=indent))
        if c["fix"]:
            print(
                textwrap.fill(c["fix"], width, initial_indent=f"{'fix:':>{len(indent) - 1}} ", subsequent_indent=indent)
            )
    if not report["ok"]:
        print("This host cannot run contexts yet: fix the MISS lines.")
    elif any(c["name"] == "syscall filter" and not c["ok"] for c in report["checks"]):
        print("This host runs guests UNSAFELY, without their syscall filter: see above.")
    elif any(not c["ok"] for c in report["checks"]):
        print("This host can run contexts; the warn lines say what would make it better.")
    else:
        print("This host can run contexts.")
