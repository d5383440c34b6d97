"""The /_sim routes for RDAP names, vendor state and rate limits (dev and tests only)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vendor_sim.keys import VENDORS
from vendor_sim.rdap_state import domain_name, parse_change
from vendor_sim.state import SimState, StateStore
from vendor_sim.validate import json_body


def _sim(request: Request) -> SimState:
    sim: SimState = request.app.state.sim
    return sim


def _store(request: Request) -> StateStore | None:
    return _sim(request).vendors.get(request.path_params["vendor"])


def _unknown_vendor(request: Request) -> Response:
    known = ", ".join(sorted(_sim(request).vendors))
    return JSONResponse({"error": "not_found", "detail": f"no simulated vendor by that name (known: {known})"}, 404)


async def rdap_domains_get(request: Request) -> Response:
    """GET /_sim/rdap/domains: every name the registry knows."""
    return JSONResponse({"items": _sim(request).rdap.names()})


async def rdap_domain_put(request: Request) -> Response:
    """PUT /_sim/rdap/domains/{name} {registrar?, nameservers?, expires_at?, statuses?}: change or add a name."""
    name = domain_name(request.path_params["name"])
    body, problems = await json_body(request)
    if name is None:
        problems.add("name", "the path must name a domain, such as example.com")
    if not problems:
        change, problems = parse_change(body)
    if problems or name is None:
        return problems.response()
    created = _sim(request).rdap.put(name, change)
    return JSONResponse({"name": name, **_sim(request).rdap.view(name)}, status_code=201 if created else 200)


async def state_get(request: Request) -> Response:
    """GET /_sim/{vendor}/state: the simulated vendor's state, keys as fingerprints only."""
    store = _store(request)
    return JSONResponse(store.snapshot()) if store is not None else _unknown_vendor(request)


async def state_put(request: Request) -> Response:
    """PUT /_sim/{vendor}/state: validate and replace the vendor's state (400 naming every bad field)."""
    store = _store(request)
    if store is None:
        return _unknown_vendor(request)
    body, problems = await json_body(request)
    if not problems:
        problems = store.replace(body)
    return problems.response() if problems else JSONResponse(store.snapshot())


async def ratelimit_post(request: Request) -> Response:
    """POST /_sim/ratelimit {vendor, per_second}: a vendor's limit (0 switches it off)."""
    body, problems = await json_body(request)
    if not problems and isinstance(body, dict):
        vendor, rate = body.get("vendor"), body.get("per_second")
        if vendor not in VENDORS:
            problems.add("vendor", f"must be one of {', '.join(VENDORS)}")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 100_000:
            problems.add("per_second", "must be a number from 0 (off) to 100000")
        for extra in sorted(set(body) - {"vendor", "per_second"}):
            problems.add(extra, "is not a known field")
    elif not problems:
        problems.add("body", "must be a JSON object")
    if problems:
        return problems.response(422)
    _sim(request).limits.set(body["vendor"], float(body["per_second"]))
    return JSONResponse({"vendor": body["vendor"], "per_second": float(body["per_second"])})


async def ratelimit_get(request: Request) -> Response:
    """GET /_sim/ratelimit: each vendor's limit per second (0 = off)."""
    return JSONResponse({"limits": _sim(request).limits.settings()})


def routes() -> list[Route]:
    """The control routes this module serves."""
    return [
        Route("/_sim/rdap/domains", rdap_domains_get, methods=["GET"]),
        Route("/_sim/rdap/domains/{name}", rdap_domain_put, methods=["PUT"]),
        Route("/_sim/ratelimit", ratelimit_post, methods=["POST"]),
        Route("/_sim/ratelimit", ratelimit_get, methods=["GET"]),
        Route("/_sim/{vendor}/state", state_get, methods=["GET"]),
        Route("/_sim/{vendor}/state", state_put, methods=["PUT"]),
    ]
