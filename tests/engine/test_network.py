"""Routed guest networking, inside network namespaces these tests make: a stand-in host (from the
session fixture) and a peer behind its uplink. No address is added and no packet sent elsewhere."""

import json
import subprocess
import sys
import time
import uuid

import pytest
from pyroute2 import IPRoute, netns

from contexts.engine import operations
from contexts.engine.errors import InvalidSpec
from contexts.engine.network import GATEWAY4, GATEWAY6
from contexts.engine.spec import Address, ContextSpec, Limits, OperationSpec
from tests.engine.conftest import inside

PEER4, HOST4, GUEST4, GUEST4B, FORGED4 = (
    "198.51.100.2",
    "198.51.100.1",
    "198.51.100.10",
    "198.51.100.11",
    "198.51.100.99",
)
PEER6, HOST6, GUEST6 = "2001:db8:1::2", "2001:db8:1::1", "2001:db8:1::10"


@pytest.fixture
def peer(engine, monkeypatch):
    """A peer namespace wired to the stand-in host's uplink `up0`, as a router or a neighbour would be."""
    name = f"ctp-{uuid.uuid4().hex[:8]}"
    netns.create(name)
    with IPRoute(netns=engine.host_netns) as host:
        host.link("add", ifname="up0", kind="veth", peer={"ifname": "up0p"})
        host.link("set", index=host.link_lookup(ifname="up0p")[0], net_ns_fd=name)
        index = host.link_lookup(ifname="up0")[0]
        host.link("set", index=index, state="up")
        host.addr("add", index=index, address=HOST4, prefixlen=24)
        host.addr("add", index=index, address=HOST6, prefixlen=64)
    with IPRoute(netns=name) as p:
        p.link("set", index=p.link_lookup(ifname="lo")[0], state="up")
        index = p.link_lookup(ifname="up0p")[0]
        p.link("set", index=index, state="up")
        p.addr("add", index=index, address=PEER4, prefixlen=24)  # the guest's address looks on-link from here
        p.addr("add", index=index, address=PEER6, prefixlen=64)
    monkeypatch.setenv("CONTEXTS_UPLINK", "up0")
    time.sleep(1.5)  # IPv6 duplicate address detection on the new links
    yield name
    with IPRoute(netns=engine.host_netns) as host:
        found = host.link_lookup(ifname="up0")
        if found:
            host.link("del", index=found[0])
    netns.remove(name)


def in_netns(ns: str, code: str, *args, timeout=30, background=False):
    """Run Python code inside a network namespace (the peer's, or a guest's to play a forger)."""
    argv = ["nsenter", f"--net=/run/netns/{ns}", sys.executable, "-c", code, *map(str, args)]
    if background:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


RECEIVE = """
import json, socket, sys, time
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(20)
c, addr = s.accept(); total = 0; first = None
while True:
    data = c.recv(65536)
    if not data: break
    first = first or time.monotonic(); total += len(data)
print(json.dumps({"bytes": total, "seconds": time.monotonic() - first, "from": addr[0]}))
"""

SEND = """
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
start = time.monotonic(); c.sendall(b"z" * int(sys.argv[3])); c.shutdown(socket.SHUT_WR)
while c.recv(65536):
    pass
print(time.monotonic() - start)
"""

UDP_SINK = """
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], int(sys.argv[2]))); s.settimeout(3)
seen = []
try:
    while True:
        seen.append(s.recvfrom(100)[1][0])
except socket.timeout:
    pass
print(json.dumps(seen))
"""

FORGE = """
import socket, sys
for source in sys.argv[2:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, 19, 1)  # IP_TRANSPARENT: send from any address (needs NET_ADMIN/NET_RAW)
    s.bind((source, 0)); s.sendto(b"hi", (sys.argv[1], 9999)); s.close()
"""


def test_guest_reaches_peer_and_peer_reaches_guest(engine, make_context, peer, cli):
    name = make_context(addresses=[GUEST4, GUEST6])
    listener = in_netns(peer, RECEIVE, PEER4, 9000, background=True)
    time.sleep(0.3)
    inside(engine, name, f"echo hello | nc {PEER4} 9000")
    assert json.loads(listener.communicate(timeout=20)[0])["from"] == GUEST4
    listener = in_netns(peer, RECEIVE, PEER6, 9001, background=True)
    time.sleep(0.3)
    inside(engine, name, f"echo hello6 | nc {PEER6} 9001")
    assert json.loads(listener.communicate(timeout=20)[0])["from"] == GUEST6
    # The other way: the peer connects to the guest's address through the host's proxy ARP.
    server = subprocess.Popen(
        [*cli.argv, "exec", name, "--", "/bin/sh", "-c", "nc -l -p 8080 > /tmp/got"], env=cli.env, cwd=cli.cwd
    )
    time.sleep(0.5)
    in_netns(peer, f"import socket; socket.create_connection(('{GUEST4}', 8080), timeout=5).sendall(b'ping')")
    server.wait(timeout=10)
    assert inside(engine, name, "cat /tmp/got").stdout == "ping"
    assert inside(engine, name, f"ip addr add {GUEST4B}/32 dev eth0; echo $?").stdout.strip() != "0"


