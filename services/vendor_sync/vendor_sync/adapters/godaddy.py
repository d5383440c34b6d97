"""GoDaddy Domains API v1: `sso-key` auth, marker pagination, its error body mapped once.

Reads list and fetch domains; writes (PATCH /v1/domains/{domain} for nameservers and the transfer lock,
PATCH /v1/domains/{domain}/contacts for contacts) go through the same `_call` and the same mapping.
GoDaddy has no idempotency key, so the kit retries a PATCH only after a rate-limit refusal.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import quote

import httpx
from redis import Redis

from mspkit.http import (
    BreakerConfig,
    FetchLimits,
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
from vendor_sync.adapters.godaddy_contacts import ROLES as _ROLES
from vendor_sync.adapters.godaddy_contacts import Role, contact_changes, contacts_body
from vendor_sync.adapters.godaddy_contacts import clean_text as _text
from vendor_sync.adapters.rdap import InvalidDomainName, to_a_label
from vendor_sync.adapters.rdap_parse import parse_rdap_datetime
from vendor_sync.adapters.registrar_types import (
    CONTACTS_WRITE,
    DOMAINS_READ,
    LOCK_WRITE,
    NAMESERVERS_WRITE,
    Lifecycle,
    RegistrarContact,
    RegistrarDomain,
)

GODADDY_API = "https://api.godaddy.com"
# GoDaddy documents 60 requests per minute per endpoint; callers pass it with a Redis client.
GODADDY_RATE = "60/minute"
PAGE_LIMIT = 500
MAX_PAGES = 200
# GoDaddy refuses fewer than two nameservers (422); 13 is the usual registry maximum.
MIN_NAMESERVERS, MAX_NAMESERVERS = 2, 13
_TOKEN = re.compile(r"^[\x21-\x7e]{1,256}$")
# GoDaddy's status words (its `statuses` enum) folded by prefix; the first match wins.
_LIFECYCLE: tuple[tuple[str, Lifecycle], ...] = (
    ("ACTIVE", "active"),
    ("EXPIRED", "expired"),
    ("CANCELLED", "cancelled"),
    ("DISABLED", "cancelled"),
    ("TRANSFERRED_OUT", "transferred_out"),
    ("TRANSFERRED", "transferred_out"),
    ("AWAITING", "pending"),
    ("PENDING", "pending"),
)


@dataclass(frozen=True)
class GoDaddyFieldError:
    """One entry of the `fields` array of a GoDaddy error (which input was wrong, and why)."""

    path: str | None
    code: str | None
    message: str | None


@dataclass(frozen=True)
class GoDaddyErrorBody:
    """GoDaddy's error body `{code, message, fields}`, cleaned of control characters and credentials."""

    code: str | None
    message: str | None
    fields: tuple[GoDaddyFieldError, ...] = ()

    def summary(self) -> str:
        """One line for an exception message: code, message and each field's path and code."""
        head = ": ".join(part for part in (self.code, self.message) if part)
        parts = [f"{f.path or '?'} {f.code or ''}".strip() for f in self.fields[:5]]
        return head + (f" (fields: {', '.join(parts)})" if parts else "")


class GoDaddyError(VendorError):
    """A GoDaddy HTTP error; `details` holds its parsed, scrubbed error body when it sent one.

    The kit's raw `body` bytes (which may echo the credential) are dropped: `body` is always None here.
    """

    details: GoDaddyErrorBody | None = None


class GoDaddyAuthError(GoDaddyError, VendorAuthError):
    """401/403 from GoDaddy: the key is wrong, or lacks access to this account or domain."""


class GoDaddyNotFound(GoDaddyError, VendorNotFound):
    """404/410 from GoDaddy: the account does not hold this domain."""


class GoDaddyRateLimited(GoDaddyError, RateLimited):
    """429 from GoDaddy, with its Retry-After as `retry_after`."""


class GoDaddyTransientError(GoDaddyError, VendorTransientError):
    """408 or a 5xx from GoDaddy: may succeed later."""


class GoDaddyConflict(GoDaddyError, VendorConflict):
    """409 from GoDaddy: the domain is in a state that forbids the change (pending, locked...)."""


