"""The ticket pod on the real services: framing, its own cookie, the sign-in code, and who sees what.

People sign in through the real issuer at the served portal (their portal session); the pod is driven
through a second app on the same database and session key, over https:// (so the `__Host-` cookie is
sent back as a browser sends it) and with a clock the tests move (the 60-second code, the 15-minute
idle limit), never by sleeping. Tasks are made through the APIs and linked to a fresh ticket number
by a committed `intake.task_psa_links` row, as intake's worker would after pushing the ticket.
"""

from __future__ import annotations

import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from portal_helpers import add_person, add_technician, csrf_of, open_world, session_id, sign_in
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parents[1] / "secrets_broker"))

import broker_fixtures
from broker_helpers import World

from portal.auth.cookies import POD_COOKIE, SESSION_COOKIE
from portal.auth.crypto import digest
from portal.auth.oidc import OIDCClient
from portal.main import create_portal_app
from portal.runtime import Runtime
from portal.settings import Settings, is_origin

broker_app = broker_fixtures.broker_app
broker_live = broker_fixtures.broker_live

pytestmark = pytest.mark.timeout(180)

REASON = "checking the ISP portal login for the customer"
POD_SET_COOKIE = re.compile(
    r"__Host-msp_pod=([A-Za-z0-9_-]{43}); Max-Age=(\d+); Path=/; Secure; HttpOnly; SameSite=None; Partitioned"
)
NOT_LINKED = "No task you may see is linked to this ticket."


class Clock:
    """The pod app's clock: real time plus an offset a test sets."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


def pod_app(portal_rt: Any, clock: Clock) -> Any:
    """A portal app on the served portal's database and session key, with the test's clock.

    One per browser: each TestClient runs its own event loop, and an app's pooled API client is bound to one.
    """
    settings = portal_rt.settings
    assert settings.psa_provider == "connectwise" and settings.psa_origin.startswith("http://localhost:")
    rt = Runtime(settings=settings, engine=portal_rt.engine, box=portal_rt.box, oidc=OIDCClient(settings), clock=clock)
    return create_portal_app(settings, runtime_factory=lambda: rt)


@dataclass
class Pod:
    """The pod app's browsers (one per person, each its own cookie jar) and the served portal."""

    rt: Any
    portal_url: str
    origin: str
    clock: Clock
    opened: list[Any] = field(default_factory=list)

    def browser(self) -> TestClient:
        client = TestClient(pod_app(self.rt, self.clock), base_url="https://testserver", follow_redirects=False)
        client.__enter__()
        self.opened.append(client)
        return client

    def code(self, person: httpx.Client) -> str:
        """The code the sign-in pop-up hands the pod (the person's portal session is at the served portal)."""
        popup = person.get("/pod-signin")
        assert popup.status_code == 200, popup.text
        found = re.search(r'data-code="([A-Za-z0-9_-]{43})"', popup.text)
        assert found, popup.text
        return found.group(1)

    def exchange(self, browser: TestClient, code: str, ticket: str | None = None, **headers: str) -> httpx.Response:
        sent = {"Origin": self.origin, **headers}
        return browser.post("/pod/session", json={"code": code, "ticket_id": ticket}, headers=sent)

    def signed_in(self, person: httpx.Client, ticket: str | None = None) -> TestClient:
        """A pod browser signed in as `person` through a fresh code."""
        browser = self.browser()
        answer = self.exchange(browser, self.code(person), ticket)
        assert answer.status_code == 200, answer.text
        assert browser.cookies.get(POD_COOKIE)
        return browser


@pytest.fixture
def pod(portal_live: str, clock: Clock, portal_rt: Any) -> Iterator[Pod]:
    handle = Pod(portal_rt, portal_live, portal_rt.settings.portal_origin, clock)
    yield handle
    clock.offset = 0.0
    for client in handle.opened:
        client.__exit__(None, None, None)


@dataclass
class Setup:
    """Client A's in-progress task assigned to `tech`, with a credential in scope, linked to `ticket`;
    client B's task linked to `foreign_ticket`; `other` is another technician of client A."""

    world: World
    tech: str
    other: str
    client_a: uuid.UUID
    task_id: uuid.UUID
    credential_id: uuid.UUID
    secret: str
    ticket: str
    foreign_task: uuid.UUID
    foreign_ticket: str
    browsers: dict[str, httpx.Client]


