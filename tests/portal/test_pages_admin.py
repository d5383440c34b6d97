"""The admin pages and the shared /disclosures page on the real stack: real sign-in, real APIs, effects read back."""

from __future__ import annotations

import html
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

# The broker, logged in to the private OpenBao, comes from the broker's own fixtures (as its fault tests do).
sys.path.insert(0, str(Path(__file__).parents[1] / "secrets_broker"))

from broker_fixtures import broker_app, broker_live, vault_addr  # noqa: F401
from broker_helpers import World
from portal_helpers import add_person, csrf_of, ensure_people, open_world, sign_in, submit

ADMIN_PAGES = ("/clients", "/staff", "/vendors", "/audit")


# ---- helpers ----


def inline_error(page: httpx.Response, field: str) -> str | None:
    """The words of the error shown next to the form field `field` (None when there is none)."""
    name = re.escape(field)
    pattern = rf'<p class="error"[^>]*(?:id="f-{name}-error"|data-error-for="{name}")[^>]*>(.*?)</p>'
    found = re.search(pattern, page.text, re.S)
    return html.unescape(found.group(1)).strip() if found else None


def is_404_page(page: httpx.Response) -> bool:
    """The portal's 404 page (HTML, not a JSON error and not a crash)."""
    return page.status_code == 404 and "text/html" in page.headers.get("content-type", "")