def test_forged_source_is_dropped_on_the_host(engine, make_context, peer):
    """The guest itself cannot forge (no NET_RAW, no NET_ADMIN: the kernel refuses foreign sources),
    so the test plays a forger with full privileges inside the guest's network namespace."""
    name = make_context(addresses=[GUEST4])
    sink = in_netns(peer, UDP_SINK, PEER4, 9999, background=True)
    time.sleep(0.3)
    result = in_netns(f"ctx-{name}", FORGE, PEER4, GUEST4, FORGED4)
    assert result.returncode == 0, result.stderr
    assert json.loads(sink.communicate(timeout=20)[0]) == [GUEST4]


def measured_mbit(engine, name, counter: str, start: float, end: float) -> float:
    """The steady rate between two moments of a transfer, from the guest's byte counters (the
    first second, where socket buffers and the bucket fill, is left out)."""
    time.sleep(start)
    first = engine.usage(name)[counter]
    time.sleep(end - start)
    return (engine.usage(name)[counter] - first) * 8 / (end - start) / 1e6


def start_upload(cli, name, peer, port: int, size: int):
    """The peer listens, the guest sends `size` bytes to it: (listener, sender), both running."""
    listener = in_netns(peer, RECEIVE, PEER4, port, background=True)
    time.sleep(0.3)
    script = f"head -c {size} /dev/zero | nc {PEER4} {port}"
    return listener, subprocess.Popen(
        [*cli.argv, "exec", name, "--", "/bin/sh", "-c", script], env=cli.env, cwd=cli.cwd
    )


def test_rate_limit_and_counters_that_survive_a_restart(engine, make_context, peer, cli):
    name = make_context(addresses=[GUEST4], limits={"rate_mbit": 8})
    size = 5_000_000  # five seconds at 8 Mbit/s
    listener, upload = start_upload(cli, name, peer, 9002, size)
    assert 8 * 0.85 <= measured_mbit(engine, name, "net_out_bytes", 1, 3.5) <= 8 * 1.15
    upload.wait(timeout=30)
    assert json.loads(listener.communicate(timeout=30)[0])["bytes"] == size
    sent = engine.usage(name)["net_out_bytes"]
    assert size <= sent <= size * 1.1  # payload plus TCP/IP headers

    server = subprocess.Popen(
        [*cli.argv, "exec", name, "--", "/bin/sh", "-c", "nc -l -p 9100 > /dev/null"], env=cli.env, cwd=cli.cwd
    )
    time.sleep(0.5)
    download = in_netns(peer, SEND, GUEST4, 9100, size, background=True)
    assert 8 * 0.85 <= measured_mbit(engine, name, "net_in_bytes", 1, 3.5) <= 8 * 1.15
    download.communicate(timeout=30)
    server.wait(timeout=30)
    received = engine.usage(name)["net_in_bytes"]
    assert size <= received <= size * 1.1

    engine.restart(name, timeout=5)
    after = engine.usage(name)
    assert after["net_out_bytes"] >= sent and after["net_in_bytes"] >= received  # kept across the restart
    engine.set_limits(name, {"rate_mbit": 16})  # live
    listener, upload = start_upload(cli, name, peer, 9003, 2 * size)
    assert 16 * 0.85 <= measured_mbit(engine, name, "net_out_bytes", 1, 3.5) <= 16 * 1.15
    upload.wait(timeout=30)
    listener.communicate(timeout=30)


def test_addresses_change_live_and_bad_ones_are_refused(engine, make_context, peer):
    name = make_context(addresses=[GUEST4])
    other = make_context(start=False, addresses=["198.51.100.20"])
    engine.change_address(name, GUEST4B, add=True)
    assert GUEST4B in inside(engine, name, "ip addr show eth0").stdout
    engine.change_address(name, GUEST4B, add=False)
    assert GUEST4B not in inside(engine, name, "ip addr show eth0").stdout
    for address, message in (
        ("198.51.100.20", "already belongs to context"),
        ("300.1.1.1", "Invalid address"),
        ("127.0.0.5", "cannot be a guest's address"),
        (GUEST4, "has 198.51.100.10 already"),
    ):
        with pytest.raises(InvalidSpec, match=message):
            engine.change_address(name, address, add=True)
    with pytest.raises(InvalidSpec, match="already belongs"):
        engine.build(f"t-{uuid.uuid4().hex[:8]}", engine.state.config(other)["template"], addresses=[GUEST4])
    assert engine.state.config(name)["addresses"] == [GUEST4]


