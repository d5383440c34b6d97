"""The technician's pages on the real stack: queue, task, take, transition, notes, steps and Reveal.

A fresh technician per test is added to the issuer's demo people and to intake's staff directory
with only client A, so a client B object must be missing for them, exactly as the APIs answer.
Data is made through the APIs (World); the portal is driven through its real sign-in.
"""

from __future__ import annotations

import io
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from portal_helpers import add_technician, csrf_of, open_world, sign_in

sys.path.insert(0, str(Path(__file__).parents[1] / "secrets_broker"))

import broker_fixtures
from broker_helpers import World

broker_app = broker_fixtures.broker_app
broker_live = broker_fixtures.broker_live

pytestmark = pytest.mark.timeout(180)

REASON = "resetting the ISP portal login for the customer"


@dataclass
class Setup:
    """One test's world: client A (the technician's), client B (not theirs), and the signed-in technician."""

    world: World
    broker: httpx.Client
    portal_url: str
    sub: str
    client_a: uuid.UUID
    client_b: uuid.UUID
    browser: httpx.Client


@pytest.fixture
def setup(
    portal_live: str,
    people: dict[str, Any],
    broker_live: str,
    intake_live: str,
    vendor_sync_live: str,
    auth: Callable[..., dict[str, str]],
    devstack_dir: Path,
) -> Iterator[Setup]:
    """Two clients, a technician who works only for client A, signed in to the portal."""
    urls = {"broker": broker_live, "intake": intake_live, "vendor_sync": vendor_sync_live}
    with open_world(urls, auth, devstack_dir) as world:
        client_a, client_b = world.new_client(), world.new_client()
        sub = add_technician(world, devstack_dir, [client_a])
        browser = sign_in(portal_live, sub)
        yield Setup(world, world.broker, portal_live, sub, client_a, client_b, browser)
        browser.close()


def system_task(world: World, client_id: uuid.UUID, title: str) -> uuid.UUID:
    """A system task (starts `new`), moved to `ready` by an admin, unassigned."""
    made = world.intake.post(
        "/internal/tasks",
        headers=world.vendor_sync_at_intake,
        json={"client_id": str(client_id), "type": "provisioning", "title": title},
    )
    assert made.status_code == 201, made.text
    task_id = uuid.UUID(made.json()["id"])
    world.transition(task_id, "ready", world.admin)
    return task_id


def task_of(world: World, task_id: uuid.UUID) -> dict[str, Any]:
    """The task as an admin reads it."""
    got = world.intake.get(f"/v1/tasks/{task_id}", headers=world.admin)
    assert got.status_code == 200, got.text
    return dict(got.json())


def nonce_of(html: str, credential_id: uuid.UUID) -> str:
    """The reveal nonce the page issued for a credential."""
    found = re.search(rf'id="reveal-nonce-{credential_id}" value="([^"]+)"', html)
    assert found, "no reveal form for that credential"
    return found.group(1)


def text_of(html: str, element_id: str) -> str:
    """The text of the element with that id (a `dd` of the task's facts)."""
    found = re.search(rf'id="{element_id}">([^<]*)<', html)
    assert found, f"no #{element_id}"
    return found.group(1).strip()


def releases_of(s: Setup, client_id: uuid.UUID, task_id: uuid.UUID) -> list[dict[str, Any]]:
    """The broker's releases for a task, as an admin lists them."""
    listed = s.broker.get("/v1/releases", params={"client_id": str(client_id), "limit": 200}, headers=s.world.admin)
    assert listed.status_code == 200, listed.text
    return [r for r in listed.json()["items"] if r["task_id"] == str(task_id)]


def reveal_ready(s: Setup) -> tuple[uuid.UUID, uuid.UUID, str]:
    """Client A's credential in scope of an in-progress task assigned to the technician: (task, credential, secret)."""
    credential_id, secret = s.world.new_credential(s.client_a)
    task_id = s.world.new_task(s.client_a, assignee=s.sub, credential_ids=[credential_id])
    return task_id, credential_id, secret


