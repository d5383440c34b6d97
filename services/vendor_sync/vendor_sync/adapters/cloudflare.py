"""Cloudflare DNS (API v4): zones and DNS records read, single records written, through the vendor HTTP kit.

Statuses are mapped by the kit (`error_for_status`), which also reads a small JSON error body into
`VendorError.body`; this module adds Cloudflare's error envelope (`success: false`,
`errors[{code, message, error_chain}]`) from that body to the kit's error once, in `_envelope_error`,
where a "record already exists" code (sent with a 400) becomes a VendorConflict. Writes go through the
same `_call` as reads: POST is not retried after a server error (it may have created the record), PUT
and DELETE are; the record body is checked before any call (`cloudflare_records`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import httpx
from redis import Redis

from mspkit.http import (
    BreakerConfig,
    FetchLimits,
    RetryPolicy,
    VendorAuthError,
    VendorConflict,
    VendorError,
    VendorHTTP,
    VendorNotFound,
    VendorPermanentError,
    VendorResponseError,
    origin_of,
    parse_json,
)
from mspkit.http.urls import is_loopback_host
from vendor_sync.adapters.cloudflare_records import check_id, record_body
from vendor_sync.adapters.dns_types import RECORDS_READ, RECORDS_WRITE, ZONES_READ, DnsRecord, Zone

VENDOR = "cloudflare"
DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
# Cloudflare's global limit per user token: 1200 requests per five minutes.
DEFAULT_RATE = "1200 per 5 minutes"
ZONES_PER_PAGE = 50  # the API's maximum for /zones
RECORDS_PER_PAGE = 100
# A longer listing is refused rather than returned in part: a partial list would plan deletes.
MAX_PAGES = 200
_MAX_ERRORS_SHOWN = 5
_MAX_WORDS = 200
# Error codes Cloudflare sends (with HTTP 400) when the record, or one that excludes it, already exists:
# 81053/81054 an A/AAAA/CNAME clash on the name, 81057 record already exists, 81058 an identical one.
CONFLICT_CODES = frozenset({81053, 81054, 81057, 81058})
# "Record does not exist": a DELETE retried after the first attempt already removed the record.
RECORD_GONE_CODE = "81044"

_TOKEN_SHAPE = re.compile(r"[\x21-\x7e]{1,1024}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class CloudflareAdapter:
    """Lists a Cloudflare account's zones and records, and writes single records, with a scoped API token."""

    vendor = VENDOR
    capabilities: frozenset[str] = frozenset({ZONES_READ, RECORDS_READ, RECORDS_WRITE})

    def __init__(
        self,
        api_token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        http: VendorHTTP | None = None,
        redis: Redis | None = None,
        rate: str | None = None,
        breaker: BreakerConfig | None = None,
        retry: RetryPolicy | None = None,
        limits: FetchLimits | None = None,
        transport: httpx.BaseTransport | None = None,
        max_pages: int = MAX_PAGES,
    ) -> None:
        if not isinstance(api_token, str) or not _TOKEN_SHAPE.fullmatch(api_token):
            # Never echo the value: it is (or was meant to be) a secret.
            raise ValueError("Cloudflare API token must be a non-empty printable ASCII string without spaces")
        self.base_url = base_url.rstrip("/")
        origin = origin_of(self.base_url)
        if origin.scheme != "https" and not is_loopback_host(origin.host):
            raise ValueError(f"Cloudflare base URL must be https (plain http only on loopback): {origin}")
        self.max_pages = max_pages
        self._secret = api_token
        self._headers = {"Authorization": f"Bearer {api_token}"}
        self._owns_http = http is None
        self.http = http or VendorHTTP(
            VENDOR,
            allowed_hosts=[str(origin)],
            redis=redis,
            rate=(rate or DEFAULT_RATE) if redis is not None else None,
            breaker=breaker,
            retry=retry,
            limits=limits,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"CloudflareAdapter(base_url={self.base_url!r})"

    def list_zones(self) -> list[Zone]:
        """Every zone the token can read, across all pages."""
        zones: dict[str, Zone] = {}
        for item in self._items("/zones", per_page=ZONES_PER_PAGE):
            zone = _zone(item)
            zones.setdefault(zone.id, zone)
        return list(zones.values())

    def list_records(self, zone_id: str) -> list[DnsRecord]:
        """Every DNS record of a zone, across all pages; VendorNotFound when the zone is unknown."""
        check_id(zone_id, "zone")
        records: list[DnsRecord] = []
        seen: set[str] = set()
        for item in self._items(f"/zones/{zone_id}/dns_records", per_page=RECORDS_PER_PAGE):
            record = _record(item)
            # Offset pages can repeat a record when the zone changes between pages.
            if record.id is not None:
                if record.id in seen:
                    continue
                seen.add(record.id)
            records.append(record)
        return records

    def create_record(self, zone_id: str, record: DnsRecord) -> DnsRecord:
        """Add one record (POST, never retried after a server error); returns it with Cloudflare's id.

        VendorConflict when Cloudflare says it (or a CNAME on the same name) already exists.
        """
        body = record_body(record)
        path = f"/zones/{check_id(zone_id, 'zone')}/dns_records"
        return self._written(self._call("POST", path, body=body), path)

    def update_record(self, zone_id: str, record_id: str, record: DnsRecord) -> DnsRecord:
        """Overwrite one record by id (PUT: every field is replaced, so give `proxied` for A/AAAA/CNAME)."""
        body = record_body(record)
        if record.type.upper() in ("A", "AAAA", "CNAME") and record.proxied is None:
            # An overwrite without it turns Cloudflare's proxy off and would expose the origin's address.
            raise ValueError("record.proxied: say true or false when overwriting an A, AAAA or CNAME record")
        path = f"/zones/{check_id(zone_id, 'zone')}/dns_records/{check_id(record_id, 'record')}"
        written = self._written(self._call("PUT", path, body=body), path)
        if written.id != record_id:
            raise VendorResponseError(f"{VENDOR}: PUT {path} answered for another record", vendor=VENDOR)
        return written

    def delete_record(self, zone_id: str, record_id: str) -> None:
        """Remove one record by id; a record already gone (error 81044, e.g. on a retry) counts as removed."""
        path = f"/zones/{check_id(zone_id, 'zone')}/dns_records/{check_id(record_id, 'record')}"
        try:
            data = self._call("DELETE", path)
        except VendorPermanentError as exc:
            # Whatever status carries it (404 so far), this code names the record, not the zone or the key.
            if exc.vendor_code == RECORD_GONE_CODE and not isinstance(exc, VendorAuthError):
                return
            raise
        result = data.get("result")
        if not isinstance(result, Mapping) or result.get("id") != record_id:
            raise VendorResponseError(f"{VENDOR}: DELETE {path} did not confirm the record's id", vendor=VENDOR)

    def _written(self, data: Mapping[str, Any], path: str) -> DnsRecord:
        written = _record(data.get("result"))
        if written.id is None:
            raise VendorResponseError(f"{VENDOR}: {path} answered with a record without an id", vendor=VENDOR)
        return written

    def _items(self, path: str, *, per_page: int) -> Iterator[Any]:
        """Yield the results of every page: trusts total_pages, stops on an empty page, refuses too many."""
        page = 1
        while True:
            data = self._call("GET", path, params={"page": page, "per_page": per_page})
            result = data.get("result")
            if not isinstance(result, list):
                raise VendorResponseError(f"{VENDOR}: {path} page {page} has no result list", vendor=VENDOR)
            if not result:
                return
            info = data.get("result_info")
            info = info if isinstance(info, Mapping) else {}
            served = info.get("page", page)
            if served != page:
                raise VendorResponseError(f"{VENDOR}: asked {path} page {page}, got page {served!r}", vendor=VENDOR)
            total = info.get("total_pages", page)
            if not isinstance(total, int) or isinstance(total, bool) or total < 1:
                raise VendorResponseError(f"{VENDOR}: {path} has an invalid total_pages", vendor=VENDOR)
            if total > self.max_pages:
                raise VendorResponseError(
                    f"{VENDOR}: {path} has {total} pages, over the cap of {self.max_pages}; refusing a partial list",
                    vendor=VENDOR,
                )
            yield from result
            if page >= total:
                return
            page += 1

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, int] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Mapping[str, Any]:
        """One API call (a GET, or a write through the kit's send); returns the success envelope.

        Any failure raises the kit's error with Cloudflare's words, mapped once here.
        """
        url = f"{self.base_url}{path}" + (f"?{urlencode(params)}" if params else "")
        try:
            if method == "GET":
                response = self.http.get_json(url, headers=self._headers)
            else:
                response = self.http.send_json(method, url, headers=self._headers, json_body=body)
        except VendorError as exc:
            enriched = _envelope_error(exc, self._secret)
            if enriched is exc:
                raise
            raise enriched from None
        if response is None:
            raise VendorResponseError(f"{VENDOR}: {method} {path} answered with an empty body", vendor=VENDOR)
        data = response.data
        # Cloudflare documents a DELETE answer as `{"result": {"id"}}`, without the rest of the envelope.
        enveloped = isinstance(data, Mapping) and ("success" in data or (method == "DELETE" and "result" in data))
        if not isinstance(data, Mapping) or not enveloped:
            raise VendorResponseError(f"{VENDOR}: {response.url} did not answer with an API envelope", vendor=VENDOR)
        if data.get("success", True) is not True:
            errors = data.get("errors")
            words = _describe(errors, self._secret) or "no error given"
            message = f"{VENDOR}: HTTP {response.status} from {response.url} with success false ({words})"
            cls = VendorConflict if _is_conflict(errors) else VendorPermanentError
            raise cls(message, vendor=VENDOR, status=response.status, vendor_code=_first_code(errors))
        return data

    def close(self) -> None:
        """Close the HTTP client if this adapter created it."""
        if self._owns_http:
            self.http.close()

    def __enter__(self) -> CloudflareAdapter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _envelope_error(exc: VendorError, secret: str) -> VendorError:
    """The kit's error (same class, status and retry_after) with Cloudflare's codes and words, or exc itself.

    The raw body (which may echo the token) never leaves the adapter: the error raised carries body None.
    """
    body = exc.body
    if body is None:
        return exc
    enriched = copy.copy(exc)
    enriched.body = None
    try:
        data = parse_json(body)
    except VendorResponseError:
        return enriched
    if not isinstance(data, Mapping):
        return enriched
    errors = data.get("errors")
    words = _describe(errors, secret)
    if words:
        enriched.args = (f"{exc} ({words})",)
        enriched.vendor_code = _first_code(errors)
    plain = isinstance(exc, VendorPermanentError) and not isinstance(
        exc, VendorAuthError | VendorNotFound | VendorConflict | VendorResponseError
    )
    if plain and _is_conflict(errors):
        # Cloudflare answers "record already exists" with a 400; callers need it as the conflict it is.
        return VendorConflict(str(enriched), vendor=exc.vendor, status=exc.status, vendor_code=enriched.vendor_code)
    return enriched