class GoDaddyPermanentError(GoDaddyError, VendorPermanentError):
    """Any other 4xx (400, 422...) from GoDaddy: retrying will not help."""


# The kit decides the category (and Retry-After) from the status; this only adds GoDaddy's body.
_ERROR_CLASSES: dict[type[VendorError], type[GoDaddyError]] = {
    VendorAuthError: GoDaddyAuthError,
    VendorNotFound: GoDaddyNotFound,
    RateLimited: GoDaddyRateLimited,
    VendorTransientError: GoDaddyTransientError,
    VendorConflict: GoDaddyConflict,
    VendorPermanentError: GoDaddyPermanentError,
}


class _SsoKey:
    """The `sso-key KEY:SECRET` header value, which never shows in a repr and is never pickled."""

    __slots__ = ("_key", "_secret")

    def __init__(self, key: str, secret: str) -> None:
        for label, value in (("api_key", key), ("api_secret", secret)):
            # Printable ASCII without spaces: anything else is a paste error or a header injection.
            if not isinstance(value, str) or not _TOKEN.match(value):
                raise ValueError(f"GoDaddy {label} must be 1-256 printable ASCII characters without spaces")
        if ":" in key:
            raise ValueError("GoDaddy api_key must not contain ':'")
        self._key = key
        self._secret = secret

    def header(self) -> str:
        return f"sso-key {self._key}:{self._secret}"

    def scrub(self, text: str) -> str:
        # A vendor that echoes the credential back must not get it into our logs or exceptions.
        for secret in (f"{self._key}:{self._secret}", self._secret, self._key):
            text = text.replace(secret, "[redacted]")
        return text

    def __repr__(self) -> str:
        return "<sso-key redacted>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("GoDaddy credentials are held in memory for one job only and are never pickled")