def post_reveal(
    s: Setup, task_id: uuid.UUID, credential_id: uuid.UUID, nonce: str, csrf: str, reason: str = REASON
) -> httpx.Response:
    """The Reveal form as htmx sends it (the CSRF token in its header)."""
    return s.browser.post(
        f"/tasks/{task_id}/reveal",
        data={"credential_id": str(credential_id), "nonce": nonce, "reason": reason},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf},
    )


# ---- queue and task page ----


def test_queue_lists_only_the_technicians_clients_tasks(setup: Setup) -> None:
    s = setup
    mine_title, other_title = f"A task {uuid.uuid4().hex[:6]}", f"B task {uuid.uuid4().hex[:6]}"
    mine = system_task(s.world, s.client_a, mine_title)
    other = system_task(s.world, s.client_b, other_title)

    page = s.browser.get("/tasks")
    assert page.status_code == 200, page.text
    assert f'href="/tasks/{mine}"' in page.text and mine_title in page.text
    assert str(other) not in page.text and other_title not in page.text
    # The client filter offers only the technician's clients.
    assert f'value="{s.client_a}"' in page.text and f'value="{s.client_b}"' not in page.text
    for label in ("Status", "Client", "Type", "Assigned to me", "Unassigned"):
        assert re.search(rf"<(label|legend)[^>]*>{label}</", page.text), label

    filtered = s.browser.get("/tasks", params={"client_id": str(s.client_a), "status": "ready"})
    assert filtered.status_code == 200 and mine_title in filtered.text
    none_mine = s.browser.get("/tasks", params={"client_id": str(s.client_a), "assigned": "mine"})
    assert none_mine.status_code == 200 and mine_title not in none_mine.text

    # Another client's task is the 404 page, as intake answers it.
    foreign = s.browser.get(f"/tasks/{other}")
    assert foreign.status_code == 404
    assert other_title not in foreign.text
    assert s.browser.get("/tasks/not-a-uuid").status_code == 404


def test_queue_filters_mine_and_unassigned(setup: Setup) -> None:
    s = setup
    nobodys, mine = f"Nobody {uuid.uuid4().hex[:6]}", f"Mine {uuid.uuid4().hex[:6]}"
    system_task(s.world, s.client_a, nobodys)
    s.world.assign(system_task(s.world, s.client_a, mine), s.sub)

    unassigned = s.browser.get("/tasks", params={"client_id": str(s.client_a), "assigned": "unassigned"})
    assert unassigned.status_code == 200
    assert nobodys in unassigned.text and mine not in unassigned.text
    assert 'id="f-assigned-unassigned" name="assigned" value="unassigned" checked' in unassigned.text

    own = s.browser.get("/tasks", params={"assigned": "mine"})
    assert own.status_code == 200
    assert mine in own.text and nobodys not in own.text


