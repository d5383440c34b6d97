"""The client pages on the real stack: request forms, request pages, approvals and access.

Each test makes two fresh clients at intake (A and B) and offers their people on the issuer's
sign-in page with those client ids; the portal is driven through its real sign-in, and every effect
is checked through the APIs as an admin reads them.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from portal_helpers import add_person, hidden, open_world, sign_in

sys.path.insert(0, str(Path(__file__).parents[1] / "secrets_broker"))

import broker_fixtures
from broker_helpers import World

broker_app = broker_fixtures.broker_app
broker_live = broker_fixtures.broker_live

pytestmark = pytest.mark.timeout(180)

ISP_FORM = {
    "isp_name": "FastFiber",
    "isp_contact_email": "business@fastfiber.example",
    "service_tier": "Business 500",
    "service_address.line1": "1 Main Street",
    "service_address.line2": "",
    "service_address.city": "Springfield",
    "service_address.region": "IL",
    "service_address.postal_code": "62701",
    "service_address.country": "US",
    "site_contact.name": "Dana Office",
    "site_contact.email": "dana@acme-dental.example",
    "site_contact.phone": "+1 217 555 0100",
}


@dataclass
class Setup:
    """One test's world: clients A and B, and the subs of their people on the issuer's page."""

    world: World
    broker: httpx.Client
    portal_url: str
    client_a: uuid.UUID
    client_b: uuid.UUID
    user_a: str
    admin_a: str
    admin_b: str

    def browser(self, sub: str) -> httpx.Client:
        """A browser signed in to the portal as `sub`."""
        return sign_in(self.portal_url, sub)

    def api_headers(self, role: str, sub: str, client_id: uuid.UUID) -> dict[str, str]:
        """A client person's own API token (to make data as they would, outside the portal)."""
        return self.world.auth(role, sub, client_id)


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
    """Clients A and B at intake; A's client_user and client_admin and B's client_admin on the issuer's page."""
    urls = {"broker": broker_live, "intake": intake_live, "vendor_sync": vendor_sync_live}
    with open_world(urls, auth, devstack_dir) as world:
        client_a, client_b = world.new_client(), world.new_client()
        tag = uuid.uuid4().hex[:8]
        subs = {"user_a": f"cu-a-{tag}", "admin_a": f"ca-a-{tag}", "admin_b": f"ca-b-{tag}"}
        add_person(devstack_dir, "client_user", client_id=client_a, sub=subs["user_a"])
        add_person(devstack_dir, "client_admin", client_id=client_a, sub=subs["admin_a"])
        add_person(devstack_dir, "client_admin", client_id=client_b, sub=subs["admin_b"])
        yield Setup(world, world.broker, portal_live, client_a, client_b, **subs)


# ---- reading pages ----


class Inputs(HTMLParser):
    """Every form control (name, id, value, type) and every label's `for`, and the text of `.error` paragraphs."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str]] = []
        self.label_for: set[str] = set()
        self.errors: dict[str, str] = {}
        self._error_id: str | None = None
        self._textarea: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("input", "select", "textarea") and a.get("name"):
            control = {"tag": tag, **a}
            self.controls.append(control)
            if tag == "textarea":
                control["value"] = ""
                self._textarea = control
        elif tag == "label" and a.get("for"):
            self.label_for.add(a["for"])
        elif tag == "p" and "error" in a.get("class", "").split() and a.get("id"):
            self._error_id = a["id"]
            self.errors[a["id"]] = ""

    def handle_data(self, data: str) -> None:
        if self._error_id:
            self.errors[self._error_id] += data
        if self._textarea is not None:
            self._textarea["value"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._error_id = None
        if tag == "textarea":
            self._textarea = None


def parse(html: str) -> Inputs:
    """The page's form controls, labels and inline errors."""
    parsed = Inputs()
    parsed.feed(html)
    return parsed


