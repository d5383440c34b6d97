"""The core every page relies on: security headers, CSRF on every state change, role gates, error pages, assets."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, Form, Request
from fastapi.routing import APIRoute
from portal_helpers import sign_in
from starlette.testclient import TestClient

from portal.auth.cookies import SESSION_COOKIE
from portal.auth.store import Identity, create_session
from portal.deps import ApiDep, CurrentViewer, Viewer, api, require_roles, viewer
from portal.errors import ApiUnavailable
from portal.headers import CSP
from portal.main import create_portal_app
from portal.templating import render

pytestmark = pytest.mark.timeout(120)
STATIC = Path(__file__).parents[2] / "services" / "portal" / "portal" / "static"


@pytest.fixture(scope="module")
def probe(portal_rt):
    """A portal app with extra routes that use the public interface, served in-process over https://."""
    changed: list[str] = []
    app = create_portal_app(portal_rt.settings, runtime_factory=lambda: portal_rt)

    @app.post("/_probe/change")
    async def change(request: Request, person: CurrentViewer, note: Annotated[str, Form()] = "") -> dict:
        changed.append(note)
        return {"by": person.sub}

    @app.delete("/_probe/change")
    async def remove(person: CurrentViewer) -> dict:
        changed.clear()
        return {}

    @app.get("/_probe/admins")
    async def admins(request: Request, person: Annotated[Viewer, Depends(require_roles("admin"))]):
        return render(request, "home.html", {"areas": []})

    @app.get("/_probe/down")
    async def down(person: CurrentViewer, client: ApiDep):
        raise ApiUnavailable("intake")

    # https:// base URL: the TestClient then sends the Secure session cookie as a browser would.
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client, changed


def _session(rt, role: str = "technician", sub: str = "tech1") -> tuple[str, str]:
    session_id, record = create_session(
        rt.engine,
        rt.box,
        Identity(sub, role, None, sub, int(time.time())),
        {"refresh_token": "not-a-real-one", "access": {}},
        now=rt.clock(),
        absolute_s=600,
    )
    return session_id, record.csrf


