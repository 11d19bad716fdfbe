"""Routed guest networking, inside network namespaces these tests make: a stand-in host (from the
session fixture) and a peer behind its uplink. No address is added and no packet sent elsewhere."""

import json
import subprocess
import sys
import time
import uuid

import pytest
from pyroute2 import IPRoute, netns

from contexts.engine.errors import InvalidSpec
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