def new_ticket(admin_engine: Any, task_id: uuid.UUID) -> str:
    """A fresh ConnectWise ticket number linked to the task (committed: the live intake reads it)."""
    ticket = str(uuid.uuid4().int % 10**12)
    with admin_engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO intake.task_psa_links (task_id, provider, ticket_id, ticket_url, created_at, updated_at)"
                " VALUES (:task, 'connectwise', :ticket, :url, now(), now())"
            ),
            {
                "task": task_id,
                "ticket": ticket,
                "url": f"http://localhost/_sim/psa/connectwise/tickets/{ticket}/screen",
            },
        )
    return ticket


@pytest.fixture
def setup(
    portal_live: str,
    people: dict[str, Any],
    broker_live: str,
    intake_live: str,
    vendor_sync_live: str,
    auth: Callable[..., dict[str, str]],
    devstack_dir: Path,
    admin_engine: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Setup]:
    from intake.settings import get_settings as intake_settings

    # The in-process intake runs without a PSA (tests/conftest.py); its ticket lookup needs the provider.
    monkeypatch.setattr(intake_settings(), "psa_provider", "connectwise")
    urls = {"broker": broker_live, "intake": intake_live, "vendor_sync": vendor_sync_live}
    with open_world(urls, auth, devstack_dir) as world:
        client_a, client_b = world.new_client(), world.new_client()
        tech = add_technician(world, devstack_dir, [client_a])
        other = add_technician(world, devstack_dir, [client_a])
        credential_id, secret = world.new_credential(client_a)
        task_id = world.new_task(client_a, assignee=tech, credential_ids=[credential_id])
        foreign_task = world.new_task(client_b, assignee=None)
        browsers: dict[str, httpx.Client] = {}
        yield Setup(
            world,
            tech,
            other,
            client_a,
            task_id,
            credential_id,
            secret,
            new_ticket(admin_engine, task_id),
            foreign_task,
            new_ticket(admin_engine, foreign_task),
            browsers,
        )
        for browser in browsers.values():
            browser.close()


def person(s: Setup, portal_url: str, sub: str) -> httpx.Client:
    """`sub` signed in at the served portal (once per test)."""
    if sub not in s.browsers:
        s.browsers[sub] = sign_in(portal_url, sub)
    return s.browsers[sub]


def pod_path(ticket: str, provider: str = "connectwise") -> str:
    return f"/pod/{provider}/tickets/{ticket}"


def reveal_form(html: str, credential_id: uuid.UUID) -> tuple[str, str, str]:
    """The pod page's Reveal form for a credential: (action, nonce, CSRF token)."""
    action = re.search(
        rf'action="(/pod/[^"]+/reveal)" hx-post="[^"]+" hx-target="#reveal-result-{credential_id}"', html
    )
    nonce = re.search(rf'id="reveal-nonce-{credential_id}" value="([^"]+)"', html)
    assert action and nonce, "no Reveal form for that credential"
    return action.group(1), nonce.group(1), csrf_of(html)


def reveal(browser: Any, action: str, credential_id: uuid.UUID, nonce: str, csrf: str) -> httpx.Response:
    return browser.post(
        action,
        data={"credential_id": str(credential_id), "nonce": nonce, "reason": REASON},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf},
    )


# ---- settings and framing ----


