"""A context's network: its own namespace, joined to the host by a veth pair, with routed addresses.

The guest's addresses sit on its `eth0` as /32 and /128, with the host's end of the veth as its
gateway (169.254.0.1 and fe80::1, the same on every veth). The host routes each address to the
veth, answers ARP and NDP for them on its uplink (so pool addresses work without a bridge), drops
packets whose source the guest was not given (nftables), and shapes both directions with tbf.
The guest has no NET_ADMIN, so it can change none of this.

The host side lives in the root network namespace, or in `host_netns` (the tests' stand-in host).
"""

import ipaddress
import os
import subprocess

from . import libc
from .errors import EngineError, InvalidSpec
from .spec import check_host_ports

GATEWAY4 = "169.254.0.1"
GATEWAY6 = "fe80::1"
NETNS_DIR = "/run/netns"
# Addresses the host hands out are known unique (the panel allocates them): usable at once, no DAD wait.
IFA_F_NODAD = 0x02


def netns_name(name: str) -> str:
    return f"ctx-{name}"


def host_ifname(context_id: int) -> str:
    return f"ctx{context_id}"  # at most 8 characters: interface names stop at 15


def parse_addresses(cidrs) -> list[str]:
    """Plain addresses from CIDR or bare input; refuses anything a guest must not hold."""
    out = []
    for text in cidrs:
        try:
            ip = ipaddress.ip_interface(str(text).strip()).ip
        except ValueError as exc:
            raise InvalidSpec(f"Invalid address {text!r}: {exc}") from exc
        if ip.is_loopback or ip.is_multicast or ip.is_unspecified or ip.is_link_local or ip.is_reserved:
            raise InvalidSpec(f"{ip} cannot be a guest's address (loopback, multicast, link-local or reserved).")
        out.append(str(ip))
    if len(set(out)) != len(out):
        raise InvalidSpec("An address is listed twice.")
    return out


# Never forwarded to from a guest: link-local (cloud metadata services at 169.254.169.254 hand out
# the host's credentials), plus what staff list in CONTEXTS_PROTECTED_NETWORKS (the management
# network with the broker, out-of-band interfaces).
ALWAYS_PROTECTED = ("169.254.0.0/16",)
PROTECTED_ENV = "CONTEXTS_PROTECTED_NETWORKS"


def protected_networks(text: str | None) -> list[str]:
    """The networks of CONTEXTS_PROTECTED_NETWORKS ("10.0.0.0/24, fd00:1::/64"), checked."""
    out = []
    for item in (text or "").replace(",", " ").split():
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError as exc:
            raise InvalidSpec(f"{PROTECTED_ENV}: {item!r} is not a network ({exc}); e.g. 10.0.0.0/24.") from exc
    return out


