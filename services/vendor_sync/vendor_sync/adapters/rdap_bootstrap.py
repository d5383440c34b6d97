"""The IANA RDAP DNS bootstrap registry (RFC 9224): validation, longest-label matching and caching."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from mspkit.http import VendorPermanentError

IANA_DNS_BOOTSTRAP_URL = "https://data.iana.org/rdap/dns.json"
DEFAULT_TTL_S = 86_400.0
# Even if a server says "cache for a year", re-read weekly so a moved registry is noticed.
MAX_TTL_S = 7 * 86_400.0
_MAX_SERVICES = 5_000
_MAX_ENTRIES = 2_000
_MAX_URLS = 20
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")


class RdapBootstrapError(VendorPermanentError):
    """The bootstrap file is missing, not JSON, or not in the RFC 9224 shape."""


class RdapNoService(VendorPermanentError):
    """No RDAP service is registered for the domain's TLD."""


def _fail(message: str) -> RdapBootstrapError:
    return RdapBootstrapError(f"malformed RDAP bootstrap file: {message}", vendor="rdap")


def _base_url(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > 2048:
        raise _fail(f"{where}: a URL must be a string")
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError):
        raise _fail(f"{where}: invalid URL") from None
    if url.scheme not in ("http", "https") or not url.host or url.query or url.fragment:
        raise _fail(f"{where}: not a plain http(s) base URL")
    return value if value.endswith("/") else value + "/"


@dataclass(frozen=True)
class DnsBootstrap:
    """Label suffix (e.g. "com", "co.uk") -> RDAP base URLs, each ending in "/"."""

    services: dict[str, tuple[str, ...]]
    publication: str | None = None

    @classmethod
    def parse(cls, data: Any) -> DnsBootstrap:
        """Validate a parsed dns.json; any malformed service entry rejects the whole file."""
        if not isinstance(data, dict):
            raise _fail("top level is not an object")
        version = data.get("version")
        if version is not None and not isinstance(version, str):
            raise _fail("version is not a string")
        raw = data.get("services")
        if not isinstance(raw, list) or not raw:
            raise _fail("services is missing or empty")
        if len(raw) > _MAX_SERVICES:
            raise _fail("too many services")
        services: dict[str, tuple[str, ...]] = {}
        for index, entry in enumerate(raw):
            where = f"services[{index}]"
            if not isinstance(entry, list) or len(entry) != 2:
                raise _fail(f"{where} is not a [labels, urls] pair")
            labels, urls = entry
            if not isinstance(labels, list) or not labels or len(labels) > _MAX_ENTRIES:
                raise _fail(f"{where}[0] is not a non-empty list of labels")
            if not isinstance(urls, list) or not urls or len(urls) > _MAX_URLS:
                raise _fail(f"{where}[1] is not a non-empty list of URLs")
            bases = tuple(_base_url(u, f"{where}[1]") for u in urls)
            # RFC 7480 prefers https when a registry offers both.
            ordered = tuple(sorted(bases, key=lambda u: not u.startswith("https://")))
            for label in labels:
                if not isinstance(label, str):
                    raise _fail(f"{where}[0] holds a non-string label")
                key = label.strip().lower().rstrip(".")
                if not _LABEL.match(key):
                    raise _fail(f"{where}[0] holds an invalid label")
                services.setdefault(key, ordered)
        publication = data.get("publication")
        return cls(services=services, publication=publication if isinstance(publication, str) else None)

    def base_urls(self, a_label: str) -> tuple[str, ...]:
        """Base URLs for a domain, matched on its longest registered label suffix."""
        labels = a_label.lower().rstrip(".").split(".")
        for start in range(len(labels)):
            found = self.services.get(".".join(labels[start:]))
            if found:
                return found
        raise RdapNoService(f"no RDAP service registered for {labels[-1]!r}", vendor="rdap")


def cache_ttl(cache_control: str | None, *, default: float = DEFAULT_TTL_S) -> float:
    """Seconds a response may be cached per Cache-Control (max-age; no-store/no-cache -> 0)."""
    if not cache_control:
        return default
    ttl: float | None = None
    for part in cache_control.split(","):
        name, _, value = part.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age":
            digits = value.strip().strip('"')
            if digits.isdigit():
                ttl = float(int(digits[:12]))
    return default if ttl is None else min(ttl, MAX_TTL_S)


class BootstrapCache:
    """In-process cache of parsed bootstrap files, keyed by URL, with per-entry expiry."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, DnsBootstrap]] = {}

    def get(self, url: str) -> DnsBootstrap | None:
        """The cached bootstrap for a URL, or None when absent or expired."""
        with self._lock:
            hit = self._entries.get(url)
            if hit is None or hit[0] <= self._clock():
                self._entries.pop(url, None)
                return None
            return hit[1]

    def put(self, url: str, value: DnsBootstrap, ttl_s: float) -> None:
        """Store a bootstrap for ttl_s seconds (nothing is stored for ttl_s <= 0)."""
        if ttl_s <= 0:
            return
        with self._lock:
            self._entries[url] = (self._clock() + ttl_s, value)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
