"""Building the JSON spec a host receives for an operation, from the panel's records."""

import ipaddress

from .choices import TrafficState
from .engine.spec import Address, ContextSpec, Limits, OperationSpec


def limits_for(plan, throttled: bool = False) -> Limits:
    """The plan's limits; a server over its monthly traffic whose plan throttles gets the lower rate."""
    return Limits(
        cpus=float(plan.cpu_cores),
        cpu_weight=plan.cpu_weight,
        memory_mib=plan.memory_mib,
        swap_mib=plan.swap_mib,
        disk_gib=plan.disk_gib,
        inodes=plan.inode_limit,
        pids=plan.process_limit,
        rate_mbit=min(plan.rate_mbit, plan.throttled_rate_mbit) if throttled else plan.rate_mbit,
    )


def address_for(ip) -> Address:
    network = ipaddress.ip_network(ip.pool.cidr)
    return Address(address=ip.address, prefix=network.prefixlen, gateway=ip.pool.gateway or None)


def context_spec(server, addresses=None) -> ContextSpec:
    if addresses is None:
        addresses = server.addresses.select_related("pool").order_by("pool__family", "assigned_at", "id")
    return ContextSpec(
        name=server.name,
        context_id=server.context_id,
        hostname=server.hostname,
        template=server.template.name,
        limits=limits_for(server.plan, throttled=server.traffic_state == TrafficState.THROTTLED),
        addresses=tuple(address_for(ip) for ip in addresses),
    )


def operation_spec(operation, addresses=None, params=None) -> dict:
    return OperationSpec(
        operation=str(operation.pk),
        kind=operation.kind,
        context=context_spec(operation.server, addresses),
        params=params or {},
    ).to_dict()