def form_page(browser: httpx.Client, request_type: str) -> tuple[str, str]:
    """Open a request form; its CSRF token and Idempotency-Key."""
    page = browser.get(f"/requests/new/{request_type}")
    assert page.status_code == 200, page.text
    return hidden(page.text, "csrf_token"), hidden(page.text, "idempotency_key")


def requests_of(s: Setup, client_id: uuid.UUID) -> list[dict[str, Any]]:
    """The client's requests as an admin lists them at intake."""
    listed = s.world.intake.get(
        "/v1/requests", params={"client_id": str(client_id), "limit": 200}, headers=s.world.admin
    )
    assert listed.status_code == 200, listed.text
    return list(listed.json()["items"])


def request_body(s: Setup, request_id: str) -> dict[str, Any]:
    """A request with its typed body, as intake's workers read it."""
    got = s.world.intake.get(f"/internal/requests/{request_id}", headers=s.world.vendor_sync_at_intake)
    assert got.status_code == 200, got.text
    return dict(got.json())


def isp_approval(s: Setup, client_id: uuid.UUID, sub: str) -> tuple[str, str]:
    """An ISP request filed through the API by a client_admin (sub) of `client_id`: (request id, its approval id)."""
    made = s.world.intake.post(
        "/v1/requests",
        headers={**s.api_headers("client_admin", sub, client_id), "Idempotency-Key": str(uuid.uuid4())},
        json={
            "type": "isp_account_setup",
            "isp_name": f"Fibre {uuid.uuid4().hex[:6]}",
            "isp_contact_email": "sales@fibre.example",
            "service_address": {
                "line1": "2 Side Street",
                "city": "Springfield",
                "region": "IL",
                "postal_code": "62701",
                "country": "US",
            },
            "service_tier": "Basic",
            "site_contact": {"name": "Sam", "email": "sam@c.example", "phone": "+1 217 555 0101"},
        },
    )
    assert made.status_code == 201, made.text
    task = s.world.intake.get(f"/v1/tasks/{made.json()['task_ids'][0]}", headers=s.world.admin).json()
    return made.json()["id"], task["approvals"][0]["id"]


def approval_status(s: Setup, approval_id: str) -> str:
    """An approval's status as an admin reads it."""
    got = s.world.intake.get(f"/v1/approvals/{approval_id}", headers=s.world.admin)
    assert got.status_code == 200, got.text
    return str(got.json()["status"])


# ---- request forms ----


def test_every_form_labels_every_field(setup: Setup) -> None:
    browser = setup.browser(setup.user_a)
    for request_type in ("purchase", "isp_account_setup", "spam_filter_setup", "vendor_contact_update"):
        page = browser.get(f"/requests/new/{request_type}")
        assert page.status_code == 200, page.text
        parsed = parse(page.text)
        visible = [c for c in parsed.controls if c.get("type") != "hidden"]
        assert visible, request_type
        for control in visible:
            assert control.get("id") in parsed.label_for, (request_type, control)
        # Each rendered form carries its own Idempotency-Key.
        assert hidden(page.text, "idempotency_key") != hidden(
            browser.get(f"/requests/new/{request_type}").text, "idempotency_key"
        )
    unknown = browser.get("/requests/new/time_machine")
    assert unknown.status_code == 404