def test_the_psa_origin_is_an_origin_required_with_a_provider_and_https_outside_dev() -> None:
    for good in ("http://localhost:8080", "https://na.myconnectwise.net", "https://psa.example:8443"):
        assert is_origin(good), good
    for bad in (
        "https://psa.example/",
        "https://psa.example/x",
        "https://u@psa.example",
        "psa.example",
        "https://psa.example?x=1",
        "javascript:alert(1)",
        "https://PSA.example",
        "https://psa.example:x",
    ):
        assert not is_origin(bad), bad
    with pytest.raises(ValueError, match="PORTAL_PSA_ORIGIN is required"):
        Settings.model_construct(env="dev", psa_provider="connectwise", psa_origin="")._check_psa()
    with pytest.raises(ValueError, match="PORTAL_PSA_PROVIDER must be one of"):
        Settings.model_construct(env="dev", psa_provider="servicenow", psa_origin="")._check_psa()
    with pytest.raises(ValueError, match="must be https:// outside MSP_ENV=dev"):
        Settings.model_construct(env="production", psa_provider="connectwise", psa_origin="http://psa.x")._check_psa()
    Settings.model_construct(env="production", psa_provider="connectwise", psa_origin="https://psa.x")._check_psa()
    Settings.model_construct(env="production", psa_provider="none", psa_origin="")._check_psa()


def test_only_pod_pages_may_be_framed_and_only_by_the_psa(pod: Pod, portal_rt: Any) -> None:
    browser = pod.browser()
    psa = portal_rt.settings.psa_origin
    page = browser.get(pod_path("123"))
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert re.findall(r"frame-ancestors ([^;]*);", csp) == [psa] and "script-src 'self';" in csp
    assert "x-frame-options" not in page.headers
    assert page.headers["cache-control"] == "no-store"
    # The sign-in button, and no inline script (CSP script-src 'self').
    assert "data-pod-signin" in page.text and '<script src="/static/pod.js" defer></script>' in page.text
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) is None
    for path in ("/pod-signin", "/pod/session", "/tasks", "/", pod_path("123", "autotask")):
        other = browser.get(path)
        assert "frame-ancestors 'none'" in other.headers["content-security-policy"], path
        assert other.headers["x-frame-options"] == "DENY", path
    assert browser.get("/static/pod.js").status_code == 200


def test_another_provider_a_bad_ticket_and_a_pod_turned_off_are_404(pod: Pod, portal_rt: Any) -> None:
    browser = pod.browser()
    for path in (pod_path("123", "autotask"), pod_path("12 3"), pod_path("x" * 65), "/pod/connectwise/x"):
        assert browser.get(path).status_code == 404, path
    off = portal_rt.settings.model_copy(update={"psa_provider": "none", "psa_origin": ""})
    rt = Runtime(settings=off, engine=portal_rt.engine, box=portal_rt.box, oidc=OIDCClient(off))
    with TestClient(create_portal_app(off, runtime_factory=lambda: rt), base_url="https://testserver") as none:
        for path in (pod_path("123"), "/pod/session", "/pod-signin"):
            answer = none.get(path, follow_redirects=False)
            assert answer.status_code == 404, path
            assert "frame-ancestors 'none'" in answer.headers["content-security-policy"], path
        assert none.post("/pod/session", json={}, headers={"Origin": pod.origin}).status_code == 404


# ---- the code and the cookie ----


def test_the_code_is_single_use_expires_after_60_s_and_sets_the_pod_cookie(
    pod: Pod, setup: Setup, portal_rt: Any
) -> None:
    s = setup
    tech = person(s, pod.portal_url, s.tech)
    code = pod.code(tech)
    with portal_rt.engine.connect() as conn:  # only its hash is stored
        held = (
            conn.execute(
                sa.text("SELECT code_hash FROM portal.pod_codes WHERE code_hash IN (:h, :c)"),
                {"h": digest(code), "c": code},
            )
            .scalars()
            .all()
        )
    assert held == [digest(code)]

    browser = pod.browser()
    answer = pod.exchange(browser, code, s.ticket)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"task_id": str(s.task_id), "task_url": f"/tasks/{s.task_id}"}
    [raw] = [h for h in answer.headers.get_list("set-cookie") if h.startswith(POD_COOKIE)]
    cookie = POD_SET_COOKIE.fullmatch(raw)
    assert cookie, raw
    assert 0 < int(cookie.group(2)) <= portal_rt.settings.session_absolute_s
    assert code not in answer.text and code not in raw
    # Spent: the same code again gets nothing, and no cookie.
    again = pod.exchange(pod.browser(), code, s.ticket)
    assert again.status_code == 401 and again.json()["error"] == "code_invalid"
    assert not again.headers.get_list("set-cookie")

    # 60 seconds: a code is good at 59 s and worthless at 61 s (the pod app's clock moves, nobody sleeps).
    late, in_time = pod.code(tech), pod.code(tech)
    pod.clock.offset = 61
    assert pod.exchange(pod.browser(), late, s.ticket).status_code == 401
    pod.clock.offset = 59
    assert pod.exchange(pod.browser(), in_time, s.ticket).status_code == 200


