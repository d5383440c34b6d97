"""One guarded exchange: allowlisted origins, manual redirects, a wall-clock deadline and a size cap."""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import httpx

from mspkit.http.addresses import AddressGuard
from mspkit.http.body import VendorResponse, read_capped
from mspkit.http.errors import (
    ERROR_BODY_MAX_BYTES,
    DeadlineExceeded,
    HostNotAllowed,
    RedirectRefused,
    VendorError,
    VendorResponseError,
    VendorTransientError,
    error_for_status,
)
from mspkit.http.jsonbody import is_json_media_type
from mspkit.http.policy import HostPolicy
from mspkit.http.redirects import REDIRECT_STATUSES, credential_header_names, redirect_target, strip_credentials
from mspkit.http.transport import GuardedTransport
from mspkit.http.urls import origin_of, redact_url

DEFAULT_USER_AGENT = "mspkit-vendor-http/0.1 (+https://example.invalid/msp)"
MAX_BODY_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class FetchLimits:
    """Bounds on one exchange, redirects included."""

    deadline_s: float = 20.0
    max_bytes: int = MAX_BODY_BYTES
    max_redirects: int = 5
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0


def _redact_logged_urls(record: logging.LogRecord) -> bool:
    """Let httpx log its request URLs without their query: a vendor may take its key there (Namecheap)."""
    if isinstance(record.args, tuple):
        record.args = tuple(redact_url(arg) if isinstance(arg, httpx.URL) else arg for arg in record.args)
    return True