def nft_ruleset(table: str, ifname: str, addresses: list[str], host_ports=(), protected=()) -> str:
    """Replace the guest's table in one transaction. Its chains, all for its veth only:
    - spoofing (prerouting, before conntrack): anything with a source the guest was not given;
    - to_host (prerouting, before any DNAT) and input: packets for the host itself are dropped,
      except neighbour discovery, echo requests to the gateway, replies to what the host opened and
      the plan's `host_ports`. Prerouting sees the destination the guest chose, so a port the host
      publishes by DNAT (a container's Redis) is the host's too; input catches what a REDIRECT sent
      to the host;
    - forward: nothing to link-local addresses or the `protected` networks.
    (Adding then deleting first makes the delete safe when the table does not exist yet.)"""
    v4 = [a for a in addresses if ipaddress.ip_address(a).version == 4]
    v6 = [a for a in addresses if ipaddress.ip_address(a).version == 6]
    spoofing = [
        f'iifname "{ifname}" ip saddr != {{ {", ".join(v4)} }} drop'
        if v4
        else f'iifname "{ifname}" meta nfproto ipv4 drop',
        # Link-local sources stay allowed: neighbour discovery needs them.
        f'iifname "{ifname}" ip6 saddr != {{ fe80::/10, {", ".join(v6)} }} drop'
        if v6
        else f'iifname "{ifname}" ip6 saddr != fe80::/10 drop',
    ]
    ports = {"tcp": [], "udp": []}
    for entry in check_host_ports(list(host_ports)):  # checked again: this text goes to nft
        protocol, port = entry.split("/")
        ports[protocol].append(port)

    def to_host(scope: str) -> list[str]:
        match = f'iifname "{ifname}" {scope}'
        return [
            # Replies to connections the host opened (and their ICMP errors). Only the reply direction: a
            # guest's own first packet is NEW and dropped below, so it never makes an entry of its own,
            # and its connections to a host port that is taken away stop at once (they match no rule).
            f"{match}ct direction reply ct state established,related accept",
            # IPv6 needs these to find the gateway and to answer for the guest's addresses (ARP is not inet).
            f"{match}icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit }} accept",
            f"{match}ip daddr {GATEWAY4} icmp type echo-request accept",
            f"{match}ip6 daddr {GATEWAY6} icmpv6 type echo-request accept",
            *(
                f"{match}{protocol} dport {{ {', '.join(numbers)} }} accept"
                for protocol, numbers in ports.items()
                if numbers
            ),
            # The host's own services (its uplink address, the gateway, a broker on 0.0.0.0) are not the guest's.
            f"{match}drop",
        ]

    networks = [ipaddress.ip_network(n, strict=False) for n in (*ALWAYS_PROTECTED, *protected)]
    forward = [
        f'iifname "{ifname}" {family} daddr {{ {", ".join(str(n) for n in networks if n.version == version)} }} drop'
        for family, version in (("ip", 4), ("ip6", 6))
        if any(n.version == version for n in networks)
    ]

    def chain(name: str, hook: str, priority: int, rules: list[str]) -> str:
        body = "".join(f"    {r}\n" for r in rules)
        return f"  chain {name} {{\n    type filter hook {hook} priority {priority}; policy accept;\n{body}  }}\n"

    return (
        f"add table inet {table}\ndelete table inet {table}\n"
        f"table inet {table} {{\n{chain('prerouting', 'prerouting', -300, spoofing)}"
        f"{chain('to_host', 'prerouting', -150, to_host('fib daddr type { local, broadcast, multicast } '))}"
        f"{chain('input', 'input', 0, to_host(''))}"
        f"{chain('forward', 'forward', 0, forward)}}}\n"
    )


