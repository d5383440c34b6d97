"""MailChannels Inbound API v1 (spam filter): domains and their downstream addresses, `X-API-Key` auth.

Follows MailChannels' published Inbound API description (swagger 2.0, version 1.2.0; copied into
tests/fixtures/mailchannels/). The kit maps statuses; MailChannels answers 503 when a customer goes over
100 requests/s, so 503 is its rate-limit signal (RateLimited, Retry-After honoured). Its error body
`{code, message, errors}` is added to the kit's error once, in `_mapped_error`.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NoReturn
from urllib.parse import quote

import httpx
from redis import Redis

from mspkit.http import (
    BreakerConfig,
    FetchLimits,
    JsonResponse,
    RateLimited,
    RetryPolicy,
    VendorAuthError,
    VendorConflict,
    VendorError,
    VendorHTTP,
    VendorNotFound,
    VendorPermanentError,
    VendorResponseError,
    VendorTransientError,
    origin_of,
    parse_json,
    redact_url,
)
from mspkit.http.urls import is_loopback_host
from vendor_sync.adapters.rdap import InvalidDomainName, to_a_label
from vendor_sync.adapters.spam_filter_types import (
    DOMAINS_READ,
    DOMAINS_WRITE,
    DOWNSTREAM_READ,
    DOWNSTREAM_WRITE,
    DomainOwnedElsewhere,
    DownstreamAddress,
    ProvisionResult,
    SpamFilterDomain,
)

VENDOR = "mailchannels"
MAILCHANNELS_API = "https://api.mailchannels.net/inbound/v1"
# "This API is limited to 100 queries per second, per customer" (the API description's info).
DEFAULT_RATE = "100 per 1 second"
# MailChannels' inbound MX hosts as (priority, host), per "MailChannels Inbound DNS Architecture",
# https://docs.mailchannels.com/inbound/downstream-records: MX 10 mx1.mailchannels.net, MX 20 mx2.mailchannels.net.
INBOUND_MX_HOSTS: tuple[tuple[int, str], ...] = ((10, "mx1.mailchannels.net"), (20, "mx2.mailchannels.net"))
PAGE_LIMIT = 500  # GET /domains takes up to 5000
# A longer listing is refused rather than returned in part: a partial list would plan deletes.
MAX_PAGES = 200
# PUT downstream-address takes at most 10 records, so one page of 10 normally holds them all.
MAX_DOWNSTREAM = 10
_MAX_TEXT = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_TOKEN = re.compile(r"[\x21-\x7e]{1,256}")


@dataclass(frozen=True)
class MailChannelsErrorBody:
    """MailChannels' `ErrorResponse` `{code, message, errors}`, cleaned of control characters and the key."""

    code: int | None
    message: str | None
    errors: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for an exception message: MailChannels' code, message and detailed errors."""
        head = "; ".join(part for part in (None if self.code is None else f"code {self.code}", self.message) if part)
        return head + (f" [{'; '.join(self.errors[:5])}]" if self.errors else "")


class MailChannelsError(VendorError):
    """A MailChannels HTTP error; `details` is its parsed, scrubbed error body (the raw `body` is always None)."""

    details: MailChannelsErrorBody | None = None


class MailChannelsAuthError(MailChannelsError, VendorAuthError):
    """401/403: the key is wrong, the domain belongs to another key, or the domain limit is reached."""


class MailChannelsNotFound(MailChannelsError, VendorNotFound):
    """404: MailChannels does not have this domain for this customer."""


class MailChannelsRateLimited(MailChannelsError, RateLimited):
    """429 or 503 (over 100 requests/s), with its Retry-After as `retry_after`."""


class MailChannelsTransientError(MailChannelsError, VendorTransientError):
    """408 or a 5xx other than 503: may succeed later."""


class MailChannelsConflict(MailChannelsError, VendorConflict):
    """409 from MailChannels."""


class MailChannelsDomainTaken(MailChannelsConflict, DomainOwnedElsewhere):
    """409 on provisioning: the domain is provisioned and associated with a different MailChannels customer."""


class MailChannelsPermanentError(MailChannelsError, VendorPermanentError):
    """Any other 4xx (400: the domain name could not be converted...): retrying will not help."""


# The kit decides the category (and Retry-After) from the status; this only adds MailChannels' body.
_ERROR_CLASSES: dict[type[VendorError], type[MailChannelsError]] = {
    VendorAuthError: MailChannelsAuthError,
    VendorNotFound: MailChannelsNotFound,
    RateLimited: MailChannelsRateLimited,
    VendorTransientError: MailChannelsTransientError,
    VendorConflict: MailChannelsConflict,
    VendorPermanentError: MailChannelsPermanentError,
}