def test_client_user_files_an_isp_request_through_the_form(setup: Setup) -> None:
    s = setup
    browser = s.browser(s.user_a)
    csrf, key = form_page(browser, "isp_account_setup")

    sent = browser.post(
        "/requests/new/isp_account_setup", data={**ISP_FORM, "csrf_token": csrf, "idempotency_key": key}
    )
    assert sent.status_code == 303, sent.text
    location = sent.headers["location"]
    request_id = re.fullmatch(r"/requests/([0-9a-f-]{36})\?flash=received", location).group(1)  # type: ignore[union-attr]

    filed = request_body(s, request_id)
    assert filed["client_id"] == str(s.client_a) and filed["created_by"] == s.user_a
    assert filed["body"] == {
        "type": "isp_account_setup",
        "isp_name": "FastFiber",
        "isp_contact_email": "business@fastfiber.example",
        "service_address": {
            "line1": "1 Main Street",
            "line2": None,
            "city": "Springfield",
            "region": "IL",
            "postal_code": "62701",
            "country": "US",
        },
        "service_tier": "Business 500",
        "site_contact": {"name": "Dana Office", "email": "dana@acme-dental.example", "phone": "+1 217 555 0100"},
    }

    landed = browser.get(location)
    assert landed.status_code == 200, landed.text
    assert "Request received" in landed.text
    # The ISP task waits for the client's approval, which only the client_admin gives.
    assert "Waiting for approval by your organisation&#39;s administrator" in landed.text
    assert "Waiting for your approval" not in landed.text
    owner = s.browser(s.admin_a)
    try:
        assert "Waiting for your approval" in owner.get(location).text
    finally:
        owner.close()
    listed = browser.get("/requests")
    assert f'href="/requests/{request_id}"' in listed.text and "Internet service (ISP) account" in listed.text


def test_the_same_form_sent_twice_makes_one_request(setup: Setup) -> None:
    s = setup
    browser = s.browser(s.user_a)
    csrf, key = form_page(browser, "isp_account_setup")
    data = {**ISP_FORM, "csrf_token": csrf, "idempotency_key": key}

    first = browser.post("/requests/new/isp_account_setup", data=data)
    second = browser.post("/requests/new/isp_account_setup", data=data)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert len(requests_of(s, s.client_a)) == 1

    # The same form sent back with other values (the browser's Back button): refused, values kept, a new key.
    changed = browser.post("/requests/new/isp_account_setup", data={**data, "service_tier": "Business 1000"})
    assert changed.status_code == 409
    assert "already sent once with other values" in changed.text
    values = {c["name"]: c.get("value", "") for c in parse(changed.text).controls}
    assert values["service_tier"] == "Business 1000" and values["idempotency_key"] not in ("", key)
    assert len(requests_of(s, s.client_a)) == 1


def test_a_purchase_with_two_bad_fields_shows_both_by_their_fields_and_keeps_the_values(setup: Setup) -> None:
    s = setup
    browser = s.browser(s.user_a)
    csrf, key = form_page(browser, "purchase")
    data = {
        "csrf_token": csrf,
        "idempotency_key": key,
        # Row 1 left empty: row 2 is the API's items.0, and its error must come back to row 2.
        "items.1.description": "Wireless keyboard",
        "items.1.quantity": "0",
        "items.1.unit_price": "24.99",
        "justification": "The reception keyboard is broken.",
        "supplier.name": "Office Supplies Ltd",
        "supplier.contact_email": "not an email",
    }
    refused = browser.post("/requests/new/purchase", data=data)
    assert refused.status_code == 422, refused.text
    parsed = parse(refused.text)
    assert set(parsed.errors) == {"f-items-1-quantity-error", "f-supplier-contact_email-error"}
    assert "greater than or equal to 1" in parsed.errors["f-items-1-quantity-error"]
    values = {c["name"]: c.get("value", "") for c in parsed.controls}
    assert values["items.1.quantity"] == "0" and values["supplier.contact_email"] == "not an email"
    assert values["items.1.description"] == "Wireless keyboard" and values["justification"] == data["justification"]
    assert values["idempotency_key"] == key
    invalid = {c["name"] for c in parsed.controls if c.get("aria-invalid") == "true"}
    assert invalid == {"items.1.quantity", "supplier.contact_email"}
    summary = re.search(r'<div class="error-summary" role="alert".*?</div>', refused.text, re.S)
    assert summary and 'href="#f-items-1-quantity"' in summary.group(0)
    assert 'href="#f-supplier-contact_email"' in summary.group(0)
    assert requests_of(s, s.client_a) == []

    # Fixed and sent again under the same key: one request.
    fixed = browser.post("/requests/new/purchase", data={**data, "items.1.quantity": "1", "supplier.contact_email": ""})
    assert fixed.status_code == 303, fixed.text
    filed = request_body(s, fixed.headers["location"].split("/")[2].split("?")[0])
    assert filed["body"]["items"] == [{"description": "Wireless keyboard", "quantity": 1, "unit_price_cents": 2499}]


