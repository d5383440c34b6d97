"""vendor_contact_update against the real vendor_sync registry (served over HTTP by `vendor_sync_live`)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from intake_factories import create_request, get_task, make_client, outbox, submit, vendor_contact_body


@pytest.fixture(scope="module")
def registry(vendor_sync_live, auth):
    """An admin client of the live vendor_sync API."""
    with httpx.Client(base_url=vendor_sync_live, headers=auth("admin", "vs-admin"), timeout=10) as http:
        yield http


def make_vendor(registry, *, kind: str, name: str = "Vendor", support_email: str | None = None) -> dict:
    # The registry commits for real and vendor names are unique: each test makes its own.
    body = {
        "name": f"{name} {uuid.uuid4().hex[:8]}",
        "kind": kind,
        **({"support_email": support_email} if support_email else {}),
    }
    response = registry.post("/v1/vendors", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def make_account(registry, client_id: str, vendor_id: str, contacts: list[dict] | None = None) -> dict:
    body = {"vendor_id": vendor_id, "account_number": f"ACCT-{uuid.uuid4().hex[:8]}", "contacts": contacts or []}
    response = registry.post(f"/v1/clients/{client_id}/vendor-accounts", json=body)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def setup(api, admin_h, auth, registry):
    client = make_client(api, admin_h)
    vendor = make_vendor(registry, kind="software", name="LicenseCo", support_email="support@licenseco.example")
    account = make_account(registry, client["id"], vendor["id"], contacts=[{"name": "Old Contact", "role": "billing"}])
    return client, vendor, account, auth("client_admin", "carol", client["id"])


NEW = {"name": "Pat Person", "role": "technical", "email": "pat@acme-dental.example"}


def test_adding_contacts_needs_the_vendor_approval_and_scopes_the_account(api, admin_h, setup, sql):
    client, vendor, account, headers = setup
    created = create_request(api, headers, vendor_contact_body(account["id"], add=[NEW]))
    task = get_task(api, admin_h, created["task_ids"][0])
    assert task["type"] == "vendor_contact_update"
    assert task["status"] == "awaiting_approval"
    # A software vendor's accounts hold software_license credentials.
    assert task["scope"] == {
        "credential_categories": ["software_license"],
        "vendor_account_ids": [account["id"]],
        "credential_ids": [],
    }
    [approval] = task["approvals"]
    assert approval["recipient"] == {
        "name": vendor["name"],
        "contact_email": "support@licenseco.example",
        "party_category": "provider_for_client",
        "legal_reference": None,
        "vendor_id": vendor["id"],
    }
    assert approval["information_categories"] == ["contact_info"]
    assert [t for t, _ in outbox(sql, client["id"])] == ["task.created", "approval.created"]


def test_updating_a_contact_needs_the_approval(api, admin_h, setup):
    _, _, account, headers = setup
    contact_id = account["contacts"][0]["id"]
    body = vendor_contact_body(account["id"], update=[{"id": contact_id, "email": "new@acme-dental.example"}])
    task = get_task(api, admin_h, create_request(api, headers, body)["task_ids"][0])
    assert task["status"] == "awaiting_approval"
    assert len(task["approvals"]) == 1


def test_removing_contacts_only_needs_no_approval(api, admin_h, setup):
    _, _, account, headers = setup
    body = vendor_contact_body(account["id"], remove=[account["contacts"][0]["id"]])
    task = get_task(api, admin_h, create_request(api, headers, body)["task_ids"][0])
    assert task["status"] == "ready"
    assert task["approvals"] == []
    assert task["scope"]["vendor_account_ids"] == [account["id"]]


@pytest.mark.parametrize(
    ("kind", "category"),
    [("isp", "isp"), ("registrar", "registrar"), ("dns_host", "dns_host"), ("email", "email"), ("cloud", "cloud")],
)
def test_scope_category_follows_the_vendor_kind(api, admin_h, auth, registry, kind, category):
    client = make_client(api, admin_h)
    vendor = make_vendor(registry, kind=kind, name=f"{kind} vendor")
    account = make_account(registry, client["id"], vendor["id"])
    headers = auth("client_user", "u", client["id"])
    task = get_task(
        api, admin_h, create_request(api, headers, vendor_contact_body(account["id"], add=[NEW]))["task_ids"][0]
    )
    assert task["scope"]["credential_categories"] == [category]
    # No support_email at the vendor: the recipient's contact is null.
    assert task["approvals"][0]["recipient"]["contact_email"] is None


def test_another_clients_account_is_the_same_404_as_a_missing_one(api, admin_h, auth, registry, setup, sql):
    _, _vendor, account, _ = setup
    other = make_client(api, admin_h, name="Other Co")
    headers = auth("client_admin", "mallory", other["id"])
    foreign = submit(api, headers, vendor_contact_body(account["id"], add=[NEW]))
    missing = submit(api, headers, vendor_contact_body(str(uuid.uuid4()), add=[NEW]))
    assert foreign.status_code == missing.status_code == 404
    assert foreign.content == missing.content
    assert foreign.json() == {"error": "not_found", "detail": "vendor account not found", "field": "vendor_account_id"}
    assert outbox(sql, other["id"]) == []


def test_unknown_contact_id_is_404_naming_it(api, setup, sql):
    client, _, account, headers = setup
    response = submit(api, headers, vendor_contact_body(account["id"], remove=[str(uuid.uuid4())]))
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "contact not found", "field": "contacts.remove.0"}
    update = [{"id": str(uuid.uuid4()), "name": "X"}]
    response = submit(api, headers, vendor_contact_body(account["id"], update=update))
    assert (response.status_code, response.json()["field"]) == (404, "contacts.update.0.id")
    assert outbox(sql, client["id"]) == []


def test_replay_does_not_call_the_registry_again(api, setup, monkeypatch):
    _, _, account, headers = setup
    body = vendor_contact_body(account["id"], add=[NEW])
    first = submit(api, headers, body, key="vcu-1")
    assert first.status_code == 201
    from intake import vendors

    def _boom(*args, **kwargs):
        raise AssertionError("the registry was called for a replay")

    monkeypatch.setattr(vendors.VendorRegistry, "account_for_client", _boom)
    again = submit(api, headers, body, key="vcu-1")
    assert again.status_code == 201
    assert again.content == first.content


def test_registry_unreachable_is_503(api, admin_h, auth, sql, monkeypatch):
    from intake import vendors
    from intake.requests import service
    from intake.settings import get_settings

    client = make_client(api, admin_h)
    headers = auth("client_user", "u", client["id"])
    # Nothing listens on the discard port.
    dead = vendors.VendorRegistry(get_settings().model_copy(update={"vendor_sync_url": "http://127.0.0.1:9"}))
    monkeypatch.setattr(service, "get_registry", lambda: dead)
    response = submit(api, headers, vendor_contact_body(str(uuid.uuid4()), add=[NEW]))
    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert outbox(sql, client["id"]) == []