class _ApiKey:
    """The `X-API-Key` value, which never shows in a repr and is never pickled."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        # Printable ASCII without spaces: anything else is a paste error or a header injection.
        if not isinstance(value, str) or not _TOKEN.fullmatch(value):
            raise ValueError("MailChannels API key must be 1-256 printable ASCII characters without spaces")
        self._value = value

    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self._value}

    def scrub(self, text: str) -> str:
        # A server that echoes the key (in any case) must not get it into our logs or exceptions.
        return re.sub(re.escape(self._value), "[redacted]", text, flags=re.IGNORECASE)

    def __repr__(self) -> str:
        return "<X-API-Key redacted>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("MailChannels API keys are held in memory for one job only and are never pickled")


class MailChannelsAdapter:
    """Provisions domains at MailChannels Inbound through the vendor HTTP kit (allowlist, caps, deadline, retries)."""

    vendor = VENDOR
    capabilities: frozenset[str] = frozenset({DOMAINS_READ, DOMAINS_WRITE, DOWNSTREAM_READ, DOWNSTREAM_WRITE})

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = MAILCHANNELS_API,
        subscription_handle: str | None = None,
        page_limit: int = PAGE_LIMIT,
        max_pages: int = MAX_PAGES,
        redis: Redis | None = None,
        rate: str | None = None,
        breaker: BreakerConfig | None = None,
        retry: RetryPolicy | None = None,
        limits: FetchLimits | None = None,
        denied_hosts: tuple[str, ...] = (),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= page_limit <= 5000 or max_pages < 1:
            raise ValueError("page_limit must be 1-5000 and max_pages at least 1")
        if subscription_handle is not None and not _TOKEN.fullmatch(subscription_handle):
            raise ValueError("subscription_handle must be printable ASCII without spaces")
        self._auth = _ApiKey(api_key)
        self.base_url = base_url.rstrip("/")
        origin = origin_of(self.base_url)
        if origin.scheme != "https" and not is_loopback_host(origin.host):
            raise ValueError(f"MailChannels base URL must be https (plain http only on loopback): {origin}")
        self.subscription_handle = subscription_handle
        self.page_limit = page_limit
        self.max_pages = max_pages
        self.http = VendorHTTP(
            VENDOR,
            # Only the base URL's own origin: a redirect anywhere else is refused by the kit.
            allowed_hosts=[str(origin)],
            denied_hosts=denied_hosts,
            redis=redis,
            rate=(rate or DEFAULT_RATE) if redis is not None else None,
            breaker=breaker,
            retry=retry,
            limits=limits,
            sleep=sleep,
            credential_headers=["X-API-Key"],
            rate_limit_statuses=[503],
        )

    def __repr__(self) -> str:
        return f"MailChannelsAdapter(base_url={redact_url(self.base_url)!r})"

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    def __enter__(self) -> MailChannelsAdapter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def list_domains(self) -> list[SpamFilterDomain]:
        """Every domain the key can see, following `offset` to `total`; refuses a list too long or changed meanwhile."""
        found: dict[str, SpamFilterDomain] = {}
        offset = 0
        for _page in range(self.max_pages):
            items, total = self._domain_page({"limit": self.page_limit, "offset": offset})
            if total > self.page_limit * self.max_pages:
                raise _bad(f"{total} domains is over the cap of {self.max_pages} pages; refusing a partial list")
            before = len(found)
            for item in items:
                domain = parse_domain(item)
                found.setdefault(domain.name, domain)
            if items and len(found) == before:
                raise _bad("pagination did not advance past its offset")
            offset += len(items)
            if not items or offset >= total:
                if len(found) < total:
                    # Offsets shift when domains come or go between pages: some may have been skipped.
                    raise VendorTransientError(
                        f"mailchannels: listed {len(found)} of {total} domains; the list changed while paging",
                        vendor=VENDOR,
                    )
                return list(found.values())
        raise _bad(f"more than {self.max_pages} pages of domains")

    def get_domain(self, name: str) -> SpamFilterDomain:
        """One domain (the API has no single-domain GET: a `domains` filter); MailChannelsNotFound when absent."""
        a_label = _a_label(name)
        items, _total = self._domain_page({"domains": a_label, "limit": 10})
        for item in items:
            domain = parse_domain(item)
            if domain.name == a_label:
                return domain
        raise MailChannelsNotFound(f"mailchannels: {a_label} is not provisioned for this account", vendor=VENDOR)

    def provision_domain(
        self,
        name: str,
        downstream_addresses: Sequence[DownstreamAddress],
        *,
        subscription_handle: str | None = None,
    ) -> ProvisionResult:
        """POST /domains: 201 created, 200 already ours (its downstream addresses then set to these); 409 raises
        MailChannelsDomainTaken. Not retried after a 5xx (no idempotency key): the domain may exist by then."""
        a_label, wanted = _a_label(name), _unique(downstream_addresses)
        handle = subscription_handle or self.subscription_handle
        if not 1 <= len(wanted) <= MAX_DOWNSTREAM or handle is None or not _TOKEN.fullmatch(handle):
            raise ValueError(f"provisioning needs 1-{MAX_DOWNSTREAM} downstream addresses and a subscription handle")
        body = {"domain": a_label, "subscriptionHandle": handle, "downstreamAddresses": [_wire(a) for a in wanted]}
        response = self._call("POST", "/domains", body=body, provisioning=a_label)
        if response is None or response.status not in (200, 201):
            raise _bad(f"provisioning {a_label} answered {response.status if response else 'nothing'}")
        domain = parse_domain(response.data)
        if domain.name != a_label:
            raise _bad(f"provisioned {a_label}, answer is for another domain")
        if response.status == 201:
            return ProvisionResult(domain=domain, created=True)
        # Without `overwrite` MailChannels keeps an existing domain's settings, so the downstream
        # addresses asked for are set here, and the ones replaced are kept for the step's detail.
        current = self.list_downstream_addresses(a_label)
        if set(current) == set(wanted):
            return ProvisionResult(domain=replace(domain, downstream_addresses=current), created=False)
        now = self.set_downstream_addresses(a_label, wanted)
        return ProvisionResult(
            domain=replace(domain, downstream_addresses=now), created=False, replaced_downstream=current
        )

    def delete_domain(self, name: str) -> bool:
        """DELETE /domains/{domain}; False when MailChannels does not have it (a retried delete is done)."""
        try:
            self._call("DELETE", f"/domains/{quote(_a_label(name), safe='')}")
        except MailChannelsNotFound:
            return False
        return True

    def list_downstream_addresses(self, name: str) -> tuple[DownstreamAddress, ...]:
        """GET /domains/{domain}/downstream-address, every page (there is no total: a short page ends it)."""
        path = f"/domains/{quote(_a_label(name), safe='')}/downstream-address"
        found: dict[DownstreamAddress, None] = {}
        for page in range(self.max_pages):
            response = self._call("GET", path, params={"limit": MAX_DOWNSTREAM, "offset": page * MAX_DOWNSTREAM})
            records = _records(response)
            before = len(found)
            found.update(dict.fromkeys(records))
            if len(records) < MAX_DOWNSTREAM:
                return tuple(found)
            if len(found) == before:
                raise _bad("pagination did not advance past its offset")
        raise _bad(f"more than {self.max_pages} pages of downstream addresses")

    def set_downstream_addresses(
        self, name: str, addresses: Sequence[DownstreamAddress]
    ) -> tuple[DownstreamAddress, ...]:
        """PUT /domains/{domain}/downstream-address: replaces them all (an empty list removes them all)."""
        wanted = _unique(addresses)
        if len(wanted) > MAX_DOWNSTREAM:
            raise ValueError(f"MailChannels takes at most {MAX_DOWNSTREAM} downstream addresses")
        path = f"/domains/{quote(_a_label(name), safe='')}/downstream-address"
        response = self._call("PUT", path, body={"records": [_wire(address) for address in wanted]})
        has_records = response is not None and isinstance(response.data, Mapping) and "records" in response.data
        return _records(response) if has_records else wanted

    def _domain_page(self, params: dict[str, Any]) -> tuple[list[Any], int]:
        response = self._call("GET", "/domains", params=params)
        data = response.data if response is not None and isinstance(response.data, Mapping) else {}
        items, total = data.get("domains"), data.get("total")
        if not isinstance(items, list) or not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise _bad("domain list is not {domains: [...], total: n}")
        return items, total

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        provisioning: str | None = None,
    ) -> JsonResponse | None:
        url = str(httpx.URL(self.base_url + path, params=params))
        headers = self._auth.headers()
        try:
            if method == "GET":
                return self.http.get_json(url, headers=headers)
            return self.http.send_json(method, url, headers=headers, json_body=body)
        except VendorError as exc:
            mapped = self._mapped_error(exc, provisioning=provisioning)
            if mapped is None:
                raise
            raise mapped from None

    def _mapped_error(self, base: VendorError, *, provisioning: str | None) -> MailChannelsError | None:
        """The kit's status error as one MailChannelsError with MailChannels' body, or None for any other error.

        A 409 on provisioning means "associated with a different customer" (the API description's words).
        """
        cls = _ERROR_CLASSES.get(type(base))
        if cls is None or base.status is None:
            return None
        details = self._error_body(base.body)
        message = str(base)
        if cls is MailChannelsConflict and provisioning is not None:
            cls = MailChannelsDomainTaken
            message += f": {provisioning} is already provisioned for a different MailChannels customer"
        message += f" ({details.summary()})" if details else ""
        error = cls(message, vendor=VENDOR, status=base.status)
        if isinstance(error, VendorTransientError) and isinstance(base, VendorTransientError):
            error.retry_after = base.retry_after
        # The kit's raw bytes stay behind (they may echo the key); only the scrubbed parse goes on.
        error.details = details
        error.vendor_code = str(details.code) if details and details.code is not None else None
        return error

    def _error_body(self, raw: bytes | None) -> MailChannelsErrorBody | None:
        # The kit read this only for a JSON Content-Type, in identity encoding, capped and within the deadline.
        try:
            data = parse_json(raw) if raw is not None else None
        except VendorResponseError:
            return None
        if not isinstance(data, Mapping):
            return None
        code, errors = data.get("code"), data.get("errors")
        body = MailChannelsErrorBody(
            code=code if isinstance(code, int) and not isinstance(code, bool) and 0 <= code < 1000 else None,
            message=self._clean(data.get("message")),
            errors=tuple(t for t in (self._clean(e) for e in (errors if isinstance(errors, list) else [])[:10]) if t),
        )
        return body if body.code is not None or body.message or body.errors else None

    def _clean(self, value: Any) -> str | None:
        text = _CONTROL.sub(" ", value).strip()[:_MAX_TEXT] if isinstance(value, str) else ""
        return self._auth.scrub(text) or None


def parse_domain(data: Any) -> SpamFilterDomain:
    """Map one MailChannels `Domain` object to a SpamFilterDomain (never its admins' addresses, nor settings)."""
    if not isinstance(data, Mapping):
        raise _bad("a domain is not a JSON object")
    try:
        name = to_a_label(data.get("domain"))[0]  # anything but a str is refused too
    except InvalidDomainName:
        raise _bad("a domain object has no valid `domain` name") from None
    handle, downstream = data.get("subscriptionHandle"), data.get("downstreamAddresses")
    return SpamFilterDomain(
        name=name,
        subscription_handle=handle if isinstance(handle, str) and _TOKEN.fullmatch(handle) else None,
        # null or absent: the answer did not say (the SDK documents these arrays as nullable).
        downstream_addresses=_addresses(downstream) if isinstance(downstream, list) else None,
    )


def _bad(words: str) -> VendorResponseError:
    """A hostile or malformed answer from MailChannels."""
    return VendorResponseError(f"mailchannels: {words}", vendor=VENDOR)


def _a_label(name: str) -> str:
    try:
        return to_a_label(name)[0]
    except InvalidDomainName as exc:
        raise VendorPermanentError(f"mailchannels: {exc}", vendor=VENDOR) from None


def _unique(addresses: Sequence[DownstreamAddress]) -> tuple[DownstreamAddress, ...]:
    if not all(isinstance(address, DownstreamAddress) for address in addresses):
        raise TypeError("downstream addresses must be DownstreamAddress objects")
    return tuple(dict.fromkeys(addresses))


def _wire(address: DownstreamAddress) -> dict[str, Any]:
    """The API's `DownstreamAddress`: a host name's target is canonical, ending in a dot; an IP stays bare."""
    try:
        target = str(ipaddress.ip_address(address.target))
    except ValueError:
        target = f"{address.target}."
    return {"priority": address.priority, "weight": address.weight, "port": address.port, "target": target}


def _addresses(items: list[Any]) -> tuple[DownstreamAddress, ...]:
    """The API's `DownstreamAddress` objects, canonical and without repeats."""
    fields = ("target", "port", "priority", "weight")
    try:
        return tuple(dict.fromkeys(DownstreamAddress(**{key: item.get(key) for key in fields}) for item in items))
    except (ValueError, AttributeError):
        raise _bad("an invalid downstream address in the answer") from None


def _records(response: JsonResponse | None) -> tuple[DownstreamAddress, ...]:
    data = response.data if response is not None else None
    records = data.get("records") if isinstance(data, Mapping) else None
    if not isinstance(records, list):
        raise _bad("downstream answer has no `records` list")
    return _addresses(records)