# The host's own services, as a guest would attack them: listeners in the stand-in host namespace.
# Port 7001 on every address (as a broker on 0.0.0.0 would be), 7002 on the uplink address only.
HOST_SERVICES = [
    "tcp:7001:0.0.0.0",
    "tcp:7001:::",
    "udp:7001:0.0.0.0",
    "udp:7001:::",
    f"tcp:7002:{HOST4}",
    f"tcp:7002:{HOST6}",
    "tcp:7003:0.0.0.0",
]

SERVE = """
import json, selectors, socket, sys, time
sel = selectors.DefaultSelector()
for target in sys.argv[1:]:
    proto, port, address = target.split(":", 2)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    for attempt in range(50):  # the uplink's IPv6 address may still be tentative (duplicate detection)
        try:
            s.bind((address, int(port)))
            break
        except OSError:
            time.sleep(0.1)
    else:
        s.bind((address, int(port)))
    if proto == "tcp":
        s.listen(16)
    sel.register(s, selectors.EVENT_READ, target)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        if key.fileobj.type == socket.SOCK_STREAM:
            c, peer = key.fileobj.accept(); c.sendall(b"host"); c.close()
        else:
            data, peer = key.fileobj.recvfrom(100); key.fileobj.sendto(b"host", peer)
        print(json.dumps([key.data, peer[0]]), flush=True)
"""

# From the guest's network: "proto:port:address" -> open / dropped / refused, all at once.
PROBE = """
import json, socket, sys, threading
out = {}
def probe(target):
    proto, port, address = target.split(":", 2)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    where = (address, int(port)) + ((0, socket.if_nametoindex("eth0")) if address.startswith("fe80") else ())
    s = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(2)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)  # a guest may broadcast: the host must not listen
    try:
        if proto == "tcp":
            s.connect(where)
        else:  # unconnected: a server on 0.0.0.0 answers from the address of the route back, not the one asked
            s.sendto(b"hi", where)
        out[target] = "open" if s.recv(4) == b"host" else "?"
    except socket.timeout:
        out[target] = "dropped"
    except ConnectionRefusedError:
        out[target] = "refused"
    except OSError as exc:
        out[target] = exc.strerror
    finally:
        s.close()
threads = [threading.Thread(target=probe, args=(t,)) for t in sys.argv[1:]]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps(out))
"""

# Echo requests through ICMP datagram sockets (what an unprivileged ping uses): address -> answered?
PING = """
import json, socket, sys
out = {}
for address in sys.argv[1:]:
    v6 = ":" in address
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM,
                      socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    s.settimeout(2)
    where = (address, 0, 0, socket.if_nametoindex("eth0")) if address.startswith("fe80") else (address, 0)
    s.sendto(bytes([128 if v6 else 8, 0, 0, 0, 0, 0, 0, 1]) + b"ping", where)
    try:
        out[address] = s.recv(100)[0] == (129 if v6 else 0)
    except socket.timeout:
        out[address] = False
print(json.dumps(out))
"""


@pytest.fixture
def host_services(engine, peer):
    """Listeners in the stand-in host namespace; `.hits()` is who reached which of them so far."""
    server = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{engine.host_netns}", sys.executable, "-c", SERVE, *HOST_SERVICES],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout.readline().strip() == "ready"
    lines = []

    def hits():
        time.sleep(0.3)  # the last probes' lines
        server.terminate()
        lines.extend(json.loads(line) for line in server.communicate(timeout=10)[0].splitlines())
        return lines

    server.hits = hits
    yield server
    if server.poll() is None:
        server.kill()
        server.wait()