def test_queue_pages_with_next_cursor_and_keeps_the_filters(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    from portal.pages.technician import queue

    s = setup
    titles = [f"Paged {uuid.uuid4().hex[:6]}" for _ in range(3)]
    for title in titles:
        system_task(s.world, s.client_a, title)
    monkeypatch.setattr(queue, "QUEUE_PAGE", 2)

    first = s.browser.get("/tasks", params={"client_id": str(s.client_a), "type": "provisioning"})
    assert first.status_code == 200
    shown = [t for t in titles if t in first.text]
    assert len(shown) == 2
    link = re.search(r'<a href="([^"]+)" rel="next">Next page</a>', first.text)
    assert link, "no next page link"
    href = link.group(1).replace("&amp;", "&")
    assert f"client_id={s.client_a}" in href and "type=provisioning" in href and "cursor=" in href

    second = s.browser.get(href)
    assert second.status_code == 200
    rest = [t for t in titles if t in second.text]
    assert len(rest) == 1 and rest[0] not in shown
    assert 'rel="next"' not in second.text


def test_take_then_start_the_task(setup: Setup) -> None:
    s = setup
    task_id = system_task(s.world, s.client_a, f"Take me {uuid.uuid4().hex[:6]}")

    page = s.browser.get(f"/tasks/{task_id}")
    assert page.status_code == 200, page.text
    assert "Take this task" in page.text
    assert text_of(page.text, "task-assignee") == "Unassigned"
    csrf = csrf_of(page.text)

    taken = s.browser.post(f"/tasks/{task_id}/take", data={"csrf_token": csrf})
    assert taken.status_code == 303, taken.text
    assert task_of(s.world, task_id)["assignee"] == s.sub

    page = s.browser.get(taken.headers["location"])
    assert "You took this task." in page.text
    assert text_of(page.text, "task-assignee") == s.sub
    assert "Take this task" not in page.text
    assert 'name="to" value="in_progress"' in page.text

    started = s.browser.post(f"/tasks/{task_id}/transition", data={"csrf_token": csrf, "to": "in_progress"})
    assert started.status_code == 303, started.text
    assert task_of(s.world, task_id)["status"] == "in_progress"
    page = s.browser.get(f"/tasks/{task_id}")
    assert text_of(page.text, "task-status") == "In progress"
    assert 'name="to" value="done"' in page.text and 'name="to" value="on_hold"' in page.text


def test_a_refused_transition_shows_intakes_words_and_changes_nothing(setup: Setup) -> None:
    s = setup
    task_id = system_task(s.world, s.client_a, f"Refused {uuid.uuid4().hex[:6]}")
    s.world.assign(task_id, s.sub)
    page = s.browser.get(f"/tasks/{task_id}")
    # `done` is not reachable from `ready`: the portal offers no such button, but intake is the judge.
    moved = s.browser.post(f"/tasks/{task_id}/transition", data={"csrf_token": csrf_of(page.text), "to": "done"})
    assert moved.status_code == 409
    assert "cannot move a task from ready to done" in moved.text.lower()
    assert "From Ready it can go to: In progress, Cancelled." in moved.text
    assert task_of(s.world, task_id)["status"] == "ready"


def test_a_note_is_added_and_a_blank_one_is_refused(setup: Setup) -> None:
    s = setup
    task_id = system_task(s.world, s.client_a, f"Noted {uuid.uuid4().hex[:6]}")
    s.world.assign(task_id, s.sub)
    page = s.browser.get(f"/tasks/{task_id}")
    csrf = csrf_of(page.text)
    body = f"Called the ISP, ticket {uuid.uuid4().hex[:6]}"

    added = s.browser.post(f"/tasks/{task_id}/notes", data={"csrf_token": csrf, "body": body})
    assert added.status_code == 303, added.text
    assert body in [n["body"] for n in task_of(s.world, task_id)["internal_notes"]]
    assert body in s.browser.get(f"/tasks/{task_id}").text

    notes_before = len(task_of(s.world, task_id)["internal_notes"])
    blank = s.browser.post(f"/tasks/{task_id}/notes", data={"csrf_token": csrf, "body": "   "})
    assert blank.status_code == 422
    assert 'id="note-error"' in blank.text and "blank" in blank.text
    assert len(task_of(s.world, task_id)["internal_notes"]) == notes_before


def test_a_human_step_is_marked_succeeded(setup: Setup) -> None:
    s = setup
    task_id = system_task(s.world, s.client_a, f"Stepped {uuid.uuid4().hex[:6]}")
    s.world.assign(task_id, s.sub)
    step = s.world.intake.post(
        f"/internal/tasks/{task_id}/steps",
        headers=s.world.vendor_sync_at_intake,
        json={"name": "Call the ISP", "status": "pending", "human": True, "idempotency_key": uuid.uuid4().hex},
    )
    assert step.status_code in (200, 201), step.text
    step_id = step.json()["id"]
    page = s.browser.get(f"/tasks/{task_id}")
    assert "Mark succeeded" in page.text and "Mark failed" in page.text
    assert f'<label for="step-detail-{step_id}">' in page.text

    marked = s.browser.post(
        f"/tasks/{task_id}/steps/{step_id}",
        data={"csrf_token": csrf_of(page.text), "status": "succeeded", "detail": "Account opened"},
    )
    assert marked.status_code == 303, marked.text
    decided = next(st for st in task_of(s.world, task_id)["steps"] if st["id"] == step_id)
    assert (decided["status"], decided["detail"]) == ("succeeded", "Account opened")


# ---- Reveal ----


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    """Every log line of this process (portal and in-process APIs alike) at DEBUG, into a buffer."""
    from mspkit.logging import configure_logging
    from portal.settings import get_settings

    buffer = io.StringIO()
    real_stderr = sys.stderr
    sys.stderr = buffer  # the loggers keep the stream they get at configuration
    try:
        configure_logging("portal", "DEBUG")
    finally:
        sys.stderr = real_stderr
    yield buffer
    settings = get_settings()
    configure_logging("portal", settings.log_level, secrets=settings.secret_values())


def test_reveal_shows_the_secret_once_and_a_replay_makes_no_second_release(
    setup: Setup, log_buffer: io.StringIO, admin_engine: Any
) -> None:
    s = setup
    task_id, credential_id, secret = reveal_ready(s)

    page = s.browser.get(f"/tasks/{task_id}")
    assert page.status_code == 200, page.text
    assert secret not in page.text
    assert f'hx-post="/tasks/{task_id}/reveal"' in page.text
    assert f'hx-target="#reveal-result-{credential_id}"' in page.text
    nonce, csrf = nonce_of(page.text, credential_id), csrf_of(page.text)
    assert nonce not in str(s.browser.cookies)  # the nonce is in the form only

    shown = post_reveal(s, task_id, credential_id, nonce, csrf)
    assert shown.status_code == 200, shown.text
    assert shown.headers["cache-control"] == "no-store"
    assert 'hx-history="false"' in shown.text
    assert re.search(rf'<input id="secret-{credential_id}"[^>]* readonly value="{re.escape(secret)}"', shown.text)
    assert f'<label for="secret-{credential_id}">' in shown.text
    copy = rf'<button type="button" data-copy-target="#secret-{credential_id}"[^>]*>Copy</button>'
    assert re.search(copy, shown.text)
    assert "will not be shown again" in shown.text
    assert "<script" not in shown.text
    released = releases_of(s, s.client_a, task_id)
    assert len(released) == 1 and released[0]["status"] == "unwrapped"
    assert released[0]["reason"] == REASON

    # A reload shows no secret; the wrap token never reached the browser either.
    again = s.browser.get(f"/tasks/{task_id}")
    assert secret not in again.text
    assert "wrap_token" not in shown.text and "hvs." not in shown.text

    replay = post_reveal(s, task_id, credential_id, nonce, csrf)
    assert replay.status_code == 409
    assert "This reveal was already used; reload the page to reveal again." in replay.text
    assert secret not in replay.text
    assert len(releases_of(s, s.client_a, task_id)) == 1

    # Nothing kept it: no log line (the portal's and the APIs' share this process) and no portal table.
    logged = log_buffer.getvalue()
    assert "/tasks/{task_id}/reveal" in logged  # the sweep does see the access log
    assert secret not in logged
    with admin_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM portal.reveal_nonces WHERE task_id = :t"), {"t": task_id}).all()
    assert rows and secret not in str(rows)

    # The reloaded page's fresh nonce reveals again (a second, deliberate release).
    fresh = nonce_of(again.text, credential_id)
    assert fresh != nonce
    second = post_reveal(s, task_id, credential_id, fresh, csrf)
    assert second.status_code == 200 and secret in second.text
    assert len(releases_of(s, s.client_a, task_id)) == 2


def test_a_short_reason_is_refused_in_words_and_the_form_works_again(setup: Setup) -> None:
    s = setup
    task_id, credential_id, secret = reveal_ready(s)
    page = s.browser.get(f"/tasks/{task_id}")
    nonce, csrf = nonce_of(page.text, credential_id), csrf_of(page.text)

    short = post_reveal(s, task_id, credential_id, nonce, csrf, reason="abc")
    assert short.status_code == 403
    assert "Give a reason of at least 10 characters." in short.text
    assert secret not in short.text
    assert releases_of(s, s.client_a, task_id) == []
    # The refusal hands the form a fresh nonce (out of band), so fixing the reason needs no reload.
    fresh = re.search(rf'id="reveal-nonce-{credential_id}" value="([^"]+)" hx-swap-oob="true"', short.text)
    assert fresh and fresh.group(1) != nonce
    fixed = post_reveal(s, task_id, credential_id, fresh.group(1), csrf)
    assert fixed.status_code == 200 and secret in fixed.text

    missing = post_reveal(s, task_id, credential_id, fresh.group(1), csrf, reason="  ")
    assert missing.status_code == 422 and "Give a reason." in missing.text
    assert len(releases_of(s, s.client_a, task_id)) == 1


def test_reveal_names_the_rule_when_the_task_is_not_started(setup: Setup) -> None:
    s = setup
    credential_id, secret = s.world.new_credential(s.client_a)
    task_id = s.world.new_task(s.client_a, assignee=s.sub, credential_ids=[credential_id], in_progress=False)
    # Before the task starts the broker lists no credential for it; the form is posted as a stale page would.
    page = s.browser.get(f"/tasks/{task_id}")
    from portal.main import app
    from portal.reveal_nonces import issue

    session_hash = _session_hash(s)
    nonce = issue(app.state.runtime.engine, session_hash=session_hash, task_id=task_id, credential_ids=[credential_id])
    refused = post_reveal(s, task_id, credential_id, nonce[str(credential_id)], csrf_of(page.text))
    assert refused.status_code == 403
    assert "This task is not in progress; start it first." in refused.text
    assert secret not in refused.text
    assert releases_of(s, s.client_a, task_id) == []


def _session_hash(s: Setup) -> str:
    from portal_helpers import session_id

    from portal.auth.crypto import digest

    return digest(session_id(s.browser))


def test_reveal_needs_a_recent_sign_in(setup: Setup) -> None:
    from portal.main import app
    from portal.pages.technician.reveal import reveal_clock

    s = setup
    task_id, credential_id, secret = reveal_ready(s)
    page = s.browser.get(f"/tasks/{task_id}")
    nonce, csrf = nonce_of(page.text, credential_id), csrf_of(page.text)

    app.dependency_overrides[reveal_clock] = lambda: time.time() + 20 * 60
    try:
        stale = post_reveal(s, task_id, credential_id, nonce, csrf)
    finally:
        app.dependency_overrides.pop(reveal_clock, None)
    assert stale.status_code == 401
    assert "sign-in within the last 15 minutes" in stale.text
    assert f'href="/login?prompt=login&amp;return_to=/tasks/{task_id}"' in stale.text
    assert secret not in stale.text
    assert releases_of(s, s.client_a, task_id) == []

    # The nonce was not spent: with the real clock the same form reveals.
    shown = post_reveal(s, task_id, credential_id, nonce, csrf)
    assert shown.status_code == 200 and secret in shown.text


def test_reveal_without_csrf_is_403_and_releases_nothing(setup: Setup) -> None:
    s = setup
    task_id, credential_id, secret = reveal_ready(s)
    page = s.browser.get(f"/tasks/{task_id}")
    nonce = nonce_of(page.text, credential_id)

    forged = s.browser.post(
        f"/tasks/{task_id}/reveal",
        data={"credential_id": str(credential_id), "nonce": nonce, "reason": REASON},
        headers={"HX-Request": "true"},
    )
    assert forged.status_code == 403
    assert secret not in forged.text
    assert releases_of(s, s.client_a, task_id) == []


def test_a_nonce_works_only_for_its_own_credential_and_session(setup: Setup) -> None:
    s = setup
    task_id, credential_id, secret = reveal_ready(s)
    page = s.browser.get(f"/tasks/{task_id}")
    nonce = nonce_of(page.text, credential_id)

    # The same technician in another browser (another session) cannot use this page's nonce.
    other = sign_in(s.portal_url, s.sub)
    try:
        other_page = other.get(f"/tasks/{task_id}")
        stolen = post_reveal(
            Setup(s.world, s.broker, s.portal_url, s.sub, s.client_a, s.client_b, other),
            task_id,
            credential_id,
            nonce,
            csrf_of(other_page.text),
        )
    finally:
        other.close()
    assert stolen.status_code == 409
    assert "reload the page" in stolen.text and secret not in stolen.text
    assert releases_of(s, s.client_a, task_id) == []


def test_reveal_without_htmx_is_a_whole_page(setup: Setup) -> None:
    s = setup
    task_id, credential_id, secret = reveal_ready(s)
    page = s.browser.get(f"/tasks/{task_id}")
    shown = s.browser.post(
        f"/tasks/{task_id}/reveal",
        data={
            "csrf_token": csrf_of(page.text),
            "credential_id": str(credential_id),
            "nonce": nonce_of(page.text, credential_id),
            "reason": REASON,
        },
    )
    assert shown.status_code == 200
    assert shown.headers["cache-control"] == "no-store"
    assert "<h1>Reveal</h1>" in shown.text and secret in shown.text
    assert f'href="/tasks/{task_id}"' in shown.text
    assert "hx-swap-oob" not in shown.text


def test_racing_resubmissions_make_exactly_one_release(setup: Setup) -> None:
    s = setup
    task_id, credential_id, secret = reveal_ready(s)
    page = s.browser.get(f"/tasks/{task_id}")
    nonce, csrf = nonce_of(page.text, credential_id), csrf_of(page.text)
    cookies = dict(s.browser.cookies)

    def send(_: int) -> httpx.Response:
        # One browser's double (and triple...) click: the same form, the same session, at once.
        with httpx.Client(base_url=s.portal_url, cookies=cookies, timeout=30) as tab:
            return tab.post(
                f"/tasks/{task_id}/reveal",
                data={"credential_id": str(credential_id), "nonce": nonce, "reason": REASON},
                headers={"HX-Request": "true", "X-CSRF-Token": csrf},
            )

    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(send, range(5)))
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409, 409]
    assert sum(secret in a.text for a in answers) == 1
    assert len(releases_of(s, s.client_a, task_id)) == 1


