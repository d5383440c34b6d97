"""Turn a fault rule and the normal payload into the response the simulator sends."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import formatdate

from starlette.responses import Response, StreamingResponse

from vendor_sim.payload import Payload
from vendor_sim.rdap import RDAP_MEDIA
from vendor_sim.state import Fault

_HTML = b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body><h1>We'll be back soon</h1></body></html>"
_MALFORMED = b'{"objectClassName": "domain", "ldhName": "truncated.example", "status": ["act'
# How the simulator waits (delay, drip pauses, latency); tests pass one that records the waits.
Sleep = Callable[[float], Awaitable[None]]
# The body a vendor sends with a status (429, 503, `error`), given the status and a title.
ErrorBody = Callable[[int, str], Payload]


def plain(payload: Payload) -> Response:
    """The payload as an ordinary response."""
    return Response(payload.body, status_code=payload.status, media_type=payload.media_type, headers=payload.headers)


def _retry_after(fault: Fault) -> dict[str, str]:
    return {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}


def http_date_in(seconds: float) -> str:
    """An IMF-fixdate `seconds` from now (for Retry-After given as an HTTP-date)."""
    return formatdate(time.time() + seconds, usegmt=True)


def rdap_error(code: int, title: str) -> Payload:
    """The RDAP error object the simulator sends for a status fault."""
    body = json.dumps({"errorCode": code, "title": title, "description": ["vendor_sim fault"]}).encode()
    return Payload(status=code, body=body, media_type=RDAP_MEDIA)


def _status(code: int, title: str, fault: Fault, error: ErrorBody) -> Response:
    payload = error(code, title)
    headers = {**payload.headers, **_retry_after(fault)}
    return Response(payload.body, status_code=code, media_type=payload.media_type, headers=headers)


async def _drip(body: bytes, fault: Fault, sleep: Sleep) -> AsyncIterator[bytes]:
    pieces = max(1, min(fault.chunks, len(body) or 1))
    size = -(-len(body) // pieces) or 1
    pause = fault.seconds / pieces
    for start in range(0, max(len(body), 1), size):
        await sleep(pause)
        yield body[start : start + size]


async def _huge(total: int) -> AsyncIterator[bytes]:
    head = b'{"objectClassName": "domain", "padding": "'
    tail = b'"}'
    yield head
    left = max(total - len(head) - len(tail), 0)
    block = b"a" * 65536
    while left > 0:
        chunk = block[: min(left, len(block))]
        left -= len(chunk)
        yield chunk
        # Let the event loop notice a client that hung up.
        await asyncio.sleep(0)
    yield tail


async def apply(
    fault: Fault,
    payload: Payload,
    *,
    sleep: Sleep = asyncio.sleep,
    error: ErrorBody = rdap_error,
    media: str = RDAP_MEDIA,
) -> Response:
    """The response for a request hit by a fault (delay sleeps, then serves the normal payload)."""
    if fault.mode == "delay":
        await sleep(fault.seconds)
        return plain(payload)
    if fault.mode == "drip":
        return StreamingResponse(
            _drip(payload.body, fault, sleep),
            status_code=payload.status,
            media_type=payload.media_type,
            headers=payload.headers,
        )
    if fault.mode == "429":
        return _status(429, "Too Many Requests", fault, error)
    if fault.mode == "503":
        return _status(503, "Service Unavailable", fault, error)
    if fault.mode == "error":
        return _status(fault.status, "Simulated error", fault, error)
    if fault.mode == "malformed":
        return Response(_MALFORMED, status_code=200, media_type=media)
    if fault.mode == "html":
        return Response(_HTML, status_code=200, media_type="text/html")
    if fault.mode == "redirect":
        return Response(b"", status_code=302, headers={"Location": fault.location or "/"})
    if fault.mode == "huge":
        total = int(fault.size_mb * 1024 * 1024)
        headers = {"Content-Length": str(total)} if fault.declare_length else {}
        return StreamingResponse(_huge(total), status_code=200, media_type=media, headers=headers)
    raise ValueError(f"unknown fault mode {fault.mode}")
