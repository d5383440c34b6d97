"""One guarded GET: allowlisted hosts, manual redirects, a wall-clock deadline and a size cap."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from mspkit.http.errors import (
    DeadlineExceeded,
    RedirectRefused,
    VendorResponseError,
    VendorTransientError,
    error_for_status,
)
from mspkit.http.urls import HostPolicy, redact_url

DEFAULT_USER_AGENT = "mspkit-vendor-http/0.1 (+https://example.invalid/msp)"
MAX_BODY_BYTES = 5 * 1024 * 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class FetchLimits:
    """Bounds on one exchange, redirects included."""

    deadline_s: float = 20.0
    max_bytes: int = MAX_BODY_BYTES
    max_redirects: int = 5
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0


@dataclass(frozen=True)
class VendorResponse:
    """A fully read 2xx response; `url` is the redacted final URL."""

    status: int
    url: str
    headers: httpx.Headers
    body: bytes


@dataclass(frozen=True)
class JsonResponse:
    """A 2xx response whose body was parsed as JSON."""

    status: int
    url: str
    headers: httpx.Headers
    data: Any


class JsonObject(dict[str, Any]):
    """A JSON object that remembers every value of keys that appeared more than once (last one wins)."""

    duplicates: dict[str, list[Any]]

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__()
        self.duplicates = {}
        for key, value in pairs:
            if key in self:
                self.duplicates.setdefault(key, [self[key]]).append(value)
            self[key] = value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def parse_json(body: bytes) -> Any:
    """Parse a body strictly as UTF-8 JSON (no NaN/Infinity); raise VendorResponseError otherwise."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise VendorResponseError("response body is not UTF-8") from None
    try:
        return json.loads(text, object_pairs_hook=JsonObject, parse_constant=_refuse_constant)
    except RecursionError:
        raise VendorResponseError("response JSON is nested too deeply") from None
    except ValueError as exc:
        # The JSON error text holds a position, never the body, so it is safe to keep.
        raise VendorResponseError(f"response is not valid JSON: {exc}") from None


def is_json_media_type(content_type: str | None) -> bool:
    """True for application/json and any +json type (application/rdap+json, problem+json...)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def make_client(
    *,
    user_agent: str = DEFAULT_USER_AGENT,
    limits: FetchLimits | None = None,
    transport: httpx.BaseTransport | None = None,
    max_connections: int = 20,
) -> httpx.Client:
    """Build the sync httpx client every vendor call goes through: no auto-redirects, explicit timeouts."""
    bounds = limits or FetchLimits()
    return httpx.Client(
        follow_redirects=False,
        timeout=httpx.Timeout(bounds.read_timeout_s, connect=bounds.connect_timeout_s),
        headers={"User-Agent": user_agent, "Accept-Encoding": "identity"},
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
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


def _read_capped(
    response: httpx.Response,
    *,
    deadline: float,
    limits: FetchLimits,
    clock: Callable[[], float],
    where: str,
    vendor: str | None,
) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > limits.max_bytes:
        raise VendorResponseError(f"response from {where} declares {int(declared)} bytes, over the cap", vendor=vendor)
    chunks: list[bytes] = []
    total = 0
    # No chunk_size: httpx would buffer up to it, and the deadline is only checked between chunks.
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > limits.max_bytes:
            raise VendorResponseError(f"response from {where} is over {limits.max_bytes} bytes", vendor=vendor)
        chunks.append(chunk)
        if clock() > deadline:
            raise DeadlineExceeded(f"response from {where} exceeded its {limits.deadline_s:g}s deadline", vendor=vendor)
    return b"".join(chunks)


def fetch(
    client: httpx.Client,
    url: str,
    *,
    policy: HostPolicy,
    limits: FetchLimits | None = None,
    headers: Mapping[str, str] | None = None,
    vendor: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> VendorResponse:
    """GET a URL once (no retries): policy-checked, redirects followed by hand, body read under the caps."""
    bounds = limits or FetchLimits()
    deadline = clock() + bounds.deadline_s
    current = httpx.URL(url)
    policy.check(current)
    for _hop in range(bounds.max_redirects + 1):
        where = redact_url(current)
        remaining = deadline - clock()
        if remaining <= 0:
            raise DeadlineExceeded(f"request to {where} exceeded its {bounds.deadline_s:g}s deadline", vendor=vendor)
        request = client.build_request(
            "GET", current, headers=dict(headers or {}), timeout=_timeout_for(bounds, remaining)
        )
        try:
            response = client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            if clock() >= deadline - 0.05:
                message = f"request to {where} exceeded its {bounds.deadline_s:g}s deadline"
                raise DeadlineExceeded(message, vendor=vendor) from None
            raise VendorTransientError(f"timeout ({type(exc).__name__}) calling {where}", vendor=vendor) from None
        except httpx.DecodingError:
            raise VendorResponseError(f"unreadable body (DecodingError) from {where}", vendor=vendor) from None
        except httpx.HTTPError as exc:
            message = f"transport error ({type(exc).__name__}) calling {where}"
            raise VendorTransientError(message, vendor=vendor) from None
        try:
            if response.status_code in _REDIRECT_STATUSES:
                location = response.headers.get("location")
                if not location:
                    raise VendorResponseError(f"redirect without Location from {where}", vendor=vendor)
                try:
                    target = current.join(location)
                except (httpx.InvalidURL, ValueError):
                    raise RedirectRefused(f"redirect to an invalid URL from {where}", vendor=vendor) from None
                policy.check(target, redirect=True)
                current = target
                continue
            error = error_for_status(response.status_code, response.headers, vendor=vendor, where=where)
            if error is not None:
                raise error
            try:
                body = _read_capped(response, deadline=deadline, limits=bounds, clock=clock, where=where, vendor=vendor)
            except httpx.TimeoutException:
                raise DeadlineExceeded(f"response from {where} timed out while reading", vendor=vendor) from None
            except httpx.TransportError as exc:
                message = f"transport error ({type(exc).__name__}) reading {where}"
                raise VendorTransientError(message, vendor=vendor) from None
            except httpx.HTTPError as exc:
                # e.g. DecodingError: a body that claims an encoding it does not have.
                message = f"unreadable body ({type(exc).__name__}) from {where}"
                raise VendorResponseError(message, vendor=vendor) from None
            return VendorResponse(status=response.status_code, url=where, headers=response.headers, body=body)
        finally:
            response.close()
    raise RedirectRefused(f"more than {bounds.max_redirects} redirects starting at {redact_url(url)}", vendor=vendor)


def decode_json_response(response: VendorResponse, *, vendor: str | None = None) -> JsonResponse:
    """Check the Content-Type and parse the body as JSON, refusing HTML and other non-JSON bodies."""
    content_type = response.headers.get("content-type")
    if content_type and not is_json_media_type(content_type):
        media = content_type.split(";", 1)[0].strip()[:64]
        raise VendorResponseError(f"expected JSON from {response.url}, got {media}", vendor=vendor)
    try:
        data = parse_json(response.body)
    except VendorResponseError as exc:
        raise VendorResponseError(f"{exc} ({response.url})", vendor=vendor) from None
    return JsonResponse(status=response.status, url=response.url, headers=response.headers, data=data)
