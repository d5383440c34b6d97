"""Provisioning on the portal: the task page's Retry provisioning form, and the ledger's information disclosures.

Same world as test_pages_technician.py (a fresh technician who works only for client A). Each scene is
the real flow through the APIs: a MailChannels account, a client_user's spam-filter request, the
client_admin's approval, and vendor_sync's claim and step reports (`POST /internal/tasks/{id}/...` as
`svc:vendor_sync`), so intake itself puts the task on hold. No relay runs in this suite, so a retry's
`task.status_changed` stays in intake's outbox, where the test reads it.
"""

from __future__ import annotations

import csv
import html
import io
import re
import uuid
from typing import Any

import httpx
import pytest
import test_pages_technician as technician_pages
from broker_helpers import World
from portal_helpers import add_person, csrf_of, sign_in
from sqlalchemy import text
from test_pages_technician import Setup, task_of, text_of

# The fixtures, found by name in this module.
broker_app = technician_pages.broker_app
broker_live = technician_pages.broker_live
setup = technician_pages.setup

pytestmark = pytest.mark.timeout(180)

VENDOR_SYNC = "svc:vendor_sync"
FAILED_DETAIL = "Provision the domain at MailChannels failed. Error: the domain belongs to a different customer."
RETRIED = "Provisioning re-queued: the unfinished steps will run again."


# ---- the scene ----