def test_a_post_without_csrf_is_403_and_files_nothing(setup: Setup) -> None:
    s = setup
    browser = s.browser(s.user_a)
    _, key = form_page(browser, "isp_account_setup")
    refused = browser.post("/requests/new/isp_account_setup", data={**ISP_FORM, "idempotency_key": key})
    assert refused.status_code == 403
    wrong = browser.post(
        "/requests/new/isp_account_setup", data={**ISP_FORM, "idempotency_key": key, "csrf_token": "forged"}
    )
    assert wrong.status_code == 403
    assert requests_of(s, s.client_a) == []

    _, approval_id = isp_approval(s, s.client_a, s.admin_a)
    admin = s.browser(s.admin_a)
    assert admin.post(f"/approvals/{approval_id}/decision", data={"decision": "approved"}).status_code == 403
    assert approval_status(s, approval_id) == "pending"


# ---- who sees what ----


def test_a_client_user_gets_the_404_page_for_approvals_and_access(setup: Setup) -> None:
    s = setup
    _, approval_id = isp_approval(s, s.client_a, s.admin_a)
    browser = s.browser(s.user_a)
    for path in ("/approvals", f"/approvals/{approval_id}", "/access"):
        page = browser.get(path)
        assert page.status_code == 404, path
        assert approval_id not in page.text


def test_another_clients_objects_are_the_404_page(setup: Setup) -> None:
    s = setup
    request_b, approval_b = isp_approval(s, s.client_b, s.admin_b)
    browser = s.browser(s.admin_a)
    shown = browser.get(f"/approvals/{approval_b}")
    assert shown.status_code == 404 and approval_b not in shown.text
    assert browser.get(f"/requests/{request_b}").status_code == 404
    assert browser.get("/requests/not-a-uuid").status_code == 404
    csrf = hidden(browser.get("/requests").text, "csrf_token")
    decided = browser.post(f"/approvals/{approval_b}/decision", data={"decision": "approved", "csrf_token": csrf})
    assert decided.status_code == 404
    assert approval_status(s, approval_b) == "pending"
    assert approval_b not in browser.get("/approvals").text and request_b not in browser.get("/requests").text


# ---- approvals ----


def test_the_client_admin_reads_an_approval_in_words_and_approves_it(setup: Setup) -> None:
    s = setup
    request_id, approval_id = isp_approval(s, s.client_a, s.admin_a)
    browser = s.browser(s.admin_a)

    listed = browser.get("/approvals")
    assert listed.status_code == 200
    pending = re.search(r'id="pending-heading".*?</section>', listed.text, re.S)
    assert pending and f'href="/approvals/{approval_id}"' in pending.group(0)

    page = browser.get(f"/approvals/{approval_id}")
    assert page.status_code == 200, page.text
    assert "A provider working for you" in page.text
    assert "the address where the service is installed" in page.text and "billing details" in page.text
    assert "sales@fibre.example" in page.text
    assert re.search(r'id="expires">\d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d UTC<', page.text)
    assert f'href="/requests/{request_id}"' in page.text
    csrf = hidden(page.text, "csrf_token")

    decided = browser.post(
        f"/approvals/{approval_id}/decision", data={"decision": "approved", "comment": "Go ahead", "csrf_token": csrf}
    )
    assert decided.status_code == 303, decided.text
    assert approval_status(s, approval_id) == "approved"
    after = browser.get(decided.headers["location"])
    assert "You approved this disclosure." in after.text
    assert re.search(r'id="approval-status">Approved<', after.text)
    assert "Approve</button>" not in after.text

    again = browser.post(f"/approvals/{approval_id}/decision", data={"decision": "rejected", "csrf_token": csrf})
    assert again.status_code == 409
    assert "already decided" in again.text
    assert approval_status(s, approval_id) == "approved"