def test_csrf_is_needed_for_every_state_change(probe, portal_rt):
    client, changed = probe
    session_id, csrf = _session(portal_rt)
    client.cookies.set(SESSION_COOKIE, session_id)
    for sent in ({}, {"csrf_token": "x" * 43}, {"csrf_token": ""}):
        refused = client.post("/_probe/change", data={"note": "n", **sent})
        assert refused.status_code == 403
        assert "Go back, reload the form and submit it again." in refused.text
    assert client.post("/_probe/change", json={"note": "n"}).status_code == 403
    assert client.post("/_probe/change", data={"note": "n"}, headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert client.delete("/_probe/change").status_code == 403
    assert changed == []  # nothing changed
    assert client.post("/_probe/change", data={"note": "a", "csrf_token": csrf}).json() == {"by": "tech1"}
    assert client.post("/_probe/change", data={"note": "b"}, headers={"X-CSRF-Token": csrf}).status_code == 200
    assert changed == ["a", "b"]
    # Another session's token is not this session's.
    _, other_csrf = _session(portal_rt)
    assert client.post("/_probe/change", data={"note": "c", "csrf_token": other_csrf}).status_code == 403
    assert changed == ["a", "b"]
    client.cookies.clear()


def test_the_403_page_has_the_layout_a_way_home_and_says_what_to_do(probe, portal_rt):
    client, changed = probe
    session_id, csrf = _session(portal_rt)
    client.cookies.set(SESSION_COOKIE, session_id)
    before = list(changed)
    refused = client.post("/_probe/change", data={"note": "n"})
    client.cookies.clear()
    assert refused.status_code == 403
    page = refused.text
    # The signed-in layout: the role's navigation, the person's name and Sign out (with the real token).
    assert '<nav aria-label="Main">' in page and '<a href="/tasks"' in page
    assert '<span class="who">tech1</span>' in page and "Sign out" in page
    assert f'name="csrf_token" value="{csrf}"' in page
    assert '<a href="/">Go to your home page</a>' in page
    # The body says what to do, not the heading again, and never to reload a POST's answer.
    body = page.split("</h1>", 1)[1]
    assert "This form has expired" not in body
    assert "Go back, reload the form and submit it again." in body
    assert "reload the page" not in page
    assert changed == before


def test_the_404_page_of_an_unknown_path_keeps_the_signed_in_layout(probe, portal_rt):
    client, _ = probe
    session_id, _ = _session(portal_rt)
    client.cookies.set(SESSION_COOKIE, session_id)
    missing = client.get("/no-such-page")
    client.cookies.clear()
    assert missing.status_code == 404
    assert '<span class="who">tech1</span>' in missing.text and '<a href="/">Go to your home page</a>' in missing.text


def test_the_site_icon_is_linked_and_favicon_ico_leads_to_it(probe):
    client, _ = probe
    icon = client.get("/favicon.ico", follow_redirects=False)
    assert icon.status_code in (301, 302, 307, 308)
    assert icon.headers["location"] == "/static/favicon.svg"
    svg = client.get("/static/favicon.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in svg.text
    page = client.get("/signed-out")  # every page extends base.html, which links the icon
    assert page.status_code == 200 and '<link rel="icon" href="/static/favicon.svg"' in page.text


def test_an_unsafe_request_without_a_session_changes_nothing(probe):
    client, changed = probe
    before = list(changed)
    resp = client.post("/_probe/change", data={"note": "x"})
    assert resp.status_code == 303 and resp.headers["location"] == "/login?return_to=%2F"
    assert changed == before


def test_another_role_gets_the_404_page(probe, portal_rt):
    client, _ = probe
    session_id, _ = _session(portal_rt, role="technician")
    client.cookies.set(SESSION_COOKIE, session_id)
    resp = client.get("/_probe/admins")
    assert resp.status_code == 404 and "Not found" in resp.text
    admin_id, _ = _session(portal_rt, role="admin", sub="admin")
    client.cookies.set(SESSION_COOKIE, admin_id)
    assert client.get("/_probe/admins").status_code == 200
    assert client.get("/no/such/page").status_code == 404
    client.cookies.clear()


def test_unavailable_is_the_try_again_page(probe, portal_rt):
    client, _ = probe
    session_id, _ = _session(portal_rt)
    client.cookies.set(SESSION_COOKIE, session_id)
    resp = client.get("/_probe/down")
    assert resp.status_code == 503
    assert "A service is not answering; try again in a minute." in resp.text
    assert "Traceback" not in resp.text
    client.cookies.clear()


def _assert_security_headers(resp: httpx.Response, *, cached: bool = False) -> None:
    assert resp.headers["content-security-policy"] == CSP
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] == "no-referrer"
    if not cached:
        assert resp.headers["cache-control"] == "no-store"


def test_security_headers_are_on_every_response(portal_live):
    client = sign_in(portal_live, "admin")
    for resp in (
        client.get("/"),
        client.get("/no/such/page"),
        httpx.get(portal_live + "/"),
        httpx.get(portal_live + "/login"),
        httpx.get(portal_live + "/signed-out"),
        httpx.get(portal_live + "/auth/callback?state=x&code=y"),
        httpx.get(portal_live + "/readyz"),
    ):
        _assert_security_headers(resp)
    static = httpx.get(portal_live + "/static/htmx.min.js")
    assert static.status_code == 200
    _assert_security_headers(static, cached=True)
    assert "no-store" not in static.headers["cache-control"]


def test_pages_have_no_inline_script_and_configure_htmx(portal_live):
    page = sign_in(portal_live, "tech1").get("/").text
    assert '<script src="/static/htmx.min.js" defer></script>' in page
    assert page.count("<script") == page.count("<script src=")
    assert " style=" not in page and " on" + "click=" not in page
    for setting in ('"allowEval":false', '"selfRequestsOnly":true', '"includeIndicatorStyles":false'):
        assert setting in page
    assert 'href="#main"' in page and '<main id="main"' in page and 'role="status"' in page and 'lang="en"' in page


def test_htmx_is_2_0_4_and_its_licence_is_named():
    head = (STATIC / "htmx.min.js").read_text()[:2000]
    assert 'version:"2.0.4"' in head
    readme = (STATIC / "README.md").read_text()
    assert "2.0.4" in readme and "0BSD" in readme


def test_readyz_checks_the_database(portal_live):
    resp = httpx.get(portal_live + "/readyz")
    assert resp.status_code == 200 and resp.json()["checks"] == {"database": "ok"}
    assert httpx.get(portal_live + "/metrics").status_code == 200


def _depends_on(route: APIRoute, extra: list, wanted: set) -> bool:
    stack = [route.dependant, *(d for d in extra)]
    while stack:
        dep = stack.pop()
        if getattr(dep, "call", None) in wanted or getattr(dep, "dependency", None) in wanted:
            return True
        stack.extend(getattr(dep, "dependencies", []))
    return False


def _routes(routes, extra=()):
    """Every APIRoute with the dependencies its include_router calls added (Starlette 1 keeps routers nested)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route, list(extra)
        elif hasattr(route, "original_router"):
            context = getattr(route, "include_context", None)
            yield from _routes(route.original_router.routes, [*extra, *getattr(context, "dependencies", [])])


def test_every_state_changing_route_checks_csrf():
    """Pages included: each unsafe route depends on `viewer` (which checks the token) or is /logout.

    `/pod/session` has no session to hold a token yet: it checks `Origin` and spends a single-use code
    (tests/portal/test_pod.py).
    """
    from portal.main import app

    unsafe = [(r, x) for r, x in _routes(app.routes) if r.methods & {"POST", "PUT", "PATCH", "DELETE"}]
    assert any(r.path == "/logout" for r, _ in unsafe)
    exempt = {"/logout", "/pod/session"}
    unchecked = [r.path for r, x in unsafe if r.path not in exempt and not _depends_on(r, x, {viewer, api})]
    assert unchecked == []
