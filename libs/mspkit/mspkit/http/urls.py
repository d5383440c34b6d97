"""URL helpers: redaction for logs and the host:port policy applied to every request and redirect."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx

from mspkit.http.errors import HostNotAllowed, RedirectRefused

_DEFAULT_PORTS = {"http": 80, "https": 443}
_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
# Hex, octal and integer IPv4 spellings ("0x7f.1", "2130706433") reach the same socket as the dotted form.
_IPV4_LIKE = re.compile(r"^[0-9a-fA-Fx.]+$")


def redact_url(url: str | httpx.URL) -> str:
    """Return scheme://host[:port]/path with userinfo, query and fragment removed (safe to log)."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(str(url))
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid url>"
    host = parsed.host
    if ":" in host:
        host = f"[{host}]"
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{host}{port}{parsed.path}"


def canonical_host(host: str) -> str:
    """Lower-case a host and normalise IP literals, so that every spelling of an address compares equal."""
    name = host.strip().strip("[]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    if _IPV4_LIKE.match(name) and any(ch.isdigit() for ch in name):
        try:
            return socket.inet_ntoa(socket.inet_aton(name))
        except OSError:
            return name
    return name


def host_port(url: str | httpx.URL) -> tuple[str, int]:
    """Return the canonical (host, port) a URL connects to; raises HostNotAllowed for unusable URLs."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(str(url))
    except (httpx.InvalidURL, TypeError, ValueError):
        raise HostNotAllowed("invalid URL") from None
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.host:
        raise HostNotAllowed(f"unsupported URL {redact_url(parsed)}")
    return canonical_host(parsed.host), parsed.port or _DEFAULT_PORTS[parsed.scheme]


def parse_host_port(entry: str) -> tuple[str, int]:
    """Parse an allow/deny entry given as "host:port", "[v6]:port" or a URL (e.g. MSP_VAULT_ADDR)."""
    text = entry.strip()
    if "://" in text:
        return host_port(text)
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"expected host:port, got {text!r}")
    return canonical_host(host), int(port)


def _is_link_local(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in net for net in _LINK_LOCAL)


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class HostPolicy:
    """Which host:port pairs may be contacted: an exact allowlist, minus denied and link-local hosts."""

    allowed: frozenset[tuple[str, int]] = field(default_factory=frozenset)
    denied: frozenset[tuple[str, int]] = field(default_factory=frozenset)

    @classmethod
    def build(cls, allowed: Iterable[str], denied: Iterable[str] = ()) -> HostPolicy:
        """Build a policy from "host:port" strings or URLs (denied wins over allowed)."""
        return cls(
            allowed=frozenset(parse_host_port(a) for a in allowed if a.strip()),
            denied=frozenset(parse_host_port(d) for d in denied if d.strip()),
        )

    def refusal(self, url: str | httpx.URL) -> str | None:
        """Return why the URL may not be contacted, or None when it may."""
        try:
            host, port = host_port(url)
        except HostNotAllowed as exc:
            return str(exc)
        if _is_link_local(host):
            return f"link-local address {host}"
        if (host, port) in self.denied:
            return f"denied host {host}:{port}"
        if (host, port) not in self.allowed:
            # Loopback lands here too unless explicitly allowlisted.
            kind = "loopback host" if _is_loopback(host) else "host"
            return f"{kind} {host}:{port} is not allowlisted"
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