def test_consume_is_atomic_under_concurrency(portal_rt: Any) -> None:
    from portal.reveal_nonces import Outcome, consume, issue

    task_id, credential_id, session_hash = uuid.uuid4(), uuid.uuid4(), uuid.uuid4().hex * 2
    nonce = issue(portal_rt.engine, session_hash=session_hash, task_id=task_id, credential_ids=[credential_id])
    value = nonce[str(credential_id)]

    def take(_: int) -> Outcome:
        return consume(
            portal_rt.engine, nonce=value, session_hash=session_hash, task_id=task_id, credential_id=credential_id
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(take, range(8)))
    assert outcomes.count(Outcome.CONSUMED) == 1
    assert outcomes.count(Outcome.USED) == 7
    # Bound to its session, task and credential: anywhere else it is simply not valid.
    elsewhere = consume(
        portal_rt.engine, nonce=value, session_hash="0" * 64, task_id=task_id, credential_id=credential_id
    )
    assert elsewhere is Outcome.INVALID
    with portal_rt.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT nonce_hash FROM portal.reveal_nonces WHERE task_id = :t"), {"t": task_id})
        assert value not in [row[0] for row in stored]  # only its hash is kept


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.slow
def test_reveal_in_a_real_browser(setup: Setup) -> None:
    """htmx, portal.js and the CSP together: reveal, copy, a refused resubmission, a reload, a fixed reason."""
    from playwright.sync_api import sync_playwright

    s = setup
    task_id, credential_id, secret = reveal_ready(s)
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            context = browser.new_context()
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=s.portal_url)
            page = context.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

            page.goto(f"{s.portal_url}/login?return_to=/tasks/{task_id}")
            page.get_by_role("button", name=f"Sign in as {s.sub}").click()
            page.wait_for_url(f"{s.portal_url}/tasks/{task_id}*")
            message = page.locator(f"#reveal-message-{credential_id}")

            page.get_by_label("Reason for revealing ISP portal").fill(REASON)
            page.get_by_role("button", name="Reveal").click()
            secret_field = page.locator(f"#secret-{credential_id}")
            secret_field.wait_for(timeout=10000)
            assert secret_field.input_value() == secret
            page.get_by_role("button", name="Copy the secret of ISP portal").click()
            page.wait_for_function("() => document.getElementById('flash').textContent.includes('Copied')")
            assert page.evaluate("navigator.clipboard.readText()") == secret

            # The same form again: its nonce is spent; the 409 goes to the message area, the secret stays.
            page.get_by_role("button", name="Reveal").click()
            page.wait_for_function(
                f"() => document.getElementById('reveal-message-{credential_id}').textContent.includes('already used')"
            )
            assert secret_field.input_value() == secret
            assert secret not in message.inner_html()

            page.reload()
            assert secret not in page.content()

            # A short reason is refused in words; the refusal refreshed the nonce, so fixing it is enough.
            page.get_by_label("Reason for revealing ISP portal").fill("abc")
            page.get_by_role("button", name="Reveal").click()
            page.wait_for_function(
                f"() => document.getElementById('reveal-message-{credential_id}').textContent.includes('at least 10')"
            )
            page.get_by_label("Reason for revealing ISP portal").fill(REASON)
            page.get_by_role("button", name="Reveal").click()
            secret_field.wait_for(timeout=10000)
            assert secret_field.input_value() == secret
            assert "at least 10" not in message.inner_text()
            assert not [m for m in problems if "Content Security Policy" in m], problems
        finally:
            browser.close()
    assert len(releases_of(s, s.client_a, task_id)) == 2


