"""The host spec: round trip and refusal of anything unsafe, before it reaches a host."""

import pytest

from contexts.engine.errors import InvalidSpec
from contexts.engine.hostinfo import parse_meminfo_total_kib, read_capacity
from contexts.engine.spec import Address, ContextSpec, Limits, OperationSpec

LIMITS = dict(cpus=0.5, cpu_weight=100, memory_mib=512, swap_mib=0, disk_gib=10, inodes=1000, pids=64, rate_mbit=10)


def spec(**overrides):
    values = dict(
        name="vps-1",
        context_id=1000,
        hostname="www.example.com",
        template="busybox",
        limits=Limits(**LIMITS),
        addresses=(Address("192.0.2.2", 24, "192.0.2.1"), Address("2001:db8::2", 64)),
    )
    values.update(overrides)
    return ContextSpec(**values)


def test_round_trip_through_json_types():
    original = OperationSpec(operation="abc", kind="create", context=spec())
    assert OperationSpec.from_dict(original.to_dict()) == original
    assert original.to_dict()["context"]["addresses"][0] == {
        "address": "192.0.2.2",
        "prefix": 24,
        "gateway": "192.0.2.1",
    }


@pytest.mark.parametrize("name", ["../etc", "a/b", "", "-x", "A", "x" * 64, "a b", "a;rm"])
def test_names_that_could_escape_or_inject_are_refused(name):
    with pytest.raises(InvalidSpec, match="Invalid context name"):
        spec(name=name)
    with pytest.raises(InvalidSpec, match="Invalid template name"):
        spec(template=name)


@pytest.mark.parametrize("hostname", ["", "-a.com", "a..b", "a_b.com", "x" * 64, "$(reboot)"])
def test_bad_hostnames_are_refused(hostname):
    with pytest.raises(InvalidSpec, match="Invalid hostname"):
        spec(hostname=hostname)


def test_bad_addresses_and_limits_are_refused():
    with pytest.raises(InvalidSpec, match="Invalid address"):
        Address("192.0.2.300", 24)
    with pytest.raises(InvalidSpec, match="outside"):
        Address("192.0.2.2", 24, "198.51.100.1")
    with pytest.raises(InvalidSpec, match="memory_mib"):
        Limits(**(LIMITS | {"memory_mib": 0}))
    with pytest.raises(InvalidSpec, match="CPU cap"):
        Limits(**(LIMITS | {"cpus": 0}))
    with pytest.raises(InvalidSpec, match="Context id"):
        spec(context_id=0)


def test_malformed_messages_are_refused():
    with pytest.raises(InvalidSpec, match="version"):
        OperationSpec.from_dict({"version": 99})
    with pytest.raises(InvalidSpec, match="Malformed"):
        OperationSpec.from_dict({"version": 1, "operation": "x", "kind": "start", "context": {"name": "vps-1"}})


def test_meminfo_parsing_and_capacity():
    assert parse_meminfo_total_kib("MemFree: 5 kB\nMemTotal:  2048 kB\n") == 2048
    with pytest.raises(ValueError):
        parse_meminfo_total_kib("MemFree: 5 kB\n")
    capacity = read_capacity()
    assert capacity.cpus >= 1 and capacity.memory_mib > 0 and capacity.disk_gib > 0
