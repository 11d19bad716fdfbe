"""Inside a started busybox context: what the guest sees and what it cannot do."""

import socket

from contexts.engine import capabilities
from tests.engine.conftest import inside


def test_guest_sees_only_its_processes_with_its_init_as_pid_1(engine, make_context):
    name = make_context()
    out = inside(engine, name, "ps -o pid,comm").stdout.split("\n")
    rows = [line.split() for line in out[1:] if line.strip()]
    assert rows[0] == ["1", "init"]
    assert {comm for _, comm in rows} <= {"init", "sh", "ps"}, rows
    assert len(rows) <= 3  # init, the shell running the script and ps; nothing of the host


def test_hostname_is_its_own_and_cannot_change_the_hosts(engine, make_context):
    name = make_context(hostname="guest.example.com")
    host_before = socket.gethostname()
    result = inside(engine, name, "hostname; hostname evil; hostname")
    assert result.stdout.split() == ["guest.example.com", "guest.example.com"]
    assert "Operation not permitted" in result.stderr
    assert socket.gethostname() == host_before


def test_privileged_operations_fail(engine, make_context):
    name = make_context()
    checks = {
        "mount": "mount -t tmpfs none /mnt",
        "mknod": "mknod /tmp/sda b 8 0",
        "module": "insmod /nonexistent.ko || modprobe dummy",
        "sysrq": "echo h > /proc/sysrq-trigger",
        "kmsg": "cat /dev/kmsg",
        "time": 'date -s 2001-01-01; test "$(date +%Y)" = 2001',  # busybox date exits 0 even when refused
        "address": "ip addr add 192.0.2.99/32 dev lo",
        "route": "ip route add 192.0.2.0/24 dev lo",
        "sysctl": "echo 1 > /proc/sys/net/ipv4/ip_forward",
    }
    script = "; ".join(f"({cmd}) >/dev/null 2>&1; echo {key}=$?" for key, cmd in checks.items())
    results = dict(line.split("=") for line in inside(engine, name, script).stdout.split())
    assert all(code != "0" for code in results.values()), results


def test_only_loopback_is_visible(engine, make_context):
    name = make_context()
    links = inside(engine, name, "ls /sys/class/net").stdout.split()
    assert links == ["lo"]


def test_capability_bounding_set_is_the_guests(engine, make_context):
    name = make_context()
    for pid in ("1", "self"):
        mask = int(inside(engine, name, f"grep CapBnd /proc/{pid}/status").stdout.split()[1], 16)
        names = {n for n, bit in capabilities.CAP_NUMBERS.items() if mask >> bit & 1}
        assert names == set(capabilities.GUEST_CAPABILITIES)
        assert not names & {"SYS_ADMIN", "NET_ADMIN", "NET_RAW", "SYS_MODULE", "SYS_RAWIO", "MKNOD", "SYS_TIME"}


def test_proc_is_masked_and_sys_read_only(engine, make_context):
    name = make_context()
    out = inside(
        engine,
        name,
        "cat /proc/keys /proc/timer_list | wc -c; touch /sys/x 2>/dev/null; echo sys=$?; "
        "grep ' /proc/sys ' /proc/mounts",
    ).stdout.split("\n")
    assert out[0].strip() == "0"
    assert out[1] == "sys=1"
    assert " ro," in out[2]


def test_minimal_dev_without_host_devices(engine, make_context):
    name = make_context()
    entries = set(inside(engine, name, "ls /dev").stdout.split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "console", "ptmx", "pts", "shm"} <= entries
    assert not {e for e in entries if e.startswith(("sd", "vd", "nvme", "loop", "mem", "kmsg", "mapper"))}


def test_init_holds_only_what_the_guest_opened(engine, make_context):
    name = make_context()
    fds = inside(engine, name, "ls /proc/1/fd; echo --; ls /proc/self/fd").stdout.split("--")
    assert fds[0].split() == ["0", "1", "2"]
    assert set(fds[1].split()) <= {"0", "1", "2", "3"}  # 3: the directory ls is reading


def test_icmp_sockets_are_allowed_without_net_raw(engine, make_context):
    """ping works through ICMP datagram sockets (busybox's ping wants a raw socket: the Debian guest
    test runs iputils ping)."""
    name = make_context()
    result = inside(engine, name, "cat /proc/sys/net/ipv4/ping_group_range")
    assert result.stdout.split() == ["0", "2147483647"]


def test_exec_passes_exit_status_and_stdio(engine, make_context, cli):
    name = make_context()
    assert cli("exec", name, "--", "/bin/sh", "-c", "exit 7").returncode == 7
    result = cli("exec", name, "--", "/bin/cat", input="hello\n")
    assert result.stdout == "hello\n"
