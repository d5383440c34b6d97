"""URL helpers: redaction for logs, canonical hosts, and origins (scheme, host, port)."""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import NamedTuple
from urllib.parse import urlsplit

import httpx

from mspkit.http.errors import HostNotAllowed

_DEFAULT_PORTS = {"http": 80, "https": 443}
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


class Origin(NamedTuple):
    """Where a URL connects: scheme, canonical host and port (the unit of the allowlist)."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def origin_of(url: str | httpx.URL) -> Origin:
    """Return the URL's origin; raises HostNotAllowed for unusable URLs."""
    host, port = host_port(url)
    parsed = url if isinstance(url, httpx.URL) else httpx.URL(str(url))
    return Origin(parsed.scheme, host, port)


def is_loopback_host(host: str) -> bool:
    """True for a loopback IP literal or a name RFC 6761 reserves for loopback (localhost)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_origin(entry: str) -> Origin:
    """Parse an allowlist entry "scheme://host[:port]"; a legacy bare "host:port" means https (http on loopback)."""
    text = entry.strip()
    if "://" not in text:
        # The old format had no scheme: never let it permit cleartext beyond this machine.
        try:
            host, port = parse_host_port(text)
        except ValueError:
            raise ValueError(f"allowlist entry {text!r} must be scheme://host[:port]") from None
        return Origin("http" if is_loopback_host(host) else "https", host, port)
    try:
        parsed = httpx.URL(text)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise ValueError("allowlist entry is not a valid URL") from None
    if parsed.userinfo or parsed.query or parsed.fragment or parsed.path not in ("", "/"):
        shown = redact_url(parsed)
        raise ValueError(f"allowlist entry {shown!r} must be scheme://host[:port], without path, query or userinfo")
    try:
        return origin_of(parsed)
    except HostNotAllowed as exc:
        raise ValueError(f"allowlist entry: {exc}") from None


def is_plain_http_url(url: str, *, https_only: bool = False, query_ok: bool = False) -> bool:
    """True for an absolute http(s) URL (https only if asked) with a host and no userinfo, spaces or control
    characters, and no query or fragment unless `query_ok`: a URL a setting or a PSA may hand us."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError:
        return False
    bare = not (parts.query or parts.fragment or url.endswith(("?", "#")))
    return (
        parts.scheme in (("https",) if https_only else ("http", "https"))
        and bool(parts.hostname)
        and "@" not in parts.netloc
        and (query_ok or bare)
        and not any(ch.isspace() or not ch.isprintable() for ch in url)
    )
