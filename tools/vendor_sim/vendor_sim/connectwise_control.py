"""The /_sim/psa/connectwise routes: read a ticket, change it as a person in the PSA would, its screen, the key.

A change made here is a save by a PSA user (`member`, default `dispatcher`), never by the API member, and
sends the same signed callbacks an API change does; the answer lists each delivery's outcome. `key_url`
and `FromUrl` are built from the Host this request came in on, so call these routes at the origin the
consumer uses for the ConnectWise site (`{simulator}/connectwise`).
"""

from __future__ import annotations

import html
import os
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from vendor_sim import connectwise, connectwise_callbacks
from vendor_sim.connectwise_model import MEMBER_PATTERN, PSA_PERSON, Store, Ticket
from vendor_sim.state import SimState
from vendor_sim.validate import Problems, fields, json_body

PORTAL_ENV = "VENDOR_SIM_PORTAL_URL"
DEFAULT_PORTAL_URL = "http://localhost:8000"
VENDOR = "connectwise"


def _store(request: Request) -> Store:
    sim: SimState = request.app.state.sim
    store = sim.vendors[VENDOR]
    assert isinstance(store, Store)
    return store


def _not_found(request: Request) -> Response:
    detail = f"the simulated ConnectWise has no ticket {request.path_params['ticket_id']}"
    return JSONResponse({"error": "not_found", "detail": detail}, status_code=404)


def _ticket(request: Request) -> Ticket | None:
    raw = request.path_params["ticket_id"]
    store = _store(request)
    with store.lock:
        return store.tickets.get(int(raw)) if raw.isdigit() and len(raw) <= 9 else None


def _view(store: Store, ticket: Ticket) -> dict[str, Any]:
    with store.lock:
        return ticket.state()


async def ticket_get(request: Request) -> Response:
    """GET /_sim/psa/connectwise/tickets/{id}: status, owner, notes and the callbacks sent for it."""
    ticket = _ticket(request)
    return JSONResponse(_view(_store(request), ticket)) if ticket else _not_found(request)


def _member(problems: Problems, body: dict[str, Any]) -> str:
    member = body.get("member", PSA_PERSON)
    if not isinstance(member, str) or not MEMBER_PATTERN.match(member):
        problems.add("member", "must be a member identifier (letters, digits, '_', '.', '@', '-')")
        return PSA_PERSON
    return member


async def _change(request: Request, name: str) -> Response:
    ticket = _ticket(request)
    if ticket is None:
        return _not_found(request)
    store = _store(request)
    status, value, member = None, None, PSA_PERSON
    body, problems = await json_body(request)
    if not problems and fields(problems, "", body, required=(name,), optional=("member",)):
        member = _member(problems, body)
        value = body[name]
        if name == "status":
            status = ticket.board.status(name=value) if isinstance(value, str) else None
            if status is None:
                names = ", ".join(s.name for s in ticket.board.statuses)
                problems.add("status", f"must be a status of board {ticket.board.name}: {names}")
        elif value is not None and (not isinstance(value, str) or not MEMBER_PATTERN.match(value)):
            problems.add("owner", "must be null or a member identifier (letters, digits, '_', '.', '@', '-')")
    if problems:
        return problems.response()
    with store.lock:
        if status is not None:
            ticket.set_status(status, member)
        else:
            ticket.owner = value
            ticket.touch(member)
    deliveries = await connectwise_callbacks.announce(
        store, ticket.id, member=member, site_url=connectwise.site_url(request)
    )
    return JSONResponse({"ticket": _view(store, ticket), "deliveries": deliveries})


async def status_post(request: Request) -> Response:
    """POST /_sim/psa/connectwise/tickets/{id}/status {status, member?}: a person changes the status."""
    return await _change(request, "status")


async def owner_post(request: Request) -> Response:
    """POST /_sim/psa/connectwise/tickets/{id}/owner {owner: identifier | null, member?}: a person changes the owner."""
    return await _change(request, "owner")


def portal_url() -> str:
    """The portal the screen frames: VENDOR_SIM_PORTAL_URL (default http://localhost:8000), without a final /."""
    value = os.environ.get(PORTAL_ENV, "").strip() or DEFAULT_PORTAL_URL
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(
            f"{PORTAL_ENV} must be an http(s) URL without a query or fragment, such as {DEFAULT_PORTAL_URL}"
        )
    return value.rstrip("/")


