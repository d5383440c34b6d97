"""The pod's routes: its page, its session (a code in, the pod cookie out), its Reveal, and the sign-in pop-up."""

from __future__ import annotations

import hmac
import re
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.responses import RedirectResponse, Response

from mspkit.logging import get_logger
from mspkit.requestid import note_sub
from portal.api import ApiClient
from portal.auth.cookies import POD_COOKIE, set_pod_cookie
from portal.auth.recent import fresh_sign_in_url, signed_in_recently
from portal.auth.store import load_session_hash
from portal.deps import current_session, viewer_of
from portal.errors import ApiUnavailable, NotSignedIn, PageNotFound
from portal.handlers import login_url
from portal.pages.technician import reveal
from portal.pod import page
from portal.pod.paths import SIGNIN_PATH, pod_page
from portal.pod.store import create_pod_session, delete_pod_session, mint_code, take_code
from portal.runtime import runtime
from portal.templating import render

router = APIRouter(include_in_schema=False)
log = get_logger("portal.pod")
# A ticket id as intake's `psa_ticket_id` filter takes it; a code as `new_id()` makes it.
TICKET_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
CODE = re.compile(r"[A-Za-z0-9_-]{43}")


def pod_ticket(request: Request, provider: str, ticket_id: str) -> str:
    """The path's ticket id on the configured PSA's pod; any other provider (or none configured) is the 404 page."""
    settings = runtime(request).settings
    if not settings.pod_enabled or provider != settings.psa_provider or not TICKET_ID.fullmatch(ticket_id):
        raise PageNotFound()
    return ticket_id


def pod_on(request: Request) -> None:
    """Every /pod path is the 404 page while no PSA is configured."""
    if not runtime(request).settings.pod_enabled:
        raise PageNotFound()


PodTicket = Annotated[str, Depends(pod_ticket)]


def _refusal(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


@router.get("/pod/{provider}/tickets/{ticket_id}", response_class=HTMLResponse)
async def pod_view(request: Request, provider: str, ticket_id: PodTicket) -> HTMLResponse:
    """The pod: Sign in, or the ticket's task (credentials and Reveal for its assignee), or a plain not-found."""
    base: dict[str, Any] = {"provider": provider, "ticket_id": ticket_id}
    record = await current_session(request)
    if record is None:
        return page.page(request, {**base, "state": "signin"})
    person = viewer_of(record)
    note_sub(person.sub)
    request.state.viewer = person
    client = ApiClient(runtime(request), record, return_to=pod_page(provider, ticket_id))
    task = await page.linked_task(client, person, ticket_id)
    if task is None:
        # The same words for no link, another client's task and a client role: nothing is revealed.
        return page.page(request, {**base, "state": "none"}, status_code=404)
    return page.page(request, {**base, **await page.task_context(request, person, client, task)})


# The portal's own Reveal (release, unwrap, show once), under the pod cookie and the pod's CSRF secret.
router.add_api_route(
    "/pod/{provider}/tickets/{ticket_id}/tasks/{task_id}/reveal",
    reveal.reveal,
    methods=["POST"],
    response_class=HTMLResponse,
    dependencies=[Depends(pod_ticket)],
)


@router.get(SIGNIN_PATH, response_class=HTMLResponse)
async def pod_signin(request: Request) -> Response:
    """The sign-in pop-up: the portal's normal sign-in, then a 60-second code handed to the pod by postMessage."""
    pod_on(request)
    rt = runtime(request)
    record = await current_session(request)  # the portal's own cookie: this is a first-party page
    if record is None:
        return RedirectResponse(login_url(SIGNIN_PATH), status_code=303)
    person = viewer_of(record)
    request.state.viewer = person
    if not signed_in_recently(person, rt.clock()):
        # A pod exists to reveal, and Reveal needs a recent sign-in: ask for one now, not at the first reveal.
        return RedirectResponse(fresh_sign_in_url(SIGNIN_PATH), status_code=303)
    code = await run_in_threadpool(mint_code, rt.engine, session_hash=record.id_hash, sub=person.sub, now=rt.clock())
    log.info("pod_code_issued", sub=person.sub)
    return render(request, "pod/signin_done.html", {"code": code})


async def _code_of(request: Request) -> tuple[str, str | None] | None:
    """The code and ticket id of a JSON body `{code, ticket_id?}`, or None when malformed."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        body = await request.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("code"), str) or not CODE.fullmatch(body["code"]):
        return None
    ticket = body.get("ticket_id")
    if ticket is not None and (not isinstance(ticket, str) or not TICKET_ID.fullmatch(ticket)):
        return None
    return body["code"], ticket


@router.post("/pod/session")
async def pod_session_post(request: Request) -> JSONResponse:
    """Trade a sign-in code for the pod cookie; answers the ticket's task id as that person sees it (or null)."""
    pod_on(request)
    rt = runtime(request)
    sent_origin = request.headers.get("origin") or ""
    # Only the pod itself (a page of the portal's own origin) may start a pod session.
    if not hmac.compare_digest(sent_origin.lower().encode(), rt.settings.portal_origin.encode()):
        return _refusal(403, "forbidden", "only the portal's own pages may sign the pod in")
    parsed = await _code_of(request)
    if parsed is None:
        return _refusal(400, "invalid", "send {code, ticket_id} as application/json")
    code, ticket_id = parsed
    now = rt.clock()
    grant = await run_in_threadpool(take_code, rt.engine, code, now=now)
    session = None
    if grant is not None:
        session = await run_in_threadpool(
            load_session_hash, rt.engine, rt.box, grant.session_hash, now=now, idle_s=rt.settings.session_idle_s
        )
    if grant is None or session is None or session.identity.sub != grant.sub:
        return _refusal(401, "code_invalid", "this sign-in code has expired or was already used; sign in again")
    old = request.cookies.get(POD_COOKIE)
    if old:
        await run_in_threadpool(delete_pod_session, rt.engine, old)
    value, pod = await run_in_threadpool(create_pod_session, rt.engine, rt.box, session_hash=session.id_hash, now=now)
    person = viewer_of(session)
    log.info("pod_signed_in", sub=person.sub)
    task_id = None
    if ticket_id is not None:
        client = ApiClient(rt, replace(session, pod_hash=pod.id_hash), return_to="/")
        try:
            task = await page.linked_task(client, person, ticket_id)
        except (ApiUnavailable, NotSignedIn):
            task = None  # the pod page says more once it loads
        task_id = str(task["id"]) if task else None
    answer = JSONResponse({"task_id": task_id, "task_url": f"/tasks/{task_id}" if task_id else None})
    # The cookie lives as long as the portal session may; the pod's 15-minute idle limit is kept server-side.
    set_pod_cookie(answer, value, max(1, int(session.expires_at - now)))
    return answer


@router.get("/pod/session")
async def pod_session_get(request: Request) -> JSONResponse:
    """Whether this request carried a live pod session (the pod's check that its cookie was kept)."""
    pod_on(request)
    return JSONResponse({"signed_in": await current_session(request) is not None})
