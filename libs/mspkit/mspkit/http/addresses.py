"""Which resolved addresses a vendor connection may use: the DNS-rebinding half of the host policy."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from mspkit.http.errors import AddressNotAllowed
from mspkit.http.policy import HostPolicy

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the IP addresses a connection to it may use, in preference order.
Resolver = Callable[[str, int], Sequence[str]]

# Never a vendor, whatever the allowlist says: cloud metadata, "this host" and group addresses.
ALWAYS_REFUSED = frozenset({"unspecified", "link-local", "multicast"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve a host with the system resolver (getaddrinfo), keeping its order and dropping duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_v4(address: IPAddress) -> IPAddress:
    # An IPv6 spelling of an IPv4 address (mapped, compatible, NAT64) reaches that IPv4 host.
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or (0 < int(address) < 2**32 and not address.is_loopback):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def parse_address(text: str) -> IPAddress:
    """Parse an IP literal (IPv6 zone ids allowed), unwrapping IPv6 forms of IPv4 addresses."""
    return _embedded_v4(ipaddress.ip_address(text.strip("[]")))


def address_kind(address: IPAddress) -> str | None:
    """Name the special range an address is in (loopback, private...), or None for a public address."""
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        # Shared (CGNAT), reserved and documentation ranges: not a vendor on the Internet either.
        ("non-public", not address.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def _literal(host: str) -> IPAddress | None:
    try:
        return parse_address(host)
    except ValueError:
        return None


def _exempt_from(policy: HostPolicy) -> frozenset[tuple[IPAddress, int]]:
    # Only an entry that names the address itself exempts it: allowlisting a hostname must not
    # let that name be re-pointed (rebinding) at loopback or a private network.
    exempt: set[tuple[IPAddress, int]] = set()
    for origin in policy.allowed:
        if origin.host == "localhost":
            exempt.update((ipaddress.ip_address(ip), origin.port) for ip in ("127.0.0.1", "::1"))
        elif (address := _literal(origin.host)) is not None:
            exempt.add((address, origin.port))
    return frozenset(exempt)


@dataclass(frozen=True)
class AddressGuard:
    """Resolves a host once and says which of its addresses may be connected to, or refuses them all."""

    exempt: frozenset[tuple[IPAddress, int]] = field(default_factory=frozenset)
    denied: frozenset[tuple[str, int]] = field(default_factory=frozenset)
    resolver: Resolver = system_resolver

    @classmethod
    def for_policy(cls, policy: HostPolicy, resolver: Resolver | None = None) -> AddressGuard:
        """A guard exempting the policy's IP-literal entries and refusing its denied hosts' addresses."""
        return cls(exempt=_exempt_from(policy), denied=policy.denied, resolver=resolver or system_resolver)

    def _lookup(self, host: str, port: int) -> list[IPAddress]:
        literal = _literal(host)
        if literal is not None:
            return [literal]
        return [parse_address(text) for text in self.resolver(host, port)]

    def _denied_addresses(self, port: int) -> set[IPAddress]:
        found: set[IPAddress] = set()
        for host, denied_port in self.denied:
            if denied_port != port:
                continue
            try:
                found.update(self._lookup(host, denied_port))
            except (OSError, ValueError):
                # An unresolvable Vault name cannot be where this connection goes.
                continue
        return found

    def refusal(self, address: IPAddress, port: int, denied: Iterable[IPAddress] = ()) -> str | None:
        """Why a connection to address:port is refused, or None when it may be made."""
        if address in denied:
            return f"denied address {address}"
        kind = address_kind(address)
        if kind is None:
            return None
        if kind not in ALWAYS_REFUSED and (address, port) in self.exempt:
            return None
        return f"{kind} address {address}, which is not allowlisted"

    def addresses_for(self, host: str, port: int) -> list[str]:
        """Resolve host and return the addresses to connect to; AddressNotAllowed if any one is refused."""
        addresses = self._lookup(host, port)
        if not addresses:
            raise OSError(f"no address for {host}")
        denied = self._denied_addresses(port)
        for address in addresses:
            reason = self.refusal(address, port, denied)
            if reason is not None:
                # Refuse the whole name rather than pick its good addresses: a public vendor name that
                # also answers with an internal address is an attack or a mistake, not a fallback.
                raise AddressNotAllowed(f"request refused: {host}:{port} resolves to {reason}")
        return [str(address) for address in addresses]
