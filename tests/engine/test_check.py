"""`contexts check`: the syscall filter, TIOCSTI, kexec, cgroup layout and broker lines.

The pure parts (mount tables, URLs, addresses) need nothing; the broker's PING is tried against the
machine's Redis (no password) and a throwaway one with a password, on 127.0.0.1 only."""

import contextlib
import ipaddress
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from contexts.engine import check
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]

V2 = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n"
V1 = """\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,relatime,memory 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0
"""
HYBRID = """\
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,xattr,name=systemd 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
cgroup /var/lib/other/memory cgroup rw,relatime,memory 0 0
cgroup2 /run/again cgroup2 rw,relatime 0 0
"""


def test_cgroup_layout_names_v2_v1_and_hybrid_hosts_and_lists_each_hierarchy_once():
    assert check.cgroup_layout(V2) == ("v2", ["cgroup2 at /sys/fs/cgroup"])
    assert check.cgroup_layout(V1) == ("v1", ["cpu+cpuacct", "memory", "pids"])
    layout, hierarchies = check.cgroup_layout(HYBRID)
    # memory and cgroup2 are mounted twice each: one hierarchy, listed at its first mount point.
    assert layout == "hybrid"
    assert hierarchies == ["cpu", "memory", "name=systemd", "cgroup2 at /sys/fs/cgroup/unified"]
    named_only = V1 + "cgroup /sys/fs/cgroup/systemd cgroup rw,name=systemd 0 0\n"
    assert check.cgroup_layout(named_only)[0] == "hybrid"  # v1 controllers plus a named hierarchy
    odd = "cgroup /mnt/cg cgroup rw,cpu,cpuacct 0 0\n"
    assert check.cgroup_layout(odd) == ("v1", ["cpu+cpuacct at /mnt/cg"])
    assert check.cgroup_layout("proc /proc proc rw 0 0\n") == ("none", [])


def test_broker_urls_are_parsed_without_ever_keeping_the_password():
    broker = check.parse_broker_url("redis://:s3cret@10.0.0.1:6380/0")
    assert broker == check.Broker("redis", "10.0.0.1", 6380, True)
    assert "s3cret" not in str(broker) and "s3cret" not in repr(broker)
    assert check.parse_broker_url("redis://user:pw@h/1").has_password
    assert check.parse_broker_url("redis://h/0?password=pw").has_password
    assert not check.parse_broker_url("redis://user@h/0").has_password  # a user name is no password
    assert check.parse_broker_url("redis://") == check.Broker("redis", "localhost", 6379, False)
    assert str(check.parse_broker_url("rediss://[::1]:6390/0")) == "rediss://[::1]:6390"
    for bad in ("amqp://guest:s3cret@h//", "filesystem://localhost/", "redis://:s3cret@h:port/0", "not a url"):
        with pytest.raises(ValueError) as caught:
            check.parse_broker_url(bad)
        assert "s3cret" not in str(caught.value)
    [line] = check.broker_checks("amqp://guest:s3cret@h//")
    assert line["name"] == "broker" and not line["ok"] and not line["required"] and "s3cret" not in str(line)


FIB_TRIE = """\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 192.0.2.0/24 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
"""
IF_INET6 = """\
fd000000000000000000000000000002 04 40 00 82     eth0
00000000000000000000000000000001 01 80 10 80       lo
"""


def test_this_hosts_addresses_and_where_a_broker_address_is():
    own = check.local_addresses(FIB_TRIE, IF_INET6)
    assert own == {ipaddress.ip_address(a) for a in ("127.0.0.1", "192.0.2.2", "fd00::2", "::1")}
    assert check.classify_address("127.0.0.1", own) == "loopback"
    assert check.classify_address("127.0.1.1", set()) == "loopback"
    assert check.classify_address("::1", set()) == "loopback"
    assert check.classify_address("::ffff:127.0.0.1", set()) == "loopback"
    assert check.classify_address("192.0.2.2", own) == "own"
    assert check.classify_address("fd00::2", own) == "own"
    assert check.classify_address("0.0.0.0", set()) == "own"
    assert check.classify_address("192.0.2.3", own) == "elsewhere"  # a neighbour: reached by forwarding
    assert check.classify_address("fe80::1%eth0", own) == "elsewhere"