class Network:
    def __init__(self, host_netns: str | None = None, uplink: str | None = None, protected=()):
        self.host_netns = host_netns
        self.uplink = uplink
        self.protected = list(protected)  # networks guests are never forwarded to, besides link-local

    # helpers that act in the host's namespace

    def _ipr(self, netns: str | None = None):
        from pyroute2 import IPRoute  # imported here: the start path of the guest never needs it

        return IPRoute(netns=netns) if netns else IPRoute()

    def _enter_host_netns(self):
        if self.host_netns:
            fd = os.open(os.path.join(NETNS_DIR, self.host_netns), os.O_RDONLY)
            libc.setns(fd, libc.CLONE_NEWNET)
            os.close(fd)

    def _host_run(self, argv: list[str], stdin: str = "") -> None:
        result = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            preexec_fn=self._enter_host_netns if self.host_netns else None,
        )
        if result.returncode != 0:
            raise EngineError(f"{argv[0]} failed: {result.stderr.strip()[-300:]}")

    def _host_sysctl(self, key: str, value: str) -> None:
        path = "/proc/sys/" + key.replace(".", "/")
        self._host_run(["sh", "-c", 'printf %s "$2" > "$1"', "sysctl", path, value])

    def _uplink(self, host) -> str | None:
        if self.uplink:
            return self.uplink
        for route in host.get_default_routes(family=2):
            index = route.get("oif") or route.get_attr("RTA_OIF")
            links = host.get_links(index)
            if links:
                return links[0].get_attr("IFLA_IFNAME")
        return None

    # lifecycle

    def setup(self, name: str, context_id: int, addresses: list[str], rate_mbit: int | None, host_ports=()) -> str:
        """Create the namespace, veth, addresses, routes, filters and shaping; return the namespace path.
        `host_ports` ("tcp/53", ...) are the only ports of the host itself the guest may reach."""
        from pyroute2 import netns

        self.teardown(name, context_id, addresses)  # leftovers of a crashed run
        nsname, ifname, peer = netns_name(name), host_ifname(context_id), f"ctx{context_id}g"
        netns.create(nsname)
        try:
            with self._ipr(self.host_netns) as host:
                host.link("add", ifname=ifname, kind="veth", peer={"ifname": peer})
                host.link("set", index=host.link_lookup(ifname=peer)[0], net_ns_fd=nsname)
                index = host.link_lookup(ifname=ifname)[0]
                host.link("set", index=index, state="up")
                host.addr("add", index=index, address=GATEWAY4, prefixlen=32)
                host.addr("add", index=index, address=GATEWAY6, prefixlen=64, flags=IFA_F_NODAD)
                uplink = self._uplink(host)
                for address in addresses:
                    self._route_in(host, index, address, uplink)
                if rate_mbit:
                    host.tc("add", "tbf", index, rate=f"{rate_mbit}mbit", burst=_burst(rate_mbit), latency="50ms")
            with self._ipr(nsname) as guest:
                guest.link("set", index=guest.link_lookup(ifname="lo")[0], state="up")
                index = guest.link_lookup(ifname=peer)[0]
                guest.link("set", index=index, ifname="eth0")
                guest.link("set", index=index, state="up")
                guest.route("add", dst=f"{GATEWAY4}/32", oif=index, scope=253)
                guest.route("add", dst="0.0.0.0/0", gateway=GATEWAY4, oif=index)
                for address in addresses:
                    ip = ipaddress.ip_address(address)
                    guest.addr(
                        "add",
                        index=index,
                        address=address,
                        prefixlen=ip.max_prefixlen,
                        **({"flags": IFA_F_NODAD} if ip.version == 6 else {}),
                    )
                if any(ipaddress.ip_address(a).version == 6 for a in addresses):
                    guest.route("add", dst="::/0", gateway=GATEWAY6, oif=index, family=10)
                if rate_mbit:
                    guest.tc("add", "tbf", index, rate=f"{rate_mbit}mbit", burst=_burst(rate_mbit), latency="50ms")
            for key in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"):
                self._host_sysctl(key, "1")
            self.set_filter(context_id, addresses, host_ports)
        except BaseException:
            self.teardown(name, context_id, addresses)
            raise
        return os.path.join(NETNS_DIR, nsname)

    def _route_in(self, host, index: int, address: str, uplink: str | None) -> None:
        ip = ipaddress.ip_address(address)
        family = 2 if ip.version == 4 else 10
        host.route("add", dst=f"{address}/{ip.max_prefixlen}", oif=index, family=family)
        if uplink:  # answer ARP / NDP for the address on the uplink, as if it lived there
            if ip.version == 4:
                self._host_sysctl(f"net.ipv4.conf.{uplink}.proxy_arp", "1")
            else:
                self._host_sysctl(f"net.ipv6.conf.{uplink}.proxy_ndp", "1")
                self._host_run(["ip", "-6", "neigh", "replace", "proxy", address, "dev", uplink])

    def set_rate(self, name: str, context_id: int, rate_mbit: int | None) -> None:
        """Change the rate limit of a running context's both directions at once."""
        for netns, ifname in ((self.host_netns, host_ifname(context_id)), (netns_name(name), "eth0")):
            with self._ipr(netns) as ipr:
                index = ipr.link_lookup(ifname=ifname)[0]
                if rate_mbit:
                    ipr.tc("replace", "tbf", index, rate=f"{rate_mbit}mbit", burst=_burst(rate_mbit), latency="50ms")
                elif any(q.get("kind") == "tbf" for q in ipr.get_qdiscs(index=index)):
                    ipr.tc("del", index=index, parent=0xFFFFFFFF, handle=0)  # back to the default qdisc

    def change_address(
        self, name: str, context_id: int, address: str, add: bool, addresses: list[str], host_ports=()
    ) -> None:
        """Add or remove one address live; `addresses` is the full list afterwards and `host_ports` the
        guest's current ones, for the filter."""
        ip = ipaddress.ip_address(address)
        family = 2 if ip.version == 4 else 10
        with self._ipr(netns_name(name)) as guest:
            index = guest.link_lookup(ifname="eth0")[0]
            guest.addr(
                "add" if add else "del",
                index=index,
                address=address,
                prefixlen=ip.max_prefixlen,
                **({"flags": IFA_F_NODAD} if ip.version == 6 and add else {}),
            )
            if add and ip.version == 6 and not guest.get_default_routes(family=10):
                guest.route("add", dst="::/0", gateway=GATEWAY6, oif=index, family=10)
        with self._ipr(self.host_netns) as host:
            index = host.link_lookup(ifname=host_ifname(context_id))[0]
            if add:
                self._route_in(host, index, address, self._uplink(host))
            else:
                host.route("del", dst=f"{address}/{ip.max_prefixlen}", oif=index, family=family)
                if ip.version == 6 and self._uplink(host):
                    self._host_run(["ip", "-6", "neigh", "del", "proxy", address, "dev", self._uplink(host)])
        self.set_filter(context_id, addresses, host_ports)

    def set_filter(self, context_id: int, addresses: list[str], host_ports=()) -> None:
        """Rewrite a running guest's nftables table (one transaction: no moment without a filter)."""
        self._host_run(
            ["nft", "-f", "-"],
            nft_ruleset(f"ctx_{context_id}", host_ifname(context_id), addresses, host_ports, self.protected),
        )

    def counters(self, context_id: int) -> dict:
        """Bytes the guest sent and received, as its host-side veth saw them (0 when it has none)."""
        with self._ipr(self.host_netns) as host:
            found = host.link_lookup(ifname=host_ifname(context_id))
            if not found:
                return {"net_out_bytes": 0, "net_in_bytes": 0}
            stats = host.get_links(found[0])[0].get_attr("IFLA_STATS64")
            return {"net_out_bytes": stats["rx_bytes"], "net_in_bytes": stats["tx_bytes"]}

    def teardown(self, name: str, context_id: int, addresses=()) -> dict:
        """Remove everything `setup` made; return the counters read just before the veth went."""
        from pyroute2 import netns

        final = self.counters(context_id)
        with self._ipr(self.host_netns) as host:
            found = host.link_lookup(ifname=host_ifname(context_id))
            if found:
                host.link("del", index=found[0])  # its peer, routes and qdiscs go with it
            uplink = self._uplink(host)
        for address in addresses:  # proxy entries live on the uplink: they outlive the veth
            if uplink and ipaddress.ip_address(address).version == 6:
                try:
                    self._host_run(["ip", "-6", "neigh", "del", "proxy", address, "dev", uplink])
                except EngineError:
                    pass
        try:
            self._host_run(["nft", "-f", "-"], f"add table inet ctx_{context_id}\ndelete table inet ctx_{context_id}\n")
        except EngineError:
            pass
        if os.path.exists(os.path.join(NETNS_DIR, netns_name(name))):
            netns.remove(netns_name(name))
        return final


def _burst(rate_mbit: int) -> int:
    """tbf bucket: at least 10 ms at the rate and one jumbo frame's worth, for steady TCP."""
    return max(rate_mbit * 1_000_000 // 8 // 100, 16 * 1024)