def test_pod_session_needs_the_portals_own_origin_and_a_json_code(pod: Pod, setup: Setup, portal_rt: Any) -> None:
    s = setup
    tech = person(s, pod.portal_url, s.tech)
    code = pod.code(tech)
    browser = pod.browser()
    body = {"code": code, "ticket_id": s.ticket}
    for origin in (None, portal_rt.settings.psa_origin, "null", "http://127.0.0.1:1"):
        headers = {} if origin is None else {"Origin": origin}
        refused = browser.post("/pod/session", json=body, headers=headers)
        assert refused.status_code == 403, origin
        assert not refused.headers.get_list("set-cookie")
    form = browser.post("/pod/session", data=body, headers={"Origin": pod.origin})
    assert form.status_code == 400
    # None of the refusals spent the code.
    assert pod.exchange(browser, code, s.ticket).status_code == 200


def test_each_cookie_counts_on_its_own_paths_only(pod: Pod, setup: Setup) -> None:
    s = setup
    tech = person(s, pod.portal_url, s.tech)
    signed = pod.signed_in(tech, s.ticket)
    assert signed.get("/pod/session").json() == {"signed_in": True}
    pod_value = signed.cookies.get(POD_COOKIE)

    # The pod cookie alone, off /pod: nobody is signed in.
    elsewhere = pod.browser()
    elsewhere.cookies.set(POD_COOKIE, pod_value)
    home = elsewhere.get(f"/tasks/{s.task_id}")
    assert home.status_code == 303 and home.headers["location"].startswith("/login?")

    # The portal's session cookie alone, on /pod: nobody is signed in there either.
    main = pod.browser()
    main.cookies.set(SESSION_COOKIE, session_id(tech))
    assert main.get(f"/tasks/{s.task_id}").status_code == 200  # it works where it belongs
    assert main.get("/pod/session").json() == {"signed_in": False}
    page = main.get(pod_path(s.ticket))
    assert page.status_code == 200 and "data-pod-signin" in page.text and s.secret not in page.text
    assert "Provision the account" not in page.text


def test_a_pod_session_ends_after_15_idle_minutes(pod: Pod, setup: Setup) -> None:
    s = setup
    signed = pod.signed_in(person(s, pod.portal_url, s.tech), s.ticket)
    assert "Provision the account" in signed.get(pod_path(s.ticket)).text
    pod.clock.offset = 16 * 60
    assert signed.get("/pod/session").json() == {"signed_in": False}
    pod.clock.offset = 0
    page = signed.get(pod_path(s.ticket))
    assert "data-pod-signin" in page.text and "Provision the account" not in page.text


# ---- who sees what ----


def test_the_assignee_sees_the_task_and_reveals_through_the_pod(pod: Pod, setup: Setup) -> None:
    s = setup
    tech = person(s, pod.portal_url, s.tech)
    signed = pod.signed_in(tech, s.ticket)
    page = signed.get(pod_path(s.ticket))
    assert page.status_code == 200, page.text
    assert "frame-ancestors http://localhost:" in page.headers["content-security-policy"]
    assert re.search(r'id="pod-task-status">In progress<', page.text)
    assert re.search(rf'id="pod-task-assignee">{s.tech}<', page.text)
    assert f'href="/tasks/{s.task_id}" target="_blank" rel="noopener"' in page.text
    action, nonce, csrf = reveal_form(page.text, s.credential_id)
    assert action == f"/pod/connectwise/tickets/{s.ticket}/tasks/{s.task_id}/reveal"
    assert s.secret not in page.text

    # The portal's own CSRF token is not the pod's: refused, nothing released.
    main_csrf = csrf_of(tech.get(f"/tasks/{s.task_id}").text)
    assert main_csrf != csrf
    assert reveal(signed, action, s.credential_id, nonce, main_csrf).status_code == 403
    # The pod's nonce is bound to the pod session: on the portal's task page it is not valid.
    elsewhere = tech.post(
        f"/tasks/{s.task_id}/reveal",
        data={"credential_id": str(s.credential_id), "nonce": nonce, "reason": REASON},
        headers={"HX-Request": "true", "X-CSRF-Token": main_csrf},
    )
    assert elsewhere.status_code == 409 and s.secret not in elsewhere.text

    shown = reveal(signed, action, s.credential_id, nonce, csrf)
    assert shown.status_code == 200, shown.text
    assert s.secret in shown.text and 'hx-history="false"' in shown.text
    assert shown.headers["cache-control"] == "no-store"
    replay = reveal(signed, action, s.credential_id, nonce, csrf)
    assert replay.status_code == 409 and s.secret not in replay.text
    assert s.secret not in signed.get(pod_path(s.ticket)).text  # a reload shows nothing


