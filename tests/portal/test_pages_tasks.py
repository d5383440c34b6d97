"""The task pages' words and the admin's view: dates, credential words, scope notes, Reveal sent once, Assign.

Same world as test_pages_technician.py (a fresh technician who works only for client A).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
import test_pages_technician as technician_pages
from portal_helpers import csrf_of, sign_in
from test_pages_technician import (
    Setup,
    nonce_of,
    post_reveal,
    releases_of,
    reveal_ready,
    system_task,
    task_of,
    text_of,
)

# The fixtures, found by name in this module.
broker_app = technician_pages.broker_app
broker_live = technician_pages.broker_live
setup = technician_pages.setup

pytestmark = pytest.mark.timeout(180)
MONTH = "(January|February|March|April|May|June|July|August|September|October|November|December)"
WHEN = rf"\d{{1,2}} {MONTH} \d{{4}}, \d\d:\d\d UTC"


@pytest.fixture
def admin(portal_live: str, people: dict[str, Any]) -> Any:
    """A browser signed in as the demo admin."""
    browser = sign_in(portal_live, "admin")
    yield browser
    browser.close()


# ---- dates and words ----


def test_queue_and_task_page_show_dates_in_words(setup: Setup) -> None:
    s = setup
    title = f"Dated {uuid.uuid4().hex[:6]}"
    task_id = system_task(s.world, s.client_a, title)
    s.world.assign(task_id, s.sub)
    s.world.request_approval(task_id, credential_ids=[], categories=["contact_info"], contact_email="a@isp.example")
    added = s.world.intake.post(f"/v1/tasks/{task_id}/notes", headers=s.world.admin, json={"body": "Dated note"})
    assert added.status_code == 201, added.text

    queue = s.browser.get("/tasks", params={"client_id": str(s.client_a)})
    row = re.search(rf'<tr data-task-id="{task_id}">(.*?)</tr>', queue.text, re.S)
    assert row, queue.text
    assert re.search(rf"<time datetime=\"[^\"]+\">{WHEN}</time>", row.group(1)), row.group(1)

    page = s.browser.get(f"/tasks/{task_id}")
    shown = re.findall(r'<time datetime="([^"]+)">([^<]*)</time>', page.text)
    assert len(shown) >= 2, page.text  # the approval's Until and the note's time
    for raw, words in shown:
        assert re.fullmatch(WHEN, words), (raw, words)
        assert raw not in words


def test_credentials_show_kind_and_category_in_words(setup: Setup) -> None:
    s = setup
    task_id, _, _ = reveal_ready(s)
    page = s.browser.get(f"/tasks/{task_id}")
    assert "<dt>Kind</dt><dd>Password</dd>" in page.text
    assert "<dt>Category</dt><dd>Internet provider</dd>" in page.text


def test_a_task_not_in_progress_says_its_credentials_come_once_it_is(setup: Setup) -> None:
    s = setup
    credential_id, _ = s.world.new_credential(s.client_a)
    ready = s.world.new_task(s.client_a, assignee=s.sub, credential_ids=[credential_id], in_progress=False)
    page = s.browser.get(f"/tasks/{ready}")
    assert "No credentials are in this task" not in page.text
    assert "listed here once the task is in progress" in text_of(page.text, "credentials-note")

    empty = s.world.new_task(s.client_a, assignee=s.sub)  # in progress, nothing in scope
    page = s.browser.get(f"/tasks/{empty}")
    assert text_of(page.text, "credentials-note") == "No credentials are in this task's scope."


# ---- Reveal: sent once, and a refusal never covers a shown secret ----


def test_the_reveal_form_sends_once_and_refusals_go_to_the_message_area(setup: Setup) -> None:
    s = setup
    task_id, credential_id, secret = reveal_ready(s)
    page = s.browser.get(f"/tasks/{task_id}")
    form = re.search(r'<form[^>]* hx-post="/tasks/[^"]+/reveal"[^>]*>', page.text)
    assert form, page.text
    assert 'hx-sync="this:drop"' in form.group(0) and 'hx-disabled-elt="find button"' in form.group(0)
    assert f'hx-target="#reveal-result-{credential_id}"' in form.group(0)
    assert f'<div id="reveal-message-{credential_id}"' in page.text
    nonce, csrf = nonce_of(page.text, credential_id), csrf_of(page.text)

    shown = post_reveal(s, task_id, credential_id, nonce, csrf)
    assert shown.status_code == 200 and secret in shown.text
    assert "hx-retarget" not in shown.headers
    # The reveal clears an earlier refusal out of band.
    assert re.search(rf'<div id="reveal-message-{credential_id}"[^>]* hx-swap-oob="true"></div>', shown.text)

    again = post_reveal(s, task_id, credential_id, nonce, csrf)  # what a double click's second POST was
    assert again.status_code == 409
    assert again.headers["hx-retarget"] == f"#reveal-message-{credential_id}"
    assert secret not in again.text
    short = post_reveal(
        s, task_id, credential_id, nonce_of(s.browser.get(f"/tasks/{task_id}").text, credential_id), csrf, reason="abc"
    )
    assert short.status_code == 403 and short.headers["hx-retarget"] == f"#reveal-message-{credential_id}"
    assert len(releases_of(s, s.client_a, task_id)) == 1


# ---- admins: the queue, the task page and its Assign form ----


def test_admins_open_the_queue_and_a_task_and_assign_it(setup: Setup, admin: httpx.Client) -> None:
    s = setup
    title = f"Assign me {uuid.uuid4().hex[:6]}"
    task_id = system_task(s.world, s.client_a, title)

    queue = admin.get("/tasks", params={"client_id": str(s.client_a)})
    assert queue.status_code == 200, queue.text
    assert f'href="/tasks/{task_id}"' in queue.text
    assert re.search(r'<nav aria-label="Main">.*<a href="/tasks"[^>]*>Tasks</a>', queue.text, re.S)

    page = admin.get(f"/tasks/{task_id}")
    assert page.status_code == 200, page.text
    assert '<label for="assign-to">Assign to</label>' in page.text
    assert f'<option value="{s.sub}">' in page.text  # the technician who works for client A
    # Admins assign; the technicians' work forms and Reveal are not offered to them.
    assert "Take this task" not in page.text and "reveal-nonce-" not in page.text and "Add note" not in page.text

    assigned = admin.post(f"/tasks/{task_id}/assign", data={"csrf_token": csrf_of(page.text), "assignee": s.sub})
    assert assigned.status_code == 303, assigned.text
    assert task_of(s.world, task_id)["assignee"] == s.sub
    landed = admin.get(assigned.headers["location"])
    assert "The task was assigned." in landed.text and text_of(landed.text, "task-assignee") == s.sub


def test_an_assignment_intake_refuses_is_shown_in_words(setup: Setup, admin: httpx.Client) -> None:
    s = setup
    task_id = system_task(s.world, s.client_b, f"Client B {uuid.uuid4().hex[:6]}")
    page = admin.get(f"/tasks/{task_id}")
    assert f'<option value="{s.sub}">' not in page.text  # client B is not this technician's
    refused = admin.post(f"/tasks/{task_id}/assign", data={"csrf_token": csrf_of(page.text), "assignee": s.sub})
    assert refused.status_code == 422
    error = re.search(r'<p class="error" role="alert" id="assign-error">([^<]+)</p>', refused.text)
    assert error and error.group(1).startswith(f"{s.sub} cannot be assigned this task"), refused.text
    assert 'aria-describedby="assign-error"' in refused.text
    assert task_of(s.world, task_id)["assignee"] is None

    blank = admin.post(f"/tasks/{task_id}/assign", data={"csrf_token": csrf_of(page.text), "assignee": ""})
    assert blank.status_code == 422 and "Choose a technician." in blank.text


def test_technicians_get_no_assign_form_and_cannot_post_one(setup: Setup) -> None:
    s = setup
    task_id = system_task(s.world, s.client_a, f"Not yours to assign {uuid.uuid4().hex[:6]}")
    page = s.browser.get(f"/tasks/{task_id}")
    assert 'id="assign-to"' not in page.text
    posted = s.browser.post(f"/tasks/{task_id}/assign", data={"csrf_token": csrf_of(page.text), "assignee": s.sub})
    assert posted.status_code == 404
    assert task_of(s.world, task_id)["assignee"] is None
