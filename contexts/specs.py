"""Building the JSON spec a host receives for an operation, from the panel's records."""

import ipaddress

from .engine.spec import Address, ContextSpec, Limits, OperationSpec


def limits_for(server) -> Limits:
    """The server's plan's limits, with the network rate in force (a throttle's, while there is one)."""
    plan = server.plan
    return Limits(
        cpus=float(plan.cpu_cores),
        cpu_weight=plan.cpu_weight,
        memory_mib=plan.memory_mib,
        swap_mib=plan.swap_mib,
        disk_gib=plan.disk_gib,
        inodes=plan.inode_limit,
        pids=plan.process_limit,
        rate_mbit=server.rate_mbit,
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
        limits=limits_for(server),
        addresses=tuple(address_for(ip) for ip in addresses),
        host_ports=tuple(server.plan.host_port_list),
    )


def operation_spec(operation, addresses=None, params=None) -> dict:
    return OperationSpec(
        operation=str(operation.pk),
        kind=operation.kind,
        context=context_spec(operation.server, addresses),
        params=params or {},
    ).to_dict()