def _is_conflict(errors: Any) -> bool:
    if not isinstance(errors, list):
        return False
    return any(isinstance(e, Mapping) and _int(e.get("code")) in CONFLICT_CODES for e in errors[:_MAX_ERRORS_SHOWN])


def _first_code(errors: Any) -> str | None:
    first = errors[0] if isinstance(errors, list) and errors else None
    code = _code(first.get("code")) if isinstance(first, Mapping) else "?"
    return None if code == "?" else code


def _describe(errors: Any, secret: str) -> str:
    """Each error as 'Cloudflare error 1004: DNS Validation Error [9011: Length of content is invalid]'."""
    if not isinstance(errors, list):
        return ""
    parts = []
    for error in errors[:_MAX_ERRORS_SHOWN]:
        if not isinstance(error, Mapping):
            continue
        text = f"Cloudflare error {_code(error.get('code'))}: {_words(error.get('message'), secret)}"
        chain = error.get("error_chain")
        if isinstance(chain, list):
            links = [
                f"{_code(link.get('code'))}: {_words(link.get('message'), secret)}"
                for link in chain[:_MAX_ERRORS_SHOWN]
                if isinstance(link, Mapping)
            ]
            if links:
                text += f" [{'; '.join(links)}]"
        parts.append(text)
    return "; ".join(parts)