def spam_filter_task(world: World, client_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A client_user's spam-filter request at a fresh MailChannels account, approved: (task, approval, vendor)."""
    vendor_id = world.new_vendor(kind="spam_filter", adapter="mailchannels")
    world.new_vendor_account(client_id, vendor_id=vendor_id)
    domain = f"d{uuid.uuid4().hex[:10]}.example.com"
    made = world.intake.post(
        "/v1/requests",
        headers={**world.auth("client_user", "requester", client_id), "Idempotency-Key": uuid.uuid4().hex},
        json={"type": "spam_filter_setup", "domain": domain, "downstream_hosts": [f"mail.{domain}"]},
    )
    assert made.status_code == 201, made.text
    [task_id] = made.json()["task_ids"]
    [approval] = task_of(world, uuid.UUID(task_id))["approvals"]
    assert approval["recipient"]["vendor_id"] == str(vendor_id)
    world.decide_approval(uuid.UUID(approval["id"]), client_id, "approved")
    return uuid.UUID(task_id), uuid.UUID(approval["id"]), vendor_id


def claim(world: World, task_id: uuid.UUID) -> None:
    """vendor_sync takes the ready task: `in_progress`, assigned to itself."""
    claimed = world.intake.post(f"/internal/tasks/{task_id}/claim", headers=world.vendor_sync_at_intake)
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["assignee"] == VENDOR_SYNC


def report(world: World, task_id: uuid.UUID, name: str, status: str, detail: str) -> None:
    """vendor_sync reports one of its steps (a failure puts the task on hold, unassigned)."""
    body = {"name": name, "status": status, "human": False, "detail": detail, "idempotency_key": uuid.uuid4().hex}
    reported = world.intake.post(f"/internal/tasks/{task_id}/steps", headers=world.vendor_sync_at_intake, json=body)
    assert reported.status_code in (200, 201), reported.text


def on_hold_task(world: World, client_id: uuid.UUID) -> uuid.UUID:
    """A spam-filter task whose first step failed at the vendor: `on_hold`, unassigned, the MX step still planned."""
    task_id, _, _ = spam_filter_task(world, client_id)
    claim(world, task_id)
    report(world, task_id, "provision_spam_filter_domain", "pending", "Provision the domain at MailChannels.")
    report(world, task_id, "set_mx_records", "pending", "Point the domain's MX records at MailChannels.")
    report(world, task_id, "provision_spam_filter_domain", "failed", FAILED_DETAIL)
    task = task_of(world, task_id)
    assert (task["status"], task["assignee"]) == ("on_hold", None), task
    return task_id


def task_events(admin_engine: Any, task_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of the task's rows in intake's outbox, in write order."""
    with admin_engine.connect() as conn:
        rows = conn.execute(
            text("SELECT type, envelope FROM intake.outbox WHERE envelope->>'aggregate_id' = :t ORDER BY id"),
            {"t": str(task_id)},
        ).all()
    return [(row[0], row[1]["data"]) for row in rows]


def alert(page: httpx.Response, element_id: str) -> str:
    """The words of the error with that id."""
    found = re.search(rf'<p class="error" role="alert" id="{element_id}">([^<]+)</p>', page.text)
    assert found, f"no #{element_id} on the page"
    return html.unescape(found.group(1)).strip()


def words_of(page: httpx.Response) -> str:
    """The page's visible words, tags dropped and blanks collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


def retry_form(page: httpx.Response, task_id: uuid.UUID) -> re.Match[str] | None:
    """The Retry provisioning form (a plain POST with the CSRF token), if the page offers it."""
    return re.search(
        rf'<form method="post" action="/tasks/{task_id}/provisioning/retry">\s*'
        r'<input type="hidden" name="csrf_token" value="[^"]+">.*?'
        r'<button type="submit"[^>]*>Retry provisioning</button>\s*</form>',
        page.text,
        re.S,
    )


@pytest.fixture
def admin(portal_live: str, people: dict[str, Any]) -> Any:
    """A browser signed in as the demo admin."""
    browser = sign_in(portal_live, "admin")
    yield browser
    browser.close()


# ---- Retry provisioning ----


def test_the_retry_button_hands_an_on_hold_task_back_to_provisioning(setup: Setup, admin_engine: Any) -> None:
    s = setup
    task_id = on_hold_task(s.world, s.client_a)
    page = s.browser.get(f"/tasks/{task_id}")
    assert page.status_code == 200, page.text
    assert retry_form(page, task_id), page.text
    assert 'aria-labelledby="retry-heading"' in page.text and ">Provisioning stopped</h2>" in page.text
    # The failed step's error, in the vendor's words.
    failed = re.search(r'<ul id="failed-steps">(.*?)</ul>', page.text, re.S)
    assert failed and html.unescape(failed.group(1)).count("<li>") == 1, page.text
    assert "Set up the domain at the spam filter" in failed.group(1) and FAILED_DETAIL in html.unescape(failed.group(1))
    before = task_events(admin_engine, task_id)

    pressed = s.browser.post(f"/tasks/{task_id}/provisioning/retry", data={"csrf_token": csrf_of(page.text)})

    assert pressed.status_code == 303, pressed.text
    landed = s.browser.get(pressed.headers["location"])
    assert f'<p class="notice" role="status">{RETRIED}</p>' in landed.text
    assert text_of(landed.text, "task-status") == "Ready" and text_of(landed.text, "task-assignee") == "Unassigned"
    assert not retry_form(landed, task_id)  # ready: nothing to retry
    # What intake recorded: the task ready and unassigned, the retry's note, one status event.
    task = task_of(s.world, task_id)
    assert (task["status"], task["assignee"]) == ("ready", None)
    assert any(n["body"].startswith(f"Provisioning retried by {s.sub}") for n in task["internal_notes"]), task
    new = task_events(admin_engine, task_id)[len(before) :]
    assert [(t, d["from"], d["to"]) for t, d in new] == [("task.status_changed", "on_hold", "ready")], new
    # The steps keep their outcomes: vendor_sync re-runs the unfinished ones.
    assert {st["name"]: st["status"] for st in task["steps"]} == {
        "provision_spam_filter_domain": "failed",
        "set_mx_records": "pending",
    }


def test_a_retry_intake_refuses_is_shown_in_words_and_changes_nothing(setup: Setup, admin_engine: Any) -> None:
    s = setup
    task_id = on_hold_task(s.world, s.client_a)
    stale = s.browser.get(f"/tasks/{task_id}")  # the page still offers the button...
    assert retry_form(stale, task_id)
    # ...while an admin retries the task first: it is ready, no longer on hold.
    first = s.world.intake.post(f"/v1/tasks/{task_id}/provisioning/retry", headers=s.world.admin)
    assert first.status_code == 202, first.text
    task, events = task_of(s.world, task_id), task_events(admin_engine, task_id)

    pressed = s.browser.post(f"/tasks/{task_id}/provisioning/retry", data={"csrf_token": csrf_of(stale.text)})

    assert pressed.status_code == 409, pressed.text
    assert alert(pressed, "retry-error") == (
        "Provisioning was not retried: only a task on hold can be retried, and this one is ready. "
        "Reload the page to see where it stands."
    )
    assert not retry_form(pressed, task_id)
    assert task_of(s.world, task_id) == task and task_events(admin_engine, task_id) == events


def test_a_task_provisioning_holds_is_not_the_technicians_to_retry(setup: Setup, admin_engine: Any) -> None:
    s = setup
    task_id, _, _ = spam_filter_task(s.world, s.client_a)
    claim(s.world, task_id)
    report(s.world, task_id, "provision_spam_filter_domain", "pending", "Provision the domain at MailChannels.")
    page = s.browser.get(f"/tasks/{task_id}")
    assert not retry_form(page, task_id)  # in progress, nothing failed
    task, events = task_of(s.world, task_id), task_events(admin_engine, task_id)

    pressed = s.browser.post(f"/tasks/{task_id}/provisioning/retry", data={"csrf_token": csrf_of(page.text)})

    assert pressed.status_code == 403, pressed.text
    assert alert(pressed, "retry-error").startswith("Provisioning was not retried: only the task's assignee")
    assert task_of(s.world, task_id) == task and task_events(admin_engine, task_id) == events
    # Without the CSRF token nothing reaches intake.
    assert s.browser.post(f"/tasks/{task_id}/provisioning/retry").status_code == 403
    assert task_events(admin_engine, task_id) == events


def test_an_admin_retries_from_the_task_page(setup: Setup, admin: httpx.Client) -> None:
    s = setup
    task_id = on_hold_task(s.world, s.client_b)  # not the technician's client: the admin's
    page = admin.get(f"/tasks/{task_id}")
    assert retry_form(page, task_id), page.text
    pressed = admin.post(f"/tasks/{task_id}/provisioning/retry", data={"csrf_token": csrf_of(page.text)})
    assert pressed.status_code == 303, pressed.text
    assert RETRIED in admin.get(pressed.headers["location"]).text
    assert task_of(s.world, task_id)["status"] == "ready"
    # Another client's task is not the technician's to see, nor to retry: the 404 page, as intake answers.
    own_csrf = csrf_of(s.browser.get("/tasks").text)
    assert s.browser.get(f"/tasks/{task_id}").status_code == 404
    assert s.browser.post(f"/tasks/{task_id}/provisioning/retry", data={"csrf_token": own_csrf}).status_code == 404


# ---- the ledger's kinds and the audit words ----


def test_the_ledger_says_what_kind_each_disclosure_is_and_its_approval(setup: Setup, admin: httpx.Client) -> None:
    s = setup
    world = s.world
    task_id, approval_id, vendor_id = spam_filter_task(world, s.client_a)
    claim(world, task_id)
    body = {
        "approval_id": str(approval_id),
        "task_id": str(task_id),
        "vendor_id": str(vendor_id),
        "information_categories": ["domain", "mail_routing"],
        "idempotency_key": uuid.uuid4().hex,
    }
    recorded = world.broker.post("/internal/disclosures", headers=world.vendor_sync, json=body)
    assert recorded.status_code == 201, recorded.text
    information = recorded.json()["disclosure_id"]
    refused = world.broker.post(
        "/internal/disclosures",
        headers=world.vendor_sync,
        json={**body, "information_categories": ["billing"], "idempotency_key": uuid.uuid4().hex},
    )
    assert refused.status_code == 403, refused.text
    # A password released to a third party of the same client, on its own approval.
    credential_id, _ = world.new_credential(s.client_a)
    release_task = world.new_task(s.client_a, assignee=s.sub, credential_ids=[credential_id])
    contact = f"isp-{uuid.uuid4().hex[:8]}@fibre.example.net"
    release_approval = world.request_approval(
        release_task, credential_ids=[credential_id], categories=["credentials"], contact_email=contact
    )
    world.decide_approval(release_approval, s.client_a, "approved")
    assert world.release(s.sub, release_task, credential_id, approval_id=release_approval).status_code == 201

    boss = sign_in(s.portal_url, add_person(world.devstack_dir, "client_admin", client_id=s.client_a))
    try:
        page = boss.get("/disclosures")
        assert page.status_code == 200, page.text
        rows = dict(re.findall(r'<tr data-disclosure-id="[^"]+"[^>]* data-kind="(\w+)">(.*?)</tr>', page.text, re.S))
        assert set(rows) == {"information", "credential"}, page.text
        assert '<td class="kind">Information sent</td>' in rows["information"]
        assert '<td class="what">domain, mail routing</td>' in rows["information"]
        assert (
            f'data-approval-id="{approval_id}"><a href="/approvals/{approval_id}">See the approval</a>'
            in rows["information"]
        )
        assert VENDOR_SYNC in rows["information"] and str(task_id) in rows["information"]
        assert '<td class="kind">Password or key released</td>' in rows["credential"]
        assert f'<a href="/approvals/{release_approval}">' in rows["credential"]
        assert '<th scope="col">Kind</th>' in page.text and '<th scope="col">Approval</th>' in page.text

        exported = list(csv.DictReader(io.StringIO(boss.get("/disclosures.csv").text)))
        assert {(r["kind"], r["approval_id"]) for r in exported} == {
            ("information", str(approval_id)),
            ("credential", str(release_approval)),
        }
        assert next(r for r in exported if r["kind"] == "information")["disclosure_id"] == information
    finally:
        boss.close()

    # An admin sees the same words, and the approval's id (admins have no approvals page).
    every = admin.get("/disclosures", params={"client_id": str(s.client_a)})
    assert every.status_code == 200, every.text
    assert "Information sent" in every.text and "Password or key released" in every.text
    assert f'data-approval-id="{approval_id}">{approval_id}</td>' in every.text and "/approvals/" not in every.text

    # The audit log words the broker's disclosure entries.
    audit = words_of(admin.get("/audit"))
    assert "Client information sent to a vendor (disclosure.recorded)" in audit
    assert "Sending client information refused (disclosure.denied)" in audit