def text_of(page: httpx.Response) -> str:
    """The page's visible words, tags dropped and blanks collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


# ---- fixtures ----


@pytest.fixture(scope="module")
def stack_live(intake_live: str, vendor_sync_live: str, broker_live: str, portal_live: str) -> dict[str, str]:  # noqa: F811
    """Every API and the portal, served over HTTP."""
    return {"intake": intake_live, "vendor_sync": vendor_sync_live, "broker": broker_live, "portal": portal_live}


@pytest.fixture(scope="module")
def world(stack_live: dict[str, str], auth: Callable[..., dict[str, str]], devstack_dir: Path) -> Iterator[World]:
    """Test data made through the real APIs."""
    with open_world(stack_live, auth, devstack_dir, timeout=15) as opened:
        yield opened


@pytest.fixture(scope="module")
def admin(stack_live: dict[str, str], devstack_dir: Path) -> Iterator[httpx.Client]:
    """A browser signed in as the demo admin."""
    ensure_people(devstack_dir)
    browser = sign_in(stack_live["portal"], "admin")
    yield browser
    browser.close()


# ---- /clients ----


def test_admin_creates_a_client_through_the_form(admin: httpx.Client, world: World) -> None:
    page = admin.get("/clients")
    assert page.status_code == 200, page.text
    for label in ("Client name", "Main domain", "Approvers", "US dollars"):
        assert label in page.text
    name = f"Harbor {uuid.uuid4().hex[:8]}"
    form = {
        "csrf_token": csrf_of(page.text),
        "name": name,
        "primary_domain": "harbor-dental.example",
        "approver_emails": "owner@harbor-dental.example,\nbooks@harbor-dental.example",
        "purchase_approval_threshold": "$1,250.50",
        "alert_emails": "",
    }
    created = admin.post("/clients", data=form)
    assert created.status_code == 303, created.text
    client_id = re.fullmatch(r"/clients/([0-9a-f-]{36})\?created=1", created.headers["location"]).group(1)  # type: ignore[union-attr]

    at_intake = world.intake.get(f"/v1/clients/{client_id}", headers=world.admin)
    assert at_intake.status_code == 200, at_intake.text
    body = at_intake.json()
    assert body["name"] == name and body["status"] == "active"
    assert body["approver_emails"] == ["owner@harbor-dental.example", "books@harbor-dental.example"]
    assert body["purchase_approval_threshold_cents"] == 125050

    detail = admin.get(created.headers["location"])
    assert detail.status_code == 200 and name in detail.text and "$1250.50" in detail.text
    listing = admin.get("/clients")
    assert name in listing.text or 'rel="next"' in listing.text


def test_two_bad_fields_are_both_shown_inline_and_nothing_is_created(admin: httpx.Client, world: World) -> None:
    name = f"Broken {uuid.uuid4().hex[:8]}"
    form = {
        "name": name,
        "primary_domain": "not a domain",
        "approver_emails": "nobody-at-all",
        "purchase_approval_threshold": "500",
    }
    refused = submit(admin, "/clients", form)
    assert refused.status_code == 422, refused.text
    domain_error = inline_error(refused, "primary_domain")
    email_error = inline_error(refused, "approver_emails")
    assert domain_error and "host name" in domain_error, refused.text
    assert email_error and "e-mail address" in email_error, refused.text
    assert inline_error(refused, "name") is None
    # What the person typed stays in the form.
    assert 'value="not a domain"' in refused.text and "nobody-at-all" in refused.text

    names = [c["name"] for c in world.intake.get("/v1/clients?limit=200", headers=world.admin).json()["items"]]
    assert name not in names


def test_a_bad_amount_is_shown_with_the_apis_errors(admin: httpx.Client) -> None:
    form = {
        "name": "Amounts Inc",
        "primary_domain": "amounts.example",
        "approver_emails": "not-an-address",
        "purchase_approval_threshold": "a lot",
    }
    refused = submit(admin, "/clients", form)
    assert refused.status_code == 422
    assert "dollars" in (inline_error(refused, "purchase_approval_threshold") or "")
    assert inline_error(refused, "approver_emails")


def test_closing_a_client_asks_first_with_the_open_task_count(admin: httpx.Client, world: World) -> None:
    client_id = world.new_client()
    tasks = [world.new_task(client_id, assignee=None, in_progress=False) for _ in range(2)]
    detail = admin.get(f"/clients/{client_id}")
    assert detail.status_code == 200

    asked = admin.post(f"/clients/{client_id}/status", data={"csrf_token": csrf_of(detail.text), "status": "closed"})
    assert asked.status_code == 200, asked.text
    words = text_of(asked)
    assert "2 open tasks will be cancelled" in words, words
    assert "revoked" in words and "no longer be decid" in words
    assert 'name="confirm" value="yes"' in asked.text
    # Nothing changed yet.
    assert world.intake.get(f"/v1/clients/{client_id}", headers=world.admin).json()["status"] == "active"

    done = admin.post(
        f"/clients/{client_id}/status", data={"csrf_token": csrf_of(asked.text), "status": "closed", "confirm": "yes"}
    )
    assert done.status_code == 303, done.text
    assert world.intake.get(f"/v1/clients/{client_id}", headers=world.admin).json()["status"] == "closed"
    for task_id in tasks:
        assert world.intake.get(f"/v1/tasks/{task_id}", headers=world.admin).json()["status"] == "cancelled"
    after = admin.get(f"/clients/{client_id}")
    assert re.search(r'data-field="status">closed<', after.text)


def test_a_status_change_without_the_csrf_token_changes_nothing(admin: httpx.Client, world: World) -> None:
    client_id = world.new_client()
    refused = admin.post(f"/clients/{client_id}/status", data={"status": "closed", "confirm": "yes"})
    assert refused.status_code == 403
    assert world.intake.get(f"/v1/clients/{client_id}", headers=world.admin).json()["status"] == "active"


def test_an_unknown_client_is_the_404_page(admin: httpx.Client) -> None:
    assert is_404_page(admin.get(f"/clients/{uuid.uuid4()}"))
    assert is_404_page(admin.get("/clients/not-an-id"))


# ---- /staff ----


def test_a_staff_member_is_added_appears_and_can_be_deactivated(admin: httpx.Client, world: World) -> None:
    client_id = world.new_client()
    page = admin.get("/staff")
    assert page.status_code == 200, page.text
    assert f'value="{client_id}"' in page.text  # the client is offered as a checkbox
    sub = f"tara-{uuid.uuid4().hex[:8]}"
    form = {
        "csrf_token": csrf_of(page.text),
        "sub": sub,
        "display_name": "Tara Nguyen",
        "email": "tara@msp.example",
        "role": "technician",
        "access": "some",
        "client_ids": [str(client_id)],
    }
    added = admin.post("/staff", data=form)
    assert added.status_code == 303, added.text
    at_intake = world.intake.get(f"/v1/staff/{sub}", headers=world.admin).json()
    assert at_intake["client_ids"] == [str(client_id)] and at_intake["active"] is True

    member = admin.get(added.headers["location"])
    assert member.status_code == 200 and "Tara Nguyen" in member.text
    listed = admin.get("/staff")
    assert f'data-sub="{sub}"' in listed.text or 'rel="next"' in listed.text

    assert "will be unassigned" in text_of(member) or "nothing needs unassigning" in text_of(member)
    off = admin.post(f"/staff/{sub}/active", data={"csrf_token": csrf_of(member.text), "active": "false"})
    assert off.status_code == 303, off.text
    assert world.intake.get(f"/v1/staff/{sub}", headers=world.admin).json()["active"] is False


def test_a_taken_sub_and_a_bad_email_are_shown(admin: httpx.Client) -> None:
    form = {"sub": "admin-x", "display_name": "X", "email": "no", "role": "technician"}
    refused = submit(admin, "/staff", form)
    assert refused.status_code == 422
    assert inline_error(refused, "email")


def test_editing_a_member_gives_every_client(admin: httpx.Client, world: World) -> None:
    sub = f"sam-{uuid.uuid4().hex[:8]}"
    body = {"sub": sub, "display_name": "Sam", "email": "sam@msp.example", "role": "technician", "client_ids": []}
    assert world.intake.post("/v1/staff", headers=world.admin, json=body).status_code == 201
    form = {
        "display_name": "Sam Ortiz",
        "email": "sam@msp.example",
        "role": "technician",
        "access": "all",
    }
    saved = submit(admin, f"/staff/{sub}", form)
    assert saved.status_code == 303, saved.text
    after = world.intake.get(f"/v1/staff/{sub}", headers=world.admin).json()
    assert after["display_name"] == "Sam Ortiz" and after["client_ids"] is None
    assert is_404_page(admin.get(f"/staff/nobody-{uuid.uuid4().hex[:6]}"))


# ---- who may see what ----


def test_technicians_and_client_users_get_the_404_page(
    stack_live: dict[str, str], devstack_dir: Path, world: World
) -> None:
    client_id = world.new_client()
    user = add_person(devstack_dir, "client_user", client_id=client_id)
    world.tech("tech1")  # a staff row, so the technician is a real one
    for sub in ("tech1", user):
        browser = sign_in(stack_live["portal"], sub)
        for path in (*ADMIN_PAGES, f"/clients/{client_id}", "/staff/tech1"):
            assert is_404_page(browser.get(path)), (sub, path)
        assert is_404_page(browser.get("/disclosures")), sub
        assert is_404_page(browser.get("/disclosures.csv")), sub
        browser.close()


# ---- /vendors ----


def test_vendors_page_shows_a_clients_accounts_contacts_and_domains(admin: httpx.Client, world: World) -> None:
    client_id = world.new_client()
    vendor_name = f"Blue Harbor Hosting {uuid.uuid4().hex[:6]}"
    vendor_id = world.new_vendor(kind="hosting", name=vendor_name)
    assert world.registry is not None
    account = world.registry.post(
        f"/v1/clients/{client_id}/vendor-accounts",
        headers=world.admin,
        json={
            "vendor_id": str(vendor_id),
            "account_number": "BH-1042",
            "contacts": [{"name": "Dana Reyes", "role": "billing", "email": "dana@harbor.example"}],
        },
    )
    assert account.status_code == 201, account.text
    domain = world.registry.post(
        f"/v1/clients/{client_id}/domains", headers=world.admin, json={"name": "harbor.example"}
    )
    assert domain.status_code == 201, domain.text

    page = admin.get("/vendors", params={"client_id": str(client_id)})
    assert page.status_code == 200, page.text
    words = text_of(page)
    assert vendor_name in words and "BH-1042" in words and "Dana Reyes" in words
    assert 'data-domain="harbor.example"' in page.text and "not known yet" in words
    assert "No changes have been found" in words

    other = world.new_client()
    assert (
        f'data-account-id="{account.json()["id"]}"' not in admin.get("/vendors", params={"client_id": str(other)}).text
    )
    assert is_404_page(admin.get("/vendors", params={"client_id": str(uuid.uuid4())}))


# ---- /audit ----


def test_audit_page_shows_the_chain_verified(admin: httpx.Client, world: World) -> None:
    client_id = world.new_client()
    world.new_credential(client_id)  # at least one entry: credential.created
    page = admin.get("/audit")
    assert page.status_code == 200, page.text
    assert 'data-chain="verified"' in page.text
    assert "Verified" in text_of(page) and "intact" in text_of(page)
    assert "Credential stored" in text_of(page)
    assert re.search(r'<tr data-index="\d+">', page.text)


# ---- /disclosures ----


@pytest.fixture(scope="module")
def two_ledgers(world: World) -> dict[str, Any]:
    """Two clients, each with one third-party disclosure; the first one's recipient is a planted formula."""
    out: dict[str, Any] = {}
    for key, recipient in (("mine", "=cmd|' /C calc'!A0"), ("theirs", "Acme Fibre Ltd")):
        client_id, credential_id, _secret, task_id, sub = world.ready()
        contact = f"isp-{uuid.uuid4().hex[:8]}@fibre.example.net"
        approval_id = world.request_approval(
            task_id, credential_ids=[credential_id], categories=["credentials"], contact_email=contact, name=recipient
        )
        world.decide_approval(approval_id, client_id, "approved")
        released = world.release(sub, task_id, credential_id, approval_id=approval_id)
        assert released.status_code == 201, released.text
        rows = world.broker.get("/v1/disclosures", params={"client_id": str(client_id)}, headers=world.admin)
        assert rows.status_code == 200 and len(rows.json()["items"]) == 1, rows.text
        out[key] = {"client_id": str(client_id), "disclosure_id": rows.json()["items"][0]["disclosure_id"]}
    return out