def test_an_approval_names_the_credentials_it_would_disclose(setup: Setup) -> None:
    s = setup
    credential_id, _ = s.world.new_credential(s.client_a)
    task_id = s.world.new_task(s.client_a, assignee=None, credential_ids=[credential_id], in_progress=False)
    approval_id = s.world.request_approval(
        task_id, credential_ids=[credential_id], categories=["credentials"], contact_email="help@isp.example"
    )
    page = s.browser(s.admin_a).get(f"/approvals/{approval_id}")
    assert page.status_code == 200, page.text
    credentials = re.search(r'<ul id="credentials">(.*?)</ul>', page.text, re.S)
    assert credentials and "ISP portal" in credentials.group(1) and "admin@example.com" in credentials.group(1)
    assert "passwords or access keys" in page.text


# ---- access ----


def test_access_lists_releases_of_own_credentials_only(setup: Setup) -> None:
    s = setup
    reasons = {}
    for name, client_id in (("a", s.client_a), ("b", s.client_b)):
        credential_id, _ = s.world.new_credential(s.client_a if name == "a" else s.client_b)
        sub = f"tech-{uuid.uuid4().hex[:8]}"
        task_id = s.world.new_task(client_id, assignee=sub, credential_ids=[credential_id])
        reasons[name] = f"client {name} checks the ISP portal {uuid.uuid4().hex[:6]}"
        released = s.world.release(sub, task_id, credential_id, reason=reasons[name])
        assert released.status_code == 201, released.text
        reasons[f"{name}-sub"] = sub

    page = s.browser(s.admin_a).get("/access")
    assert page.status_code == 200, page.text
    table = re.search(r'<table id="releases">.*?</table>', page.text, re.S)
    assert table, page.text
    assert reasons["a"] in table.group(0) and f"Technician {reasons['a-sub']}" in table.group(0)
    assert "ISP portal" in table.group(0)
    assert reasons["b"] not in page.text and reasons["b-sub"] not in page.text


def test_access_names_a_service_release_in_words(setup: Setup) -> None:
    s = setup
    account = s.world.new_vendor_account(s.client_a, kind="spam_filter")
    credential_id, _ = s.world.new_credential(
        s.client_a, kind="api_key", category="spam_filter", vendor_account_id=account
    )
    released = s.broker.post(
        "/internal/service-releases",
        headers=s.world.vendor_sync,
        json={"credential_id": str(credential_id), "vendor_account_id": str(account), "job_id": f"sync-{uuid.uuid4()}"},
    )
    assert released.status_code == 201, released.text
    page = s.browser(s.admin_a).get("/access")
    assert page.status_code == 200
    assert "Service: our automatic vendor set-up service" in page.text


def test_a_contact_change_offers_only_the_clients_vendor_accounts(setup: Setup) -> None:
    s = setup
    account_a = s.world.new_vendor_account(s.client_a, kind="hosting")
    account_b = s.world.new_vendor_account(s.client_b, kind="hosting")
    browser = s.browser(s.user_a)
    page = browser.get("/requests/new/vendor_contact_update")
    assert page.status_code == 200
    options = re.findall(r'<option value="([^"]*)"', page.text)
    assert str(account_a) in options and str(account_b) not in options

    sent = browser.post(
        "/requests/new/vendor_contact_update",
        data={
            "csrf_token": hidden(page.text, "csrf_token"),
            "idempotency_key": hidden(page.text, "idempotency_key"),
            "vendor_account_id": str(account_a),
            "contacts.add.1.name": "Dana Reyes",
            "contacts.add.1.role": "billing",
            "contacts.add.1.email": "dana@c.example",
        },
    )
    assert sent.status_code == 303, sent.text
    filed = request_body(s, sent.headers["location"].split("/")[2].split("?")[0])
    assert filed["body"]["vendor_account_id"] == str(account_a)
    assert filed["body"]["contacts"]["add"] == [
        {"name": "Dana Reyes", "role": "billing", "email": "dana@c.example", "phone": None}
    ]