_SCREEN = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Service Ticket #{id} - ConnectWise PSA (vendor_sim)</title>
<style>
body {{ margin: 0; font-family: Arial, Helvetica, sans-serif; background: #f3f5f7; color: #1d2733; }}
header {{ background: #026cb6; color: #fff; padding: 8px 16px; font-size: 14px; }}
main {{ display: flex; gap: 16px; padding: 16px; }}
section.ticket {{ flex: 1; background: #fff; border: 1px solid #ccd3da; padding: 12px 16px; }}
aside.pod {{ width: 480px; background: #fff; border: 1px solid #ccd3da; }}
aside.pod h2 {{ font-size: 13px; margin: 0; padding: 6px 10px; background: #e6ebf0; }}
dl {{ display: grid; grid-template-columns: 9em 1fr; gap: 6px 12px; }}
dt {{ font-weight: bold; }}
iframe {{ display: block; width: 100%; height: 640px; border: 0; }}
</style>
</head>
<body>
<header>ConnectWise PSA &middot; Service Board &middot; simulated by vendor_sim</header>
<main>
<section class="ticket">
<h1>Service Ticket #<span id="ticket-number">{id}</span></h1>
<dl>
<dt>Summary</dt><dd id="ticket-summary">{summary}</dd>
<dt>Status</dt><dd id="ticket-status">{status}</dd>
<dt>Board</dt><dd>{board}</dd>
<dt>Company</dt><dd>{company}</dd>
<dt>Owner</dt><dd id="ticket-owner">{owner}</dd>
</dl>
</section>
<aside class="pod">
<h2>MSP Back Office</h2>
<iframe title="MSP ticket pod for ticket #{id}" src="{pod}" width="480" height="640"></iframe>
</aside>
</main>
</body>
</html>
"""


async def screen_get(request: Request) -> Response:
    """GET /_sim/psa/connectwise/tickets/{id}/screen: a ticket screen that frames the portal's pod (cross-site)."""
    ticket = _ticket(request)
    if ticket is None:
        return _not_found(request)
    try:
        portal = portal_url()
    except ValueError as exc:
        return JSONResponse({"error": "misconfigured", "detail": str(exc)}, status_code=500)
    view = _view(_store(request), ticket)
    page = _SCREEN.format(
        id=view["id"],
        summary=html.escape(view["summary"]),
        status=html.escape(view["status"]),
        board=html.escape(view["board"]),
        company=html.escape(view["company"]["identifier"]),
        owner=html.escape(view["owner"] or "(none)"),
        pod=html.escape(f"{portal}/pod/connectwise/tickets/{view['id']}"),
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


def _key(request: Request, store: Store) -> dict[str, str]:
    with store.lock:
        key_id = store.key.id
    return {"key_id": key_id, "key_url": connectwise_callbacks.key_url(connectwise.site_url(request), key_id)}


async def key_get(request: Request) -> Response:
    """GET /_sim/psa/connectwise/callback-key: the current key's id and URL (never the key)."""
    return JSONResponse(_key(request, _store(request)))


async def rotate_key(request: Request) -> Response:
    """POST /_sim/psa/connectwise/rotate-key: a new signing key; the old key id answers 404 from now on."""
    store = _store(request)
    store.rotate_key()
    return JSONResponse(_key(request, store))


def routes() -> list[Route]:
    """The ConnectWise control routes."""
    base = "/_sim/psa/connectwise"
    return [
        Route(f"{base}/tickets/{{ticket_id}}", ticket_get, methods=["GET"]),
        Route(f"{base}/tickets/{{ticket_id}}/status", status_post, methods=["POST"]),
        Route(f"{base}/tickets/{{ticket_id}}/owner", owner_post, methods=["POST"]),
        Route(f"{base}/tickets/{{ticket_id}}/screen", screen_get, methods=["GET"]),
        Route(f"{base}/callback-key", key_get, methods=["GET"]),
        Route(f"{base}/rotate-key", rotate_key, methods=["POST"]),
    ]