def by_name(checks) -> dict:
    return {c["name"]: c for c in checks}


def test_a_broker_on_another_machine_is_a_warning(monkeypatch):
    sent = []
    monkeypatch.setattr(check, "ping_without_auth", lambda host, port: sent.append((host, port)) or "-NOAUTH x")
    checks = by_name(check.broker_checks("redis://:pw@192.0.2.77:6379/0", own={ipaddress.ip_address("192.0.2.2")}))
    assert checks["broker password"]["ok"] and checks["broker AUTH"]["ok"]
    address = checks["broker address"]
    assert not address["ok"] and not address["required"]
    assert "192.0.2.77" in address["detail"] and "forwarding" in address["detail"]
    assert "management network" in address["fix"]
    assert sent == [("192.0.2.77", 6379)]  # the URL's broker, and only it
    assert all(not c["required"] for c in checks.values())


@contextlib.contextmanager
def fake_broker(handle):
    """A server on 127.0.0.1 whose one connection `handle(connection)` serves; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        connection, _ = server.accept()
        with connection:
            handle(connection)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        thread.join(5)
        server.close()


def test_the_check_sends_a_bare_ping_and_nothing_else():
    received = []

    def answer(connection):
        received.append(connection.recv(1024))
        connection.sendall(b"+PONG\r\n")
        received.append(connection.recv(1024))  # b"" once the check hangs up: nothing more was sent

    with fake_broker(answer) as port:
        assert check.ping_without_auth("127.0.0.1", port) == "+PONG"
    assert received == [b"PING\r\n", b""]


def test_what_a_server_answers_cannot_reach_the_terminal_as_escape_sequences():
    def answer(connection):
        connection.recv(1024)
        connection.sendall(b"\x1b]0;owned\x07-ERR no\r\n")

    with fake_broker(answer) as port:
        assert check.ping_without_auth("127.0.0.1", port) == "?]0;owned?-ERR no"


def test_the_machines_redis_without_a_password_is_warned_about():
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        require(False, "needs the machine's Redis on 127.0.0.1:6379")
    checks = by_name(check.broker_checks("redis://127.0.0.1:6379/12"))
    assert not checks["broker password"]["ok"]
    assert not checks["broker AUTH"]["ok"] and "without AUTH" in checks["broker AUTH"]["detail"]
    assert checks["broker address"]["ok"]  # loopback: guests have network namespaces of their own


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_with_password(tmp_path):
    require(shutil.which("redis-server") is not None, "needs redis-server (apt-get install redis-server)")
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "x"]
    argv += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", str(tmp_path)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "redis-server did not start"
                time.sleep(0.05)
        yield port
    finally:
        process.kill()
        process.wait()


def test_a_redis_that_wants_a_password_passes(redis_with_password):
    checks = by_name(check.broker_checks(f"redis://:x@127.0.0.1:{redis_with_password}/0"))
    assert all(c["ok"] for c in checks.values()), checks
    assert "NOAUTH" in checks["broker AUTH"]["detail"]
    # The server wants one, but this URL has none: only that line warns.
    checks = by_name(check.broker_checks(f"redis://127.0.0.1:{redis_with_password}/0"))
    assert checks["broker AUTH"]["ok"] and not checks["broker password"]["ok"]


def test_the_cli_checks_the_broker_it_is_given_and_never_prints_its_password():
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        require(False, "needs the machine's Redis on 127.0.0.1:6379")
    for extra in (["--json"], []):
        result = subprocess.run(
            [sys.executable, "-m", "contexts", "check", "--broker", "redis://:hunter2@127.0.0.1:6379/12", *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert "hunter2" not in result.stdout + result.stderr
        assert "broker AUTH" in result.stdout
    names = [
        c["name"]
        for c in json.loads(subprocess.check_output([sys.executable, "-m", "contexts", "check", "--json"], cwd=ROOT))[
            "checks"
        ]
    ]
    assert "cgroup layout" in names and "legacy TIOCSTI" in names and not any(n.startswith("broker") for n in names)


@pytest.fixture
def seccomp(monkeypatch):
    """The filter module as a test wants it: supported or not, override or not."""
    from contexts.engine import seccomp as real

    fake = types.SimpleNamespace(problem=None, override=False, DENIED=real.DENIED)
    monkeypatch.setattr(real, "support_problem", lambda: fake.problem)
    monkeypatch.setattr(real, "unsafe_override", lambda: fake.override)
    return fake


def test_the_syscall_filter_is_required_unless_staff_chose_to_run_unsafe(seccomp):
    line = by_name(check.run()["checks"])["syscall filter"]
    assert line["ok"] and line["required"] and "kexec_load" in line["detail"]

    seccomp.problem = "This kernel has no seccomp: use a kernel built with CONFIG_SECCOMP_FILTER."
    report = check.run()
    line = by_name(report["checks"])["syscall filter"]
    assert not report["ok"] and not line["ok"] and line["required"]
    assert "CONFIG_SECCOMP_FILTER" in line["fix"] and "CONTEXTS_UNSAFE_NO_SECCOMP" in line["fix"]

    seccomp.override = True
    line = by_name(check.run()["checks"])["syscall filter"]
    assert not line["ok"] and not line["required"] and "UNSAFE" in line["detail"]

    seccomp.problem = None  # supported, but the override still starts guests unfiltered
    line = by_name(check.run()["checks"])["syscall filter"]
    assert not line["ok"] and not line["required"] and "UNSAFE" in line["detail"]


def test_kexec_is_defence_in_depth_behind_the_filter(seccomp, monkeypatch, tmp_path):
    setting = tmp_path / "kexec_load_disabled"
    monkeypatch.setattr(check, "KEXEC_LOAD_DISABLED", str(setting))
    setting.write_text("0\n")
    line = by_name(check.run()["checks"])["kexec disabled"]
    assert not line["ok"] and not line["required"]
    assert "denied kexec_load by the syscall filter anyway" in line["detail"] and "defence in depth" in line["detail"]
    setting.write_text("1\n")
    assert by_name(check.run()["checks"])["kexec disabled"]["ok"]
    seccomp.override = True
    setting.write_text("0\n")
    assert "without the syscall filter" in by_name(check.run()["checks"])["kexec disabled"]["detail"]


def test_legacy_tiocsti(monkeypatch, tmp_path):
    setting = tmp_path / "legacy_tiocsti"
    monkeypatch.setattr(check, "LEGACY_TIOCSTI", str(setting))
    setting.write_text("1\n")
    name, ok, detail, fix = check._tiocsti_check()
    assert name == "legacy TIOCSTI" and not ok
    assert "nsenter" in detail and "admin's terminal" in detail
    assert fix.startswith("sysctl -w dev.tty.legacy_tiocsti=0") and "/etc/sysctl.d" in fix
    setting.write_text("0\n")
    assert check._tiocsti_check()[1]
    setting.unlink()  # a kernel before 6.2: no switch, and TIOCSTI always works there
    name, ok, detail, fix = check._tiocsti_check()
    assert not ok and "6.2" in detail
    line = by_name(check.run()["checks"])["legacy TIOCSTI"]
    assert not line["required"]


def test_the_report_stays_readable(seccomp, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "get_terminal_size", lambda *a: types.SimpleNamespace(columns=80, lines=24))
    seccomp.override = True
    check.print_report(check.run())
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines())
    assert "[warn] syscall filter" in out and "[ok  ] cgroup layout" in out
    assert out.rstrip().splitlines()[-1].startswith("This host runs guests UNSAFELY")