def make_client(
    *,
    user_agent: str = DEFAULT_USER_AGENT,
    limits: FetchLimits | None = None,
    transport: httpx.BaseTransport | None = None,
    max_connections: int = 20,
    guard: AddressGuard | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> httpx.Client:
    """Build the sync httpx client every vendor call goes through: address-guarded, no auto-redirects."""
    bounds = limits or FetchLimits()
    # mspkit.logging holds httpx at WARNING; this covers a process (or a test) that lowered it.
    httpx_log = logging.getLogger("httpx")
    if _redact_logged_urls not in httpx_log.filters:
        httpx_log.addFilter(_redact_logged_urls)
    pool = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    if transport is None:
        # Without the caller's guard, fail closed: every loopback and private address is refused.
        transport = GuardedTransport(guard or AddressGuard(), limits=pool, ssl_context=ssl_context)
    return httpx.Client(
        follow_redirects=False,
        timeout=httpx.Timeout(bounds.read_timeout_s, connect=bounds.connect_timeout_s),
        headers={"User-Agent": user_agent, "Accept-Encoding": "identity"},
        limits=pool,
        # trust_env=False: no proxy or .netrc credentials picked up from the environment.
        trust_env=False,
        transport=transport,
    )


def _timeout_for(limits: FetchLimits, remaining: float) -> httpx.Timeout:
    # No single phase may outlast what is left of the deadline.
    return httpx.Timeout(
        min(limits.read_timeout_s, remaining),
        connect=min(limits.connect_timeout_s, remaining),
        pool=min(limits.connect_timeout_s, remaining),
    )


@dataclass(frozen=True)
class Exchange:
    """What one call sends: the method, headers and body (a write's body is replayed only on 307/308)."""

    method: str = "GET"
    headers: Mapping[str, str] | None = None
    content: bytes | None = None
    # Statuses the vendor uses to say "slow down" (MailChannels adds 503 to 429).
    rate_limit_statuses: frozenset[int] = frozenset({429})


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Only these redirects keep the method and the body (RFC 9110 15.4); any other one on a write is
# refused rather than silently turned into a GET that would "succeed" without writing anything.
_BODY_KEEPING_REDIRECTS = frozenset({307, 308})


def _send(
    client: httpx.Client,
    url: httpx.URL,
    exchange: Exchange,
    *,
    strip: frozenset[str],
    bounds: FetchLimits,
    deadline: float,
    clock: Callable[[], float],
    vendor: str | None,
) -> httpx.Response:
    where = redact_url(url)
    late = f"request to {where} exceeded its {bounds.deadline_s:g}s deadline"
    remaining = deadline - clock()
    if remaining <= 0:
        raise DeadlineExceeded(late, vendor=vendor)
    request = client.build_request(
        exchange.method,
        url,
        headers=dict(exchange.headers or {}),
        content=exchange.content,
        timeout=_timeout_for(bounds, remaining),
    )
    # After build_request: the client's own default headers and cookie jar are merged in by then.
    strip_credentials(request.headers, strip)
    try:
        return client.send(request, stream=True)
    except HostNotAllowed as exc:
        # Raised by the address guard before any connection was made.
        raise type(exc)(str(exc), vendor=vendor) from None
    except httpx.TimeoutException as exc:
        if clock() >= deadline - 0.05:
            raise DeadlineExceeded(late, vendor=vendor) from None
        raise VendorTransientError(f"timeout ({type(exc).__name__}) calling {where}", vendor=vendor) from None
    except httpx.DecodingError:
        # Only a transport that decodes eagerly (respx) gets here; a bad body never heals by retrying.
        raise VendorResponseError(f"unreadable body (DecodingError) from {where}", vendor=vendor) from None
    except httpx.HTTPError as exc:
        raise VendorTransientError(f"transport error ({type(exc).__name__}) calling {where}", vendor=vendor) from None


def _error_body(
    response: httpx.Response,
    *,
    bounds: FetchLimits,
    deadline: float,
    clock: Callable[[], float],
    vendor: str | None,
) -> bytes | None:
    """An error response's small JSON body for the adapter to read the vendor's words from, or None.

    Only a JSON Content-Type in identity encoding, at most ERROR_BODY_MAX_BYTES (never read further),
    within the call's own deadline; anything else, or any failure reading it, leaves the status error as is.
    """
    if not is_json_media_type(response.headers.get("content-type")):
        return None
    try:
        return read_capped(
            response,
            deadline=deadline,
            deadline_s=bounds.deadline_s,
            max_bytes=min(ERROR_BODY_MAX_BYTES, bounds.max_bytes),
            clock=clock,
            where=redact_url(response.request.url),
            vendor=vendor,
        )
    except (httpx.HTTPError, VendorError):
        return None


def _finish(
    response: httpx.Response,
    *,
    rate_limit_statuses: frozenset[int],
    bounds: FetchLimits,
    deadline: float,
    clock: Callable[[], float],
    vendor: str | None,
) -> VendorResponse:
    where = redact_url(response.request.url)
    error = error_for_status(
        response.status_code, response.headers, vendor=vendor, where=where, rate_limit_statuses=rate_limit_statuses
    )
    if error is not None:
        error.body = _error_body(response, bounds=bounds, deadline=deadline, clock=clock, vendor=vendor)
        raise error
    try:
        body = read_capped(
            response,
            deadline=deadline,
            deadline_s=bounds.deadline_s,
            max_bytes=bounds.max_bytes,
            clock=clock,
            where=where,
            vendor=vendor,
        )
    except httpx.TimeoutException:
        raise DeadlineExceeded(f"response from {where} timed out while reading", vendor=vendor) from None
    except httpx.TransportError as exc:
        raise VendorTransientError(f"transport error ({type(exc).__name__}) reading {where}", vendor=vendor) from None
    except httpx.HTTPError as exc:
        raise VendorResponseError(f"unreadable body ({type(exc).__name__}) from {where}", vendor=vendor) from None
    return VendorResponse(status=response.status_code, url=where, headers=response.headers, body=body)


def fetch(
    client: httpx.Client,
    url: str,
    *,
    policy: HostPolicy,
    limits: FetchLimits | None = None,
    headers: Mapping[str, str] | None = None,
    vendor: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    credential_headers: Iterable[str] = (),
    exchange: Exchange | None = None,
) -> VendorResponse:
    """Send one request (no retries): policy-checked, redirects followed by hand, body read under the caps.

    A GET by default; `exchange` gives a write's method and body (then `headers` is ignored).
    """
    bounds = limits or FetchLimits()
    sent = exchange or Exchange(headers=headers)
    deadline = clock() + bounds.deadline_s
    current = httpx.URL(url)
    policy.check(current)
    first_origin = origin_of(current)
    secrets = credential_header_names(credential_headers)
    on_first_origin = True
    for _hop in range(bounds.max_redirects + 1):
        strip = frozenset() if on_first_origin else secrets
        response = _send(
            client, current, sent, strip=strip, bounds=bounds, deadline=deadline, clock=clock, vendor=vendor
        )
        try:
            if response.status_code not in REDIRECT_STATUSES:
                return _finish(
                    response,
                    rate_limit_statuses=sent.rate_limit_statuses,
                    bounds=bounds,
                    deadline=deadline,
                    clock=clock,
                    vendor=vendor,
                )
            if sent.method in WRITE_METHODS and response.status_code not in _BODY_KEEPING_REDIRECTS:
                where = f"{sent.method} {redact_url(current)}"
                message = f"{where} answered {response.status_code}; a write is not replayed as a GET"
                raise RedirectRefused(message, vendor=vendor)
            current = redirect_target(current, response, policy=policy, vendor=vendor)
            # Once the chain has left the first origin, credentials stay off even if it comes back:
            # the hop that sent it back was chosen by a server that never saw the key.
            on_first_origin = on_first_origin and origin_of(current) == first_origin
        finally:
            response.close()
    raise RedirectRefused(f"more than {bounds.max_redirects} redirects starting at {redact_url(url)}", vendor=vendor)
