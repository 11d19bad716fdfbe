"""Host ports and the host firewall's rules, without root: the format, its checks at the spec and in
the ruleset, and the operations that carry them. (The firewall against real guests: test_network.)"""

import pytest

from contexts.engine import network, operations
from contexts.engine.errors import InvalidSpec
from contexts.engine.network import nft_ruleset
from contexts.engine.spec import MAX_HOST_PORTS, ContextSpec, Limits, OperationSpec, check_host_ports

LIMITS = dict(cpus=0.5, cpu_weight=100, memory_mib=512, swap_mib=0, disk_gib=10, inodes=1000, pids=64, rate_mbit=10)


def spec(**overrides) -> ContextSpec:
    values = dict(name="vps-1", context_id=1000, hostname="vps-1.example", template="busybox", limits=Limits(**LIMITS))
    return ContextSpec(**values | overrides)


def test_host_ports_are_written_one_way():
    assert check_host_ports([]) == []
    assert check_host_ports(("udp/53", " TCP/53 ", "tcp/3128", "tcp/53", "tcp/65535", "udp/1")) == [
        "tcp/53",
        "tcp/3128",
        "tcp/65535",
        "udp/1",
        "udp/53",
    ]


@pytest.mark.parametrize(
    "entry",
    ["tcp/0", "tcp/65536", "tcp/053", "icmp/8", "sctp/53", "53", "tcp", "tcp/", "tcp:53", "tcp/5 3", "tcp/５３"]
    + ["tcp/53 } accept", 'tcp/53" drop', "tcp/53\nudp/1", "", None, 53, ["tcp/53"]],
)
def test_bad_host_ports_are_refused_by_name(entry):
    with pytest.raises(InvalidSpec, match="Invalid host port .*use tcp/PORT or udp/PORT with PORT in 1-65535"):
        check_host_ports([entry])


def test_host_ports_must_be_a_short_list():
    with pytest.raises(InvalidSpec, match="must be a list"):
        check_host_ports("tcp/53")  # not ["t", "c", "p", ...]
    with pytest.raises(InvalidSpec, match="must be a list"):
        check_host_ports(None)
    with pytest.raises(InvalidSpec, match=f"At most {MAX_HOST_PORTS}"):
        check_host_ports([f"tcp/{port}" for port in range(1, MAX_HOST_PORTS + 2)])


def test_the_spec_carries_host_ports_and_older_specs_still_decode():
    original = OperationSpec(operation="op", kind="change_plan", context=spec(host_ports=["udp/53", "tcp/53"]))
    data = original.to_dict()
    assert data["context"]["host_ports"] == ["tcp/53", "udp/53"]
    assert OperationSpec.from_dict(data) == original
    del data["context"]["host_ports"]  # from a panel that predates them: none
    assert OperationSpec.from_dict(data).context.host_ports == ()
    with pytest.raises(InvalidSpec, match="Invalid host port"):
        OperationSpec.from_dict(original.to_dict() | {"context": data["context"] | {"host_ports": ["tcp/99999"]}})
    with pytest.raises(InvalidSpec, match="must be a list"):
        spec(host_ports="tcp/53")


def test_the_host_chains_drop_everything_for_the_host_but_what_the_guest_needs():
    text = nft_ruleset(
        "ctx_7", "ctx7", ["192.0.2.7", "2001:db8::7"], ["udp/53", "tcp/53", "tcp/3128"], ["10.9.0.0/16", "fd00:9::/64"]
    )
    prerouting = (
        "  chain prerouting {\n"
        "    type filter hook prerouting priority -300; policy accept;\n"
        '    iifname "ctx7" ip saddr != { 192.0.2.7 } drop\n'
        '    iifname "ctx7" ip6 saddr != { fe80::/10, 2001:db8::7 } drop\n'
        "  }\n"
    )

    def to_host(name, hook, priority, scope):
        return (
            f"  chain {name} {{\n"
            f"    type filter hook {hook} priority {priority}; policy accept;\n"
            f'    iifname "ctx7" {scope}ct direction reply ct state established,related accept\n'
            f'    iifname "ctx7" {scope}icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit }}'
            " accept\n"
            f'    iifname "ctx7" {scope}ip daddr 169.254.0.1 icmp type echo-request accept\n'
            f'    iifname "ctx7" {scope}ip6 daddr fe80::1 icmpv6 type echo-request accept\n'
            f'    iifname "ctx7" {scope}tcp dport {{ 53, 3128 }} accept\n'
            f'    iifname "ctx7" {scope}udp dport {{ 53 }} accept\n'
            f'    iifname "ctx7" {scope}drop\n'
            "  }\n"
        )

    forward = (
        "  chain forward {\n"
        "    type filter hook forward priority 0; policy accept;\n"
        '    iifname "ctx7" ip daddr { 169.254.0.0/16, 10.9.0.0/16 } drop\n'
        '    iifname "ctx7" ip6 daddr { fd00:9::/64 } drop\n'
        "  }\n"
    )
    assert text == (
        "add table inet ctx_7\ndelete table inet ctx_7\ntable inet ctx_7 {\n"
        + prerouting
        + to_host("to_host", "prerouting", -150, "fib daddr type { local, broadcast, multicast } ")
        + to_host("input", "input", 0, "")
        + forward
        + "}\n"
    )


def test_protected_networks_are_checked():
    assert network.protected_networks(" 10.0.0.1/24, fd00::/64 ") == ["10.0.0.0/24", "fd00::/64"]
    assert network.protected_networks("") == []
    with pytest.raises(InvalidSpec, match="CONTEXTS_PROTECTED_NETWORKS: 'x' is not a network"):
        network.protected_networks("10.0.0.0/8 x")


def test_without_host_ports_no_port_is_open():
    text = nft_ruleset("ctx_7", "ctx7", [])
    assert "dport" not in text
    assert text.index("echo-request accept") < text.index('    iifname "ctx7" drop\n  }\n  chain forward')


def test_the_ruleset_never_carries_an_unchecked_port():
    with pytest.raises(InvalidSpec, match="Invalid host port"):
        nft_ruleset("ctx_7", "ctx7", [], ["tcp/53 } accept; chain x {"])


class RecordingEngine:
    """Stands in for Lifecycle: what the operations ask of it."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))


def test_a_build_carries_the_plans_host_ports():
    engine = RecordingEngine()
    context = spec(host_ports=["tcp/53"])
    operations._build(engine, OperationSpec(operation="op", kind="create", context=context), lambda *_: None)
    ((name, args, kwargs),) = engine.calls
    assert name == "build" and args == ("vps-1", "busybox") and kwargs["host_ports"] == ["tcp/53"]


def test_a_limits_operation_reapplies_them():
    engine = RecordingEngine()
    engine.state = type("State", (), {"context_names": staticmethod(lambda: ["vps-1"])})()
    context = spec(host_ports=["udp/53"])
    operations.apply_limits(engine, OperationSpec(operation="op", kind="limits", context=context), lambda *_: None)
    assert [c[0] for c in engine.calls] == ["set_limits", "set_host_ports"]
    assert engine.calls[1][1] == ("vps-1", ["udp/53"])