def _code(value: Any) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "?"


def _words(value: Any, secret: str) -> str:
    # Vendor text is hostile input: one line, bounded, and never the token even if a server echoes it.
    text = _CONTROL.sub(" ", value).strip() if isinstance(value, str) else ""
    return text.replace(secret, "[redacted]")[:_MAX_WORDS] or "(no message)"


def _text(item: Mapping[str, Any], key: str, what: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise VendorResponseError(f"{VENDOR}: {what} without a {key}", vendor=VENDOR)
    return value


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _zone(item: Any) -> Zone:
    if not isinstance(item, Mapping):
        raise VendorResponseError(f"{VENDOR}: a zone is not an object", vendor=VENDOR)
    servers = item.get("name_servers")
    status = item.get("status")
    return Zone(
        id=_text(item, "id", "zone"),
        name=_text(item, "name", "zone").rstrip(".").lower(),
        status=status if isinstance(status, str) else None,
        name_servers=tuple(s.rstrip(".").lower() for s in servers if isinstance(s, str))
        if isinstance(servers, list)
        else (),
    )


def _record(item: Any) -> DnsRecord:
    if not isinstance(item, Mapping):
        raise VendorResponseError(f"{VENDOR}: a DNS record is not an object", vendor=VENDOR)
    kind = _text(item, "type", "DNS record").upper()
    ttl = _int(item.get("ttl"))
    if ttl is None or ttl < 1:
        raise VendorResponseError(f"{VENDOR}: a {kind} record without a valid ttl", vendor=VENDOR)
    content = item.get("content")
    if not isinstance(content, str):
        raise VendorResponseError(f"{VENDOR}: a {kind} record without content", vendor=VENDOR)
    data = item.get("data")
    data = data if isinstance(data, Mapping) else {}
    priority = _int(item.get("priority"))
    if priority is None:
        # SRV and URI records carry it only inside `data`.
        priority = _int(data.get("priority"))
    record_id = item.get("id")
    proxied = item.get("proxied")
    return DnsRecord(
        type=kind,
        name=_text(item, "name", "DNS record").rstrip(".").lower(),
        content=_caa_content(data) if kind == "CAA" and data else content,
        ttl=ttl,
        priority=priority,
        id=record_id if isinstance(record_id, str) and record_id else None,
        proxied=proxied if isinstance(proxied, bool) else None,
    )


def _caa_content(data: Mapping[str, Any]) -> str:
    """CAA in presentation form (RFC 8659: flags tag "value") from Cloudflare's `data`, not its tab-joined content."""
    flags, tag, value = _int(data.get("flags")), data.get("tag"), data.get("value")
    if flags is None or not isinstance(tag, str) or not isinstance(value, str):
        raise VendorResponseError(f"{VENDOR}: a CAA record with incomplete data", vendor=VENDOR)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{flags} {tag} "{escaped}"'
