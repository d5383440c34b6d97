"""FastAPI dependencies for pages: the signed-in viewer (with the CSRF check), their API client, role gates."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from mspkit.requestid import note_sub
from portal.api import ApiClient
from portal.auth.cookies import POD_COOKIE, SESSION_COOKIE
from portal.auth.returnto import safe_return_to
from portal.auth.store import SessionRecord, load_session
from portal.errors import CsrfRejected, NotSignedIn, PageNotFound
from portal.pod.paths import is_pod_request
from portal.pod.store import load_pod
from portal.runtime import runtime

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_UNSET = object()


@dataclass(frozen=True)
class Viewer:
    """The signed-in person, as their id_token said (read through the claim mapping)."""

    sub: str
    role: str
    client_id: str | None
    name: str
    auth_time: int
    csrf_token: str


def here(request: Request) -> str:
    """Where to come back after signing in: this page (for htmx, the page it was loaded into)."""
    current = request.headers.get("HX-Current-URL")
    if current and request.headers.get("HX-Request"):
        origin = f"{request.url.scheme}://{request.url.netloc}"
        if current.startswith(origin + "/"):
            return safe_return_to(current[len(origin) :])
    if request.method not in SAFE_METHODS:
        return "/"  # a form's target is no page to come back to
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return safe_return_to(path)


async def current_session(request: Request) -> SessionRecord | None:
    """The live session of this request's cookie, or None (looked up once per request).

    On /pod/* that is the pod cookie's session (never the portal's cookie); elsewhere the portal's.
    """
    cached = getattr(request.state, "portal_session", _UNSET)
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    rt = runtime(request)
    record = None
    # Each cookie counts on its own paths only: the pod's on /pod/*, the portal's everywhere else.
    if is_pod_request(request):
        pod_id = request.cookies.get(POD_COOKIE)
        if pod_id and rt.settings.pod_enabled:
            record = await run_in_threadpool(
                load_pod,
                rt.engine,
                rt.box,
                pod_id,
                now=rt.clock(),
                pod_idle_s=rt.settings.pod_idle_s,
                session_idle_s=rt.settings.session_idle_s,
            )
    else:
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            record = await run_in_threadpool(
                load_session, rt.engine, rt.box, session_id, now=rt.clock(), idle_s=rt.settings.session_idle_s
            )
    request.state.portal_session = record
    return record


async def check_csrf(request: Request, expected: str) -> None:
    """Raise CsrfRejected unless an unsafe request carries the session's token (header or form field)."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # Starlette caches it: the route's Form fields still read it
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRejected("missing or wrong CSRF token")


def viewer_of(record: SessionRecord) -> Viewer:
    """The person a live session belongs to."""
    who = record.identity
    return Viewer(who.sub, who.role, who.client_id, who.name, who.auth_time, record.csrf)


async def known_viewer(request: Request) -> Viewer | None:
    """Who is signed in, without the CSRF check: error pages still show the navigation and Sign out."""
    cached = getattr(request.state, "viewer", None)
    if isinstance(cached, Viewer):
        return cached
    record = await current_session(request)
    return None if record is None else viewer_of(record)


async def viewer(request: Request) -> Viewer:
    """The signed-in person (else a redirect to sign-in and back); unsafe methods must carry the CSRF token."""
    cached = getattr(request.state, "viewer", None)
    if isinstance(cached, Viewer):
        return cached
    record = await current_session(request)
    if record is None:
        raise NotSignedIn(here(request))
    await check_csrf(request, record.csrf)
    person = viewer_of(record)
    note_sub(person.sub)
    request.state.viewer = person
    return person


async def api(request: Request) -> ApiClient:
    """An API client acting as the signed-in person (their own token per API; never a service identity)."""
    await viewer(request)
    record = await current_session(request)
    assert record is not None  # viewer() raised otherwise
    return ApiClient(runtime(request), record, return_to=here(request))


def require_roles(*roles: str) -> Callable[..., Awaitable[Viewer]]:
    """A dependency admitting only these roles; anyone else gets the 404 page (as the APIs answer)."""
    allowed = frozenset(roles)

    async def _require(person: Annotated[Viewer, Depends(viewer)]) -> Viewer:
        if person.role not in allowed:
            raise PageNotFound()
        return person

    return _require


CurrentViewer = Annotated[Viewer, Depends(viewer)]
ApiDep = Annotated[ApiClient, Depends(api)]
