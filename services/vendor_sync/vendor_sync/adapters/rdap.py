"""RDAP domain lookups (RFC 7480-7484, 9082/9083, 9224) through the resilient vendor HTTP kit."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Literal

import idna

from mspkit.http import (
    VendorError,
    VendorHTTP,
    VendorPermanentError,
    redact_url,
)
from vendor_sync.adapters.base import DomainRecord
from vendor_sync.adapters.rdap_bootstrap import (
    IANA_DNS_BOOTSTRAP_URL,
    BootstrapCache,
    DnsBootstrap,
    RdapBootstrapError,
    RdapNoService,
    cache_ttl,
)
from vendor_sync.adapters.rdap_parse import RDAP_MEDIA, merge_registrar, parse_domain, related_registrar_url

log = logging.getLogger(__name__)
_ACCEPT = f"{RDAP_MEDIA}, application/json;q=0.9"

__all__ = [
    "IANA_DNS_BOOTSTRAP_URL",
    "BootstrapCache",
    "DnsBootstrap",
    "InvalidDomainName",
    "RdapBootstrapError",
    "RdapClient",
    "RdapNoService",
    "to_a_label",
]


class InvalidDomainName(ValueError):
    """The name is not a valid (IDNA 2008 / UTS 46) domain name."""


def to_a_label(name: str) -> tuple[str, str]:
    """Return (A-label form, Unicode form) of a domain name, lower-case, without the trailing dot."""
    if not isinstance(name, str) or not name.strip() or len(name) > 253 * 4:
        raise InvalidDomainName("empty or oversized domain name")
    text = name.strip().rstrip(".")
    try:
        a_label = idna.encode(text, uts46=True).decode("ascii").lower()
        unicode_name = idna.decode(a_label)
    except (idna.IDNAError, UnicodeError, ValueError):
        raise InvalidDomainName(f"invalid domain name {text[:80]!r}") from None
    if "." not in a_label or len(a_label) > 253:
        raise InvalidDomainName(f"not a registrable domain name: {a_label[:80]!r}")
    return a_label, unicode_name


class RdapClient:
    """Looks up domains over RDAP: IANA bootstrap, registry query, then the registrar's `related` link."""

    vendor = "rdap"

    def __init__(
        self,
        http: VendorHTTP,
        *,
        bootstrap_url: str = IANA_DNS_BOOTSTRAP_URL,
        registrar_http: VendorHTTP | None = None,
        follow_related: bool = True,
        cache: BootstrapCache | None = None,
    ) -> None:
        self.http = http
        self.registrar_http = registrar_http or http
        self.bootstrap_url = bootstrap_url
        self.follow_related = follow_related
        self.cache = cache or BootstrapCache()

    def bootstrap(self) -> DnsBootstrap:
        """The DNS bootstrap registry, from cache or fetched (cached per Cache-Control, 1 day by default)."""
        cached = self.cache.get(self.bootstrap_url)
        if cached is not None:
            return cached
        where = redact_url(self.bootstrap_url)
        try:
            response = self.http.get_json(self.bootstrap_url, accept="application/json")
        except VendorPermanentError as exc:
            # Transient failures propagate untouched so the job is retried; these will not heal by retrying.
            raise RdapBootstrapError(f"RDAP bootstrap file {where} unusable: {exc}", vendor=self.vendor) from None
        parsed = DnsBootstrap.parse(response.data)
        self.cache.put(self.bootstrap_url, parsed, cache_ttl(response.headers.get("cache-control")))
        return parsed

    def domain_url(self, a_label: str) -> str:
        """The registry URL to query for a domain (first base URL, https preferred)."""
        return f"{self.bootstrap().base_urls(a_label)[0]}domain/{a_label}"

    def lookup_domain(self, name: str) -> DomainRecord:
        """Registration data for a domain; raises VendorNotFound when the registry does not know it."""
        a_label, unicode_name = to_a_label(name)
        url = self.domain_url(a_label)
        response = self.http.get_json(url, accept=_ACCEPT)
        record = parse_domain(response.data, a_label=a_label, unicode_name=unicode_name, source=response.url)
        if not self.follow_related:
            return record
        related = related_registrar_url(response.data)
        if related is None or redact_url(related) == redact_url(url):
            return record
        if not self.registrar_http.is_allowed(related):
            log.info("rdap related link not allowlisted, keeping registry data: %s", redact_url(related))
            return _with_registrar_state(record, "not_allowed")
        try:
            registrar_response = self.registrar_http.get_json(related, accept=_ACCEPT)
            registrar_record = parse_domain(
                registrar_response.data, a_label=a_label, unicode_name=unicode_name, source=registrar_response.url
            )
        except VendorError as exc:
            # The registry answer is complete enough on its own; a broken registrar must not fail the refresh.
            log.warning("rdap registrar lookup failed, keeping registry data: %s (%s)", redact_url(related), exc)
            return _with_registrar_state(record, "failed")
        return merge_registrar(record, registrar_record)


def _with_registrar_state(record: DomainRecord, state: Literal["not_allowed", "failed"]) -> DomainRecord:
    return replace(record, registrar_data=state)