class GoDaddyAdapter:
    """Reads a GoDaddy account's domains and changes their nameservers, contacts and transfer lock.

    Every call goes through the vendor HTTP kit (allowlist, caps, deadline, retries) and one error mapping.
    """

    vendor = "godaddy"
    capabilities: frozenset[str] = frozenset({DOMAINS_READ, NAMESERVERS_WRITE, CONTACTS_WRITE, LOCK_WRITE})

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        *,
        base_url: str = GODADDY_API,
        shopper_id: str | None = None,
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
        if not 1 <= page_limit <= 1000 or max_pages < 1:
            raise ValueError("page_limit must be 1-1000 and max_pages at least 1")
        if shopper_id is not None and not shopper_id.isdigit():
            raise ValueError("shopper_id must be digits")
        self._auth = _SsoKey(api_key, api_secret)
        self.base_url = base_url.rstrip("/")
        # Only the base URL's own origin: a redirect anywhere else is refused by the kit.
        origin = str(origin_of(self.base_url))
        self.shopper_id = shopper_id
        self.page_limit = page_limit
        self.max_pages = max_pages
        self.http = VendorHTTP(
            self.vendor,
            allowed_hosts=[origin],
            denied_hosts=denied_hosts,
            redis=redis,
            rate=rate,
            breaker=breaker,
            retry=retry,
            limits=limits,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        return f"GoDaddyAdapter(base_url={redact_url(self.base_url)!r})"

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    def __enter__(self) -> GoDaddyAdapter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def list_domains(self) -> list[RegistrarDomain]:
        """Every domain of the account, following `marker` pages until one is shorter than the limit."""
        found: dict[str, RegistrarDomain] = {}
        marker: str | None = None
        for _page in range(self.max_pages):
            items = self._page(marker)
            for item in items:
                domain = parse_domain(item)
                found.setdefault(domain.name, domain)
            if len(items) < self.page_limit:
                return list(found.values())
            next_marker = parse_domain(items[-1]).name
            if next_marker == marker:
                raise VendorResponseError("godaddy: pagination did not advance past its marker", vendor=self.vendor)
            marker = next_marker
        # A silently truncated list would look like deleted domains to the sync plan.
        raise VendorResponseError(f"godaddy: more than {self.max_pages} pages of domains", vendor=self.vendor)

    def get_domain(self, name: str) -> RegistrarDomain:
        """One domain with nameservers and contacts; GoDaddyNotFound when the account does not hold it."""
        return parse_domain(self._domain_data(_domain_name(name)))

    def set_nameservers(self, name: str, nameservers: Sequence[str]) -> None:
        """Point the domain at 2-13 nameservers (PATCH /v1/domains/{domain} `nameServers`).

        GoDaddyConflict when the domain may not have its nameservers changed (GoDaddy's 409).
        """
        a_label = _domain_name(name)
        if isinstance(nameservers, str | bytes) or not isinstance(nameservers, Sequence):
            raise VendorPermanentError("godaddy: nameservers must be a list of host names", vendor=self.vendor)
        hosts = list(dict.fromkeys(_domain_name(host, what="nameserver") for host in nameservers))
        if not MIN_NAMESERVERS <= len(hosts) <= MAX_NAMESERVERS:
            message = f"godaddy: give {MIN_NAMESERVERS}-{MAX_NAMESERVERS} distinct nameservers"
            raise VendorPermanentError(message, vendor=self.vendor)
        self._call("PATCH", _domain_path(a_label), body={"nameServers": hosts})

    def set_contacts(self, name: str, contacts: Sequence[RegistrarContact]) -> None:
        """Change the given roles' fields (None leaves a field as it is), sending every contact back whole.

        Reads the domain first: GoDaddy needs full contacts (mailing address included), which are kept
        as GoDaddy holds them. A registrant name, organization or email change may start GoDaddy's
        change-of-registrant confirmation and a transfer lock (ICANN rules).
        """
        a_label = _domain_name(name)
        changes = contact_changes(contacts)
        body = contacts_body(self._domain_data(a_label), changes)
        self._call("PATCH", f"{_domain_path(a_label)}/contacts", body=body)

    def set_lock(self, name: str, locked: bool) -> None:
        """Set or clear the transfer lock (PATCH /v1/domains/{domain} `locked`)."""
        a_label = _domain_name(name)
        if not isinstance(locked, bool):
            raise VendorPermanentError("godaddy: locked must be true or false", vendor=self.vendor)
        self._call("PATCH", _domain_path(a_label), body={"locked": locked})

    def _domain_data(self, a_label: str) -> dict[str, Any]:
        data = self._get(_domain_path(a_label), params=None)
        if not isinstance(data, dict):
            raise VendorResponseError("godaddy: domain answer is not a JSON object", vendor=self.vendor)
        if parse_domain(data).name != a_label:
            raise VendorResponseError(f"godaddy: asked for {a_label}, answer is for another domain", vendor=self.vendor)
        return data

    def _page(self, marker: str | None) -> list[dict[str, Any]]:
        params = {"limit": str(self.page_limit)}
        if marker is not None:
            params["marker"] = marker
        data = self._get("/v1/domains", params=params)
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise VendorResponseError("godaddy: domain list is not a JSON array of objects", vendor=self.vendor)
        return data

    def _get(self, path: str, *, params: dict[str, str] | None) -> Any:
        return self._call("GET", path, params=params)

    def _call(self, method: str, path: str, *, params: dict[str, str] | None = None, body: Any = None) -> Any:
        """One API call, read or write, with the same headers and one error mapping; the JSON answer or None."""
        url = str(httpx.URL(self.base_url + path, params=params))
        headers = {"Authorization": self._auth.header()}
        if self.shopper_id is not None:
            headers["X-Shopper-Id"] = self.shopper_id
        try:
            if method == "GET":
                return self.http.get_json(url, headers=headers).data
            # A write's documented answer is an empty 200/204 (None); a body, if any, must still be JSON.
            answer = self.http.send_json(method, url, headers=headers, json_body=body)
            return None if answer is None else answer.data
        except VendorError as exc:
            mapped = self._mapped_error(exc)
            if mapped is None:
                raise
            raise mapped from None

    def _mapped_error(self, base: VendorError) -> GoDaddyError | None:
        """The kit's status error as one GoDaddyError with GoDaddy's error body, or None for any other error."""
        cls = _ERROR_CLASSES.get(type(base))
        if cls is None or base.status is None:
            return None
        body = self._error_body(base.body)
        message = str(base) + (f": {body.summary()}" if body else "")
        error = cls(message, vendor=self.vendor, status=base.status)
        if isinstance(error, VendorTransientError) and isinstance(base, VendorTransientError):
            error.retry_after = base.retry_after
        # The kit's raw bytes stay behind (they may echo the credential); only the scrubbed parse goes on.
        error.details = body
        error.vendor_code = body.code if body else None
        return error

    def _error_body(self, raw: bytes | None) -> GoDaddyErrorBody | None:
        # The kit read this only for a JSON Content-Type, in identity encoding, capped and within the deadline.
        if raw is None:
            return None
        try:
            data = parse_json(raw)
        except VendorResponseError:
            return None
        return self._parse_error(data)

    def _parse_error(self, data: Any) -> GoDaddyErrorBody | None:
        if not isinstance(data, dict):
            return None
        fields = tuple(
            GoDaddyFieldError(
                path=self._clean(item.get("path")),
                code=self._clean(item.get("code")),
                message=self._clean(item.get("message")),
            )
            for item in _list(data.get("fields"))[:20]
            if isinstance(item, dict)
        )
        code, message = self._clean(data.get("code")), self._clean(data.get("message"))
        if code is None and message is None and not fields:
            return None
        return GoDaddyErrorBody(code=code, message=message, fields=fields)

    def _clean(self, value: Any) -> str | None:
        text = _text(value)
        return self._auth.scrub(text) if text is not None else None


def _domain_name(name: str, *, what: str = "domain") -> str:
    """The A-label of a name, refused before any call when it is not a valid domain name."""
    try:
        return to_a_label(name)[0]
    except InvalidDomainName as exc:
        prefix = "" if what == "domain" else f"{what}: "
        raise VendorPermanentError(f"godaddy: {prefix}{exc}", vendor="godaddy") from None


def _domain_path(a_label: str) -> str:
    return f"/v1/domains/{quote(a_label, safe='')}"


def parse_domain(data: dict[str, Any]) -> RegistrarDomain:
    """Map one GoDaddy domain object (list item or detail) to a RegistrarDomain; never its authCode."""
    raw_name = _text(data.get("domain"))
    try:
        name, _unicode = to_a_label(raw_name or "")
    except InvalidDomainName:
        raise VendorResponseError("godaddy: a domain object has no valid `domain` name", vendor="godaddy") from None
    status = (_text(data.get("status")) or "UNKNOWN").upper()
    domain_id = data.get("domainId")
    return RegistrarDomain(
        name=name,
        status=status,
        lifecycle=lifecycle(status),
        vendor_id=str(domain_id) if isinstance(domain_id, int) and not isinstance(domain_id, bool) else None,
        expires_at=parse_rdap_datetime(data.get("expires")),
        created_at=parse_rdap_datetime(data.get("createdAt")),
        renew_deadline=parse_rdap_datetime(data.get("renewDeadline")),
        renew_auto=_bool(data.get("renewAuto")),
        locked=_bool(data.get("locked")),
        privacy=_bool(data.get("privacy")),
        nameservers=_nameservers(data.get("nameServers")) if "nameServers" in data else None,
        contacts=_contacts(data) if any(key in data for key, _role in _ROLES) else None,
    )


def lifecycle(status: str) -> Lifecycle:
    """Fold a GoDaddy status word (ACTIVE, PENDING_*, CANCELLED_*...) into a Lifecycle."""
    return next((state for prefix, state in _LIFECYCLE if status.startswith(prefix)), "other")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _nameservers(value: Any) -> tuple[str, ...]:
    names: list[str] = []
    for item in _list(value)[:20]:
        text = _text(item)
        if text is None or not isinstance(item, str):
            continue
        try:
            names.append(to_a_label(text)[0])
        except InvalidDomainName:
            continue
    return tuple(dict.fromkeys(names))


def _contacts(data: dict[str, Any]) -> tuple[RegistrarContact, ...]:
    return tuple(_contact(data[key], role) for key, role in _ROLES if isinstance(data.get(key), dict))


def _contact(value: dict[str, Any], role: Role) -> RegistrarContact:
    # GoDaddy has sent `phone` as a JSON number; keep what it sent as text.
    return RegistrarContact(
        role=role,
        name_first=_text(value.get("nameFirst")),
        name_last=_text(value.get("nameLast")),
        organization=_text(value.get("organization")),
        email=_text(value.get("email")),
        phone=_text(value.get("phone")),
    )
