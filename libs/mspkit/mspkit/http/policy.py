"""The origin policy applied to every request and redirect: an exact allowlist minus denied hosts."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx

from mspkit.http.errors import HostNotAllowed, RedirectRefused
from mspkit.http.urls import Origin, is_loopback_host, origin_of, parse_host_port, parse_origin

_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))


def _is_link_local(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in net for net in _LINK_LOCAL)


@dataclass(frozen=True)
class HostPolicy:
    """Which origins may be contacted: exact scheme+host+port entries, minus denied and link-local hosts."""

    allowed: frozenset[Origin] = field(default_factory=frozenset)
    # Denied entries are host:port on any scheme: Vault must not be reachable by a scheme trick either.
    denied: frozenset[tuple[str, int]] = field(default_factory=frozenset)

    @classmethod
    def build(cls, allowed: Iterable[str], denied: Iterable[str] = ()) -> HostPolicy:
        """Build a policy from "scheme://host[:port]" entries and denied "host:port"/URLs (denied wins)."""
        return cls(
            allowed=frozenset(parse_origin(a) for a in allowed if a.strip()),
            denied=frozenset(parse_host_port(d) for d in denied if d.strip()),
        )

    def refusal(self, url: str | httpx.URL) -> str | None:
        """Return why the URL may not be contacted, or None when it may."""
        try:
            origin = origin_of(url)
        except HostNotAllowed as exc:
            return str(exc)
        if _is_link_local(origin.host):
            return f"link-local address {origin.host}"
        if (origin.host, origin.port) in self.denied:
            return f"denied host {origin.host}:{origin.port}"
        if origin not in self.allowed:
            # Loopback lands here too unless explicitly allowlisted.
            kind = "loopback origin" if is_loopback_host(origin.host) else "origin"
            return f"{kind} {origin} is not allowlisted"
        return None

    def is_allowed(self, url: str | httpx.URL) -> bool:
        """True when the URL may be contacted."""
        return self.refusal(url) is None

    def check(self, url: str | httpx.URL, *, redirect: bool = False) -> None:
        """Raise HostNotAllowed (RedirectRefused for a redirect target) unless the URL may be contacted."""
        reason = self.refusal(url)
        if reason is None:
            return
        if redirect:
            raise RedirectRefused(f"redirect refused: {reason}")
        raise HostNotAllowed(f"request refused: {reason}")