def test_a_stale_sign_in_asks_for_the_pop_up_not_the_framed_idp(pod: Pod, setup: Setup) -> None:
    from portal.pages.technician.reveal import reveal_clock

    s = setup
    signed = pod.signed_in(person(s, pod.portal_url, s.tech), s.ticket)
    action, nonce, csrf = reveal_form(signed.get(pod_path(s.ticket)).text, s.credential_id)
    signed.app.dependency_overrides[reveal_clock] = lambda: time.time() + 20 * 60  # type: ignore[attr-defined]
    stale = reveal(signed, action, s.credential_id, nonce, csrf)
    signed.app.dependency_overrides.clear()  # type: ignore[attr-defined]
    assert stale.status_code == 401
    assert "data-pod-signin" in stale.text and "/login" not in stale.text and s.secret not in stale.text
    # Signed out of the pod: htmx reloads the pod page (which offers Sign in) instead of a framed IdP.
    gone = pod.browser()
    answer = gone.post(action, data={"credential_id": str(s.credential_id)}, headers={"HX-Request": "true"})
    assert answer.status_code == 401 and answer.headers["hx-refresh"] == "true"
    plain = gone.post(action, data={"credential_id": str(s.credential_id)})
    assert plain.status_code == 303 and plain.headers["location"] == pod_path(s.ticket)


def test_others_see_the_summary_without_credentials(pod: Pod, setup: Setup) -> None:
    s = setup
    for sub in (s.other, "admin"):
        signed = pod.signed_in(person(s, pod.portal_url, sub), s.ticket)
        page = signed.get(pod_path(s.ticket))
        assert page.status_code == 200, sub
        assert "Only the task's assignee sees its credentials here." in page.text, sub
        assert re.search(rf'id="pod-task-assignee">{s.tech}<', page.text), sub
        assert "reveal-nonce-" not in page.text and "/reveal" not in page.text, sub
        assert s.secret not in page.text, sub


def test_a_foreign_or_unknown_ticket_and_a_client_role_reveal_nothing(
    pod: Pod, setup: Setup, devstack_dir: Path
) -> None:
    s = setup
    tech = person(s, pod.portal_url, s.tech)
    signed = pod.browser()
    answer = pod.exchange(signed, pod.code(tech), s.foreign_ticket)
    assert answer.status_code == 200 and answer.json() == {"task_id": None, "task_url": None}
    for ticket in (s.foreign_ticket, "999999999999999"):
        page = signed.get(pod_path(ticket))
        assert page.status_code == 404 and NOT_LINKED in page.text, ticket
        assert str(s.foreign_task) not in page.text and "Provision the account" not in page.text

    office = add_person(devstack_dir, "client_user", client_id=s.client_a)
    client_user = pod.browser()
    answer = pod.exchange(client_user, pod.code(person(s, pod.portal_url, office)), s.ticket)
    assert answer.json() == {"task_id": None, "task_url": None}
    page = client_user.get(pod_path(s.ticket))
    assert page.status_code == 404 and NOT_LINKED in page.text
    assert str(s.task_id) not in page.text and "Provision the account" not in page.text
