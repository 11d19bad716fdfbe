"""The spec of a context: everything a host needs to build and run it, as plain JSON-able data.

The panel builds one for every operation and sends it through the broker; the host decodes and
validates it here, so nothing unchecked from the wire reaches the kernel. No database ids: the
host never looks anything up.
"""

import ipaddress
import re
from dataclasses import asdict, dataclass, field

from .errors import InvalidSpec

SPEC_VERSION = 1
PARAMS = frozenset({"password_hash", "ssh_keys", "resume"})
CONTEXT_ID_RANGE = (2, 49151)  # Linux-VServer's static context ids
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
HOSTNAME_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
HOST_PORT_PATTERN = re.compile(r"(tcp|udp)/([1-9][0-9]{0,4})")  # no leading zero: one spelling per port
MAX_HOST_PORTS = 64


def check_name(name: str, what: str = "context name") -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InvalidSpec(
            f"Invalid {what} {name!r}: use 1-63 lower-case letters, digits and hyphens, "
            "starting with a letter or digit."
        )
    return name


def check_hostname(hostname: str) -> str:
    if (
        not isinstance(hostname, str)
        or not 0 < len(hostname) <= 253
        or not all(HOSTNAME_LABEL.match(label) for label in hostname.split("."))
    ):
        raise InvalidSpec(f"Invalid hostname {hostname!r}.")
    return hostname


def check_host_ports(ports) -> list[str]:
    """Ports on the host itself that a guest may reach (a resolver, a caching proxy), as "tcp/53" or
    "udp/53"; none is the safe default. Returns them lower-cased, each once, in a stable order."""
    if isinstance(ports, str | bytes) or not isinstance(ports, list | tuple):
        raise InvalidSpec(f"Host ports must be a list such as ['tcp/53', 'udp/53'], not {ports!r}.")
    found = set()
    for entry in ports:
        match = HOST_PORT_PATTERN.fullmatch(entry.strip().lower()) if isinstance(entry, str) else None
        if not match or int(match[2]) > 65535:
            raise InvalidSpec(
                f"Invalid host port {entry!r}: use tcp/PORT or udp/PORT with PORT in 1-65535, e.g. tcp/53."
            )
        found.add((match[1], int(match[2])))
    if len(found) > MAX_HOST_PORTS:
        raise InvalidSpec(f"At most {MAX_HOST_PORTS} host ports, not {len(found)}.")
    return [f"{protocol}/{port}" for protocol, port in sorted(found)]


@dataclass(frozen=True)
class Limits:
    cpus: float  # hard cap in cores: 0.5 is half of one core
    cpu_weight: int
    memory_mib: int
    swap_mib: int
    disk_gib: int
    inodes: int
    pids: int
    rate_mbit: int

    def __post_init__(self):
        if not self.cpus > 0:
            raise InvalidSpec(f"CPU cap must be above zero, not {self.cpus}.")
        for name in ("cpu_weight", "memory_mib", "disk_gib", "inodes", "pids", "rate_mbit"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise InvalidSpec(f"Limit {name} must be a positive whole number, not {value!r}.")
        if not isinstance(self.swap_mib, int) or self.swap_mib < 0:
            raise InvalidSpec(f"Limit swap_mib must be zero or more, not {self.swap_mib!r}.")


@dataclass(frozen=True)
class Address:
    address: str
    prefix: int
    gateway: str | None = None

    def __post_init__(self):
        try:
            interface = ipaddress.ip_interface(f"{self.address}/{self.prefix}")
            if self.gateway is not None and ipaddress.ip_address(self.gateway) not in interface.network:
                raise InvalidSpec(f"Gateway {self.gateway} is outside {interface.network}.")
        except ValueError as exc:
            raise InvalidSpec(f"Invalid address {self.address}/{self.prefix}: {exc}") from exc

    @property
    def family(self) -> int:
        return ipaddress.ip_address(self.address).version


@dataclass(frozen=True)
class ContextSpec:
    name: str
    context_id: int
    hostname: str
    template: str
    limits: Limits
    addresses: tuple[Address, ...] = ()
    # Ports of the host itself the guest may reach; older panels send none, which is also the safe default.
    host_ports: tuple[str, ...] = ()

    def __post_init__(self):
        check_name(self.name)
        check_name(self.template, "template name")
        check_hostname(self.hostname)
        low, high = CONTEXT_ID_RANGE
        if not isinstance(self.context_id, int) or not low <= self.context_id <= high:
            raise InvalidSpec(f"Context id must be between {low} and {high}, not {self.context_id!r}.")
        object.__setattr__(self, "host_ports", tuple(check_host_ports(self.host_ports)))  # frozen: normalised once

    def to_dict(self) -> dict:
        return asdict(self) | {"addresses": [asdict(a) for a in self.addresses], "host_ports": list(self.host_ports)}

    @classmethod
    def from_dict(cls, data: dict) -> "ContextSpec":
        try:
            return cls(
                name=data["name"],
                context_id=data["context_id"],
                hostname=data["hostname"],
                template=data["template"],
                limits=Limits(**data["limits"]),
                addresses=tuple(Address(**a) for a in data.get("addresses", ())),
                host_ports=data.get("host_ports", ()),
            )
        except (KeyError, TypeError) as exc:
            raise InvalidSpec(f"Malformed context spec: {exc}") from exc


@dataclass(frozen=True)
class OperationSpec:
    """One unit of work for a host: what to do (`kind`) to which context, under which operation id."""

    operation: str
    kind: str
    context: ContextSpec
    # Per kind: password_hash (crypt hash, never a password), ssh_keys, resume (unsuspend: start it).
    params: dict = field(default_factory=dict)
    version: int = SPEC_VERSION

    def __post_init__(self):
        if not isinstance(self.params, dict) or set(self.params) - PARAMS:
            raise InvalidSpec(f"Unknown operation parameters: {sorted(set(self.params) - PARAMS)}.")

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "operation": self.operation,
            "kind": self.kind,
            "context": self.context.to_dict(),
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "OperationSpec":
        if not isinstance(data, dict) or data.get("version") != SPEC_VERSION:
            raise InvalidSpec(
                f"Unsupported operation spec version {data.get('version') if isinstance(data, dict) else data!r}."
            )
        try:
            return cls(
                operation=str(data["operation"]),
                kind=str(data["kind"]),
                context=ContextSpec.from_dict(data["context"]),
                params=data.get("params") or {},
            )
        except KeyError as exc:
            raise InvalidSpec(f"Malformed operation spec: missing {exc}") from exc
