"""One path for every simulated vendor request: log, latency, faults, rate limit, credential, then the answer."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vendor_sim import faults
from vendor_sim.keys import fingerprint
from vendor_sim.payload import JSON_MEDIA, Payload
from vendor_sim.state import SimState

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Modes that still serve the vendor's own answer (late or slowly); any other fault answers instead of the vendor.
_PASS_THROUGH = frozenset({"delay", "drip"})
_NOTHING = Payload(status=200, body=b"")


@dataclass(frozen=True)
class Caller:
    """Who is calling: the fingerprint of the credential (None for vendors without one, such as RDAP)."""

    fingerprint: str | None


@dataclass(frozen=True)
class Vendor:
    """How one vendor authenticates, refuses and signals its rate limit."""

    name: str
    # (credential, None) when accepted; (credential or None, the vendor's refusal) otherwise.
    authenticate: Callable[[Request], tuple[str | None, Payload | None]]
    over_limit: Callable[[int], Payload]
    fault_error: Callable[[int, str], Payload]
    media: str = JSON_MEDIA
    log_fields: Callable[[Request], dict[str, Any]] | None = None


Handler = Callable[[Request, Caller], Awaitable[Payload]]
# A vendor module's handler: its store, the request and the caller.
StoreHandler = Callable[[Any, Request, Caller], Awaitable[Payload]]
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def no_credential(_: Request) -> tuple[str | None, Payload | None]:
    """Public data (RDAP): no credential asked for."""
    return None, None


async def serve(request: Request, vendor: Vendor, handler: Handler) -> Response:
    """Answer one vendor request as configured in the simulator's state."""
    sim: SimState = request.app.state.sim
    sleep: faults.Sleep = request.app.state.sleep
    entry = sim.log(request.method, request.url.path, request.headers.get("host", ""))
    entry.update(vendor=vendor.name, over_limit=False)
    if vendor.log_fields is not None:
        entry.update(vendor.log_fields(request))
    if request.method in WRITE_METHODS:
        # A digest, not the body: lets a benchmark spot the same write sent twice.
        entry["body_sha256"] = hashlib.sha256(await request.body()).hexdigest()[:12]
    if sim.latency_ms > 0:
        await sleep(sim.latency_ms / 1000)
    fault = sim.take_fault(request.url.path)
    entry["fault"] = fault.mode if fault else None
    if fault is not None and fault.mode not in _PASS_THROUGH:
        # The fault answers in the vendor's place: nothing is read or changed.
        response = await faults.apply(fault, _NOTHING, sleep=sleep, error=vendor.fault_error, media=vendor.media)
    else:
        payload = await _answer(request, vendor, handler, sim, entry)
        response = await faults.apply(fault, payload, sleep=sleep) if fault else faults.plain(payload)
    entry["status"] = response.status_code
    return response


async def _answer(request: Request, vendor: Vendor, handler: Handler, sim: SimState, entry: dict[str, Any]) -> Payload:
    credential, refusal = vendor.authenticate(request)
    caller = Caller(fingerprint(credential) if credential else None)
    if caller.fingerprint is not None:
        entry["key_fingerprint"] = caller.fingerprint
    retry_after = sim.limits.take(vendor.name)
    if retry_after is not None:
        entry["over_limit"] = True
        return vendor.over_limit(retry_after)
    if refusal is not None:
        return refusal
    return await handler(request, caller)


def routes(vendor: Vendor, prefix: str, store: Any, table: list[tuple[str, StoreHandler, list[str]]]) -> list[Route]:
    """Starlette routes for (path, handler, methods) rows, each answered through `serve` with the store bound."""

    def route(path: str, handler: StoreHandler, methods: list[str]) -> Route:
        async def endpoint(request: Request) -> Response:
            return await serve(request, vendor, lambda req, caller: handler(store, req, caller))

        return Route(prefix + path, endpoint, methods=methods)

    return [route(*row) for row in table]