def probe(name, *targets) -> dict:
    result = in_netns(f"ctx-{name}", PROBE, *targets)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_guest_cannot_reach_the_hosts_own_services(engine, make_context, peer, host_services, cli):
    """The attack from inside a real guest: the host's uplink address, the gateway and services on
    0.0.0.0 (a broker, on a multi-host deployment) are out of reach; the outside, the gateway's echo
    and the host's own connections into the guest still work."""
    name = make_context(addresses=[GUEST4, GUEST6])
    outside = in_netns(peer, RECEIVE, PEER4, 9004, background=True)
    time.sleep(0.3)
    for address, port in ((HOST4, 7001), (GATEWAY4, 7001), (HOST4, 7002)):
        attempt = inside(engine, name, f"echo steal | nc -w 2 {address} {port}; echo status=$?")
        assert "host" not in attempt.stdout and "status=0" not in attempt.stdout, attempt
    targets = [
        f"tcp:7001:{HOST4}",
        f"tcp:7001:{GATEWAY4}",
        f"tcp:7002:{HOST4}",
        f"tcp:7001:{HOST6}",
        f"tcp:7001:{GATEWAY6}",
        f"tcp:7002:{HOST6}",
        f"udp:7001:{HOST4}",
        f"udp:7001:{GATEWAY4}",
        f"udp:7001:{HOST6}",
        f"udp:7001:{GATEWAY6}",
        "udp:7001:255.255.255.255",  # its answer could not match the address: the host's log tells
    ]
    assert probe(name, *targets) == dict.fromkeys(targets, "dropped")
    # The outside is unchanged, both families, and the gateway answers an echo (not the uplink address).
    inside(engine, name, f"echo out | nc -w 5 {PEER4} 9004")
    assert json.loads(outside.communicate(timeout=20)[0])["from"] == GUEST4
    result = in_netns(f"ctx-{name}", PING, GATEWAY4, GATEWAY6, HOST4, HOST6, PEER4, PEER6)
    assert json.loads(result.stdout) == {
        GATEWAY4: True,
        GATEWAY6: True,
        HOST4: False,
        HOST6: False,
        PEER4: True,
        PEER6: True,
    }, result.stderr
    # What the host opens into the guest gets its answers (and so does the peer's, forwarded).
    server = subprocess.Popen(
        [*cli.argv, "exec", name, "--", "/bin/sh", "-c", "nc -l -p 8081 > /tmp/got"], env=cli.env, cwd=cli.cwd
    )
    time.sleep(0.5)
    opened = in_netns(
        engine.host_netns, f"import socket; socket.create_connection(('{GUEST4}', 8081), 5).sendall(b'hi')"
    )
    assert opened.returncode == 0, opened.stderr
    server.wait(timeout=10)
    assert inside(engine, name, "cat /tmp/got").stdout == "hi"
    assert host_services.hits() == []


def test_a_plans_host_ports_are_reachable_and_no_other_and_change_live(engine, make_context, peer, host_services):
    name = make_context(addresses=[GUEST4, GUEST6], host_ports=["tcp/7001"])
    assert engine.status(name)["host_ports"] == ["tcp/7001"]
    targets = [f"tcp:7001:{HOST4}", f"tcp:7001:{GATEWAY6}", f"tcp:7003:{HOST4}", f"udp:7001:{HOST4}"]
    assert probe(name, *targets) == {
        f"tcp:7001:{HOST4}": "open",
        f"tcp:7001:{GATEWAY6}": "open",
        f"tcp:7003:{HOST4}": "dropped",
        f"udp:7001:{HOST4}": "dropped",
    }
    assert "host" in inside(engine, name, f"nc -w 2 {GATEWAY4} 7001 < /dev/null").stdout  # the real guest too

    # Live, through the operation the panel sends on a change of plan.
    config = engine.state.config(name)
    spec = ContextSpec(
        name=name,
        context_id=config["context_id"],
        hostname=config["hostname"],
        template=config["template"],
        limits=Limits(
            cpus=1.0, cpu_weight=100, memory_mib=256, swap_mib=0, disk_gib=1, inodes=1000, pids=128, rate_mbit=100
        ),
        addresses=(Address(GUEST4, 24), Address(GUEST6, 64)),
        host_ports=("udp/7001",),
    )
    operations.run(engine, OperationSpec(operation="op-1", kind="change_plan", context=spec), lambda *_: None)
    assert engine.state.config(name)["host_ports"] == ["udp/7001"]
    assert probe(name, *targets) == {
        f"tcp:7001:{HOST4}": "dropped",
        f"tcp:7001:{GATEWAY6}": "dropped",
        f"tcp:7003:{HOST4}": "dropped",
        f"udp:7001:{HOST4}": "open",
    }
    engine.change_address(name, GUEST4B, add=True)  # rewrites the table: the ports stay
    assert probe(name, f"udp:7001:{HOST4}") == {f"udp:7001:{HOST4}": "open"}
    assert engine.set_host_ports(name, [])["host_ports"] == []
    assert probe(name, *targets) == dict.fromkeys(targets, "dropped")
    hits = host_services.hits()
    assert sorted({target for target, source in hits}) == ["tcp:7001:0.0.0.0", "tcp:7001:::", "udp:7001:0.0.0.0"]
    assert all(source in (GUEST4, GUEST6) or source.startswith("fe80:") for target, source in hits), hits