def test_the_page_lists_only_the_credentials_in_this_tasks_scope(setup: Setup) -> None:
    s = setup
    task_id, credential_id, _ = reveal_ready(s)
    # Another in-progress task of the same technician, with its own credential.
    other_credential, _ = s.world.new_credential(s.client_a)
    s.world.new_task(s.client_a, assignee=s.sub, credential_ids=[other_credential])

    page = s.browser.get(f"/tasks/{task_id}")
    assert f'id="reveal-nonce-{credential_id}"' in page.text
    assert str(other_credential) not in page.text

    # Someone else's task of the same client: no credentials and no Reveal form for this technician.
    colleague = f"tech-{uuid.uuid4().hex[:8]}"
    theirs = s.world.new_task(s.client_a, assignee=colleague, credential_ids=[credential_id])
    foreign = s.browser.get(f"/tasks/{theirs}")
    assert foreign.status_code == 200
    assert "The credentials of this task are shown to its assignee." in foreign.text
    assert "reveal-nonce-" not in foreign.text and "Take this task" not in foreign.text


def test_a_bad_filter_is_shown_next_to_its_field(setup: Setup) -> None:
    page = setup.browser.get("/tasks", params={"status": "bogus"})
    assert page.status_code == 422
    assert 'id="f-status-error"' in page.text and 'aria-invalid="true"' in page.text


def test_other_roles_get_the_404_page(portal_live: str, people: dict[str, Any]) -> None:
    client_person = next(p.sub for p in people.values() if p.role == "client_admin")
    browser = sign_in(portal_live, client_person)
    try:
        for path in ("/tasks", f"/tasks/{uuid.uuid4()}"):
            assert browser.get(path).status_code == 404, path
    finally:
        browser.close()