def test_client_admin_sees_only_their_clients_disclosures(
    stack_live: dict[str, str], devstack_dir: Path, two_ledgers: dict[str, Any]
) -> None:
    mine, theirs = two_ledgers["mine"], two_ledgers["theirs"]
    boss = add_person(devstack_dir, "client_admin", client_id=mine["client_id"])
    browser = sign_in(stack_live["portal"], boss)
    try:
        page = browser.get("/disclosures")
        assert page.status_code == 200, page.text
        assert f'data-disclosure-id="{mine["disclosure_id"]}"' in page.text
        assert theirs["disclosure_id"] not in page.text
        assert set(re.findall(r'data-client-id="([^"]+)"', page.text)) == {mine["client_id"]}
        assert "A provider working for you" in text_of(page)
        assert 'id="f-client"' not in page.text  # no client picker for a client
        assert is_404_page(browser.get("/disclosures", params={"client_id": theirs["client_id"]}))

        csv = browser.get("/disclosures.csv")
        assert csv.status_code == 200, csv.text
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.headers["content-disposition"].startswith("attachment")
        assert "no-store" in csv.headers["cache-control"]
        lines = csv.text.splitlines()
        assert lines[0].startswith("disclosure_id,created_at,client_id")
        assert len(lines) == 2 and mine["disclosure_id"] in lines[1]
        # The planted formula is defused: the cell starts with an apostrophe, never with "=".
        assert "'=cmd|" in lines[1] and ",=cmd" not in lines[1]
    finally:
        browser.close()


def test_admin_sees_every_client_and_filters_by_client(admin: httpx.Client, two_ledgers: dict[str, Any]) -> None:
    mine, theirs = two_ledgers["mine"], two_ledgers["theirs"]
    page = admin.get("/disclosures", params={"client_id": theirs["client_id"]})
    assert page.status_code == 200, page.text
    assert theirs["disclosure_id"] in page.text and mine["disclosure_id"] not in page.text
    assert 'id="f-client"' in page.text
    csv = admin.get("/disclosures.csv", params={"client_id": mine["client_id"]})
    assert csv.status_code == 200 and mine["disclosure_id"] in csv.text and theirs["disclosure_id"] not in csv.text