def test_host_ports_from_the_cli(engine, cli, busybox_template):
    name = f"t-{uuid.uuid4().hex[:10]}"
    refused = cli("build", name, "--template", busybox_template, "--host-port", "tcp/0")
    assert refused.returncode == 1 and "Invalid host port 'tcp/0'" in refused.stderr
    cli("build", name, "--template", busybox_template, "--host-port", "UDP/53", "--host-port", "tcp/53", check=True)
    try:
        assert json.loads(cli("status", name, "--json", check=True).stdout)["host_ports"] == ["tcp/53", "udp/53"]
        assert "host ports:  tcp/53, udp/53" in cli("status", name, check=True).stdout
        changed = cli("host-ports", name, "tcp/3128", "--json", check=True)
        assert json.loads(changed.stdout)["host_ports"] == ["tcp/3128"]
        assert "--none" in cli("host-ports", name).stderr  # an empty list is never implied
        assert cli("host-ports", name, "tcp/1", "--none").returncode == 1
        assert json.loads(cli("host-ports", name, "--none", "--json", check=True).stdout)["host_ports"] == []
    finally:
        cli("destroy", name, check=True)


ECHO = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); print("ready", flush=True)
c, _ = s.accept()
while data := c.recv(100):
    c.sendall(data)
"""

TALK = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
c.sendall(b"a"); print("first", c.recv(1).decode(), flush=True)
sys.stdin.readline()
c.sendall(b"b")
try:
    print("second", c.recv(1).decode(), flush=True)
except socket.timeout:
    print("second dropped", flush=True)
"""


def test_taking_a_host_port_away_stops_connections_already_open(engine, make_context, peer):
    name = make_context(addresses=[GUEST4], host_ports=["tcp/7005"])
    echo = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{engine.host_netns}", sys.executable, "-c", ECHO, HOST4, "7005"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert echo.stdout.readline().strip() == "ready"
        talk = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/ctx-{name}", sys.executable, "-c", TALK, HOST4, "7005"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert talk.stdout.readline().strip() == "first a"
        engine.set_host_ports(name, [])
        assert talk.communicate("go\n", timeout=10)[0].strip() == "second dropped"
    finally:
        echo.kill()
        echo.wait()


def test_published_ports_metadata_and_protected_networks_are_out_of_reach(engine, make_context, peer, monkeypatch):
    """The host publishes a port by DNAT (as Docker's -p does for a Redis container) and routes the
    link-local metadata address to a neighbour; staff list a management network as protected. From a
    real guest: none of them is reached, while the rest of the outside still is."""
    metadata = "169.254.169.254"
    with IPRoute(netns=peer) as p:
        p.addr("add", index=p.link_lookup(ifname="lo")[0], address=metadata, prefixlen=32)
    with IPRoute(netns=engine.host_netns) as host:
        host.route("add", dst=f"{metadata}/32", gateway=PEER4)
    published = (
        "table ip ctxtest_nat {\n  chain pre {\n    type nat hook prerouting priority -100; policy accept;\n"
        f"    ip daddr {HOST4} tcp dport 7005 dnat to {PEER4}:7005\n  }}\n}}\n"
    )
    subprocess.run(["ip", "netns", "exec", engine.host_netns, "nft", "-f", "-"], input=published, text=True, check=True)
    targets = [f"tcp:7005:{PEER4}", f"tcp:7006:{PEER4}", f"tcp:7006:{PEER6}", f"tcp:7007:{metadata}"]
    server = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{peer}", sys.executable, "-c", SERVE, *targets],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout.readline().strip() == "ready"
        monkeypatch.setenv("CONTEXTS_PROTECTED_NETWORKS", f"{PEER4}/32")  # the management network
        name = make_context(addresses=[GUEST4, GUEST6])
        seen = probe(name, f"tcp:7005:{HOST4}", f"tcp:7006:{PEER4}", f"tcp:7006:{PEER6}", f"tcp:7007:{metadata}")
        assert seen == {
            f"tcp:7005:{HOST4}": "dropped",  # the published port: the host's, whatever DNAT makes of it
            f"tcp:7006:{PEER4}": "dropped",  # protected
            f"tcp:7006:{PEER6}": "open",  # the rest of the outside
            f"tcp:7007:{metadata}": "dropped",  # link-local: never forwarded
        }
    finally:
        server.kill()
        server.wait()
        subprocess.run(["ip", "netns", "exec", engine.host_netns, "nft", "delete", "table", "ip", "ctxtest_nat"])
