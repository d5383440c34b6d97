"""Every request type becomes the tasks, scope and approval of the contract's table."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from intake_factories import (
    create_request,
    get_task,
    isp_body,
    make_client,
    outbox,
    purchase_body,
    spam_body,
    submit,
)

EMPTY_SCOPE = {"credential_categories": [], "vendor_account_ids": [], "credential_ids": []}


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture
def client_a(api, admin_h):
    return make_client(api, admin_h, purchase_approval_threshold_cents=50_000)


@pytest.fixture
def user_a(auth, client_a):
    return auth("client_user", "alice", client_a["id"])


def test_purchase_under_threshold_is_one_ready_task_without_approval(api, admin_h, client_a, user_a, sql):
    created = create_request(api, user_a, purchase_body(total_cents=50_000))
    assert set(created) == {"id", "type", "client_id", "status", "task_ids", "created_at"}
    assert created["type"] == "purchase"
    assert created["client_id"] == client_a["id"]
    assert created["status"] == "open"
    assert len(created["task_ids"]) == 1
    task = get_task(api, admin_h, created["task_ids"][0])
    assert task["status"] == "ready"
    assert task["type"] == "purchase"
    assert task["request_id"] == created["id"]
    assert task["scope"] == EMPTY_SCOPE
    assert task["approvals"] == []
    assert outbox(sql, client_a["id"]) == [
        ("task.created", {"task_id": task["id"], "request_id": created["id"], "status": "ready"})
    ]


def test_purchase_over_threshold_waits_for_the_supplier_approval(api, admin_h, client_a, user_a, sql):
    body = purchase_body()
    body["items"] = [
        {"description": "Laptop", "quantity": 2, "unit_price_cents": 25_000},
        {"description": "Dock", "quantity": 1, "unit_price_cents": 1},
    ]  # total 50_001 > 50_000
    created = create_request(api, user_a, body)
    task = get_task(api, admin_h, created["task_ids"][0])
    assert task["status"] == "awaiting_approval"
    assert task["scope"] == EMPTY_SCOPE
    [approval] = task["approvals"]
    assert approval["status"] == "pending"
    assert approval["task_id"] == task["id"]
    assert approval["client_id"] == client_a["id"]
    assert approval["recipient"] == {
        "name": "Office Supplies Ltd",
        "contact_email": "sales@office-supplies.example",
        "party_category": "provider_for_client",
        "legal_reference": None,
        "vendor_id": None,
    }
    assert sorted(approval["information_categories"]) == ["billing", "contact_info"]
    assert approval["credential_ids"] == []
    assert approval["decided_by"] is None and approval["decided_at"] is None
    lifetime = _ts(approval["expires_at"]) - _ts(task["created_at"])
    assert abs(lifetime - timedelta(days=14)) < timedelta(seconds=5)
    assert outbox(sql, client_a["id"]) == [
        ("task.created", {"task_id": task["id"], "request_id": created["id"], "status": "awaiting_approval"}),
        (
            "approval.created",
            {"approval_id": approval["id"], "task_id": task["id"], "status": "pending", "origin": "request"},
        ),
    ]


def test_purchase_supplier_without_email_gives_a_null_contact(api, admin_h, user_a):
    body = purchase_body(total_cents=1_000_000, supplier={"name": "Cash & Carry"})
    task = get_task(api, admin_h, create_request(api, user_a, body)["task_ids"][0])
    assert task["approvals"][0]["recipient"]["contact_email"] is None


def test_isp_account_setup_always_needs_the_isp_approval(api, admin_h, client_a, user_a):
    created = create_request(api, user_a, isp_body())
    task = get_task(api, admin_h, created["task_ids"][0])
    assert task["type"] == "isp_account_setup"
    assert task["status"] == "awaiting_approval"
    assert task["scope"] == {"credential_categories": ["isp"], "vendor_account_ids": [], "credential_ids": []}
    [approval] = task["approvals"]
    assert approval["recipient"] == {
        "name": "FastFiber",
        "contact_email": "business@fastfiber.example",
        "party_category": "provider_for_client",
        "legal_reference": None,
        "vendor_id": None,
    }
    assert sorted(approval["information_categories"]) == ["billing", "contact_info", "service_address"]


def test_spam_filter_setup_defaults_to_mailchannels_and_needs_its_approval(api, admin_h, user_a, sql):
    created = create_request(api, user_a, spam_body())
    task = get_task(api, admin_h, created["task_ids"][0])
    assert task["type"] == "spam_filter_setup"
    assert task["status"] == "awaiting_approval"
    assert task["scope"] == {
        "credential_categories": ["spam_filter", "dns_host"],
        "vendor_account_ids": [],
        "credential_ids": [],
    }
    [approval] = task["approvals"]
    assert approval["recipient"] == {
        "name": "mailchannels",
        "contact_email": None,
        "party_category": "provider_for_msp",
        "legal_reference": None,
        "vendor_id": None,
    }
    assert sorted(approval["information_categories"]) == ["contact_info", "domain", "mail_routing"]
    [body] = sql("SELECT body FROM intake.requests WHERE id = :i", i=created["id"])[0]
    assert body["provider"] == "mailchannels"


def test_admin_creates_for_a_named_client(api, admin_h, client_a):
    created = create_request(api, admin_h, purchase_body(), client_id=client_a["id"])
    assert created["client_id"] == client_a["id"]


def test_admin_without_client_id_is_422_naming_client_id(api, admin_h):
    response = submit(api, admin_h, purchase_body())
    assert response.status_code == 422
    assert response.json()["field"] == "client_id"


def test_admin_naming_a_missing_client_is_404(api, admin_h):
    response = submit(api, admin_h, purchase_body(), client_id="00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "client not found", "field": "client_id"}


@pytest.mark.parametrize("role", ["client_user", "client_admin"])
def test_client_role_sending_client_id_is_422_naming_client_id(api, auth, client_a, role, sql):
    headers = auth(role, "someone", client_a["id"])
    for client_id in (client_a["id"], "00000000-0000-4000-8000-000000000000"):
        response = submit(api, headers, purchase_body(), client_id=client_id)
        assert response.status_code == 422
        assert response.json()["field"] == "client_id"
    assert outbox(sql, client_a["id"]) == []


@pytest.mark.parametrize("role", ["technician", "service"])
def test_only_admins_and_client_roles_submit(api, auth, client_a, role):
    sub = "svc:vendor_sync" if role == "service" else "tech-1"
    response = submit(api, auth(role, sub), purchase_body(), client_id=client_a["id"])
    assert response.status_code == 403


def test_inactive_client_cannot_submit(api, admin_h, client_a, user_a, sql):
    assert api.patch(f"/v1/clients/{client_a['id']}", json={"status": "inactive"}, headers=admin_h).status_code == 200
    response = submit(api, user_a, purchase_body())
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert [t for t, _ in outbox(sql, client_a["id"])] == ["client.status_changed"]


def test_request_reads_lists_and_filters(api, admin_h, auth, client_a, user_a):
    purchase = create_request(api, user_a, purchase_body())
    isp = create_request(api, user_a, isp_body())
    got = api.get(f"/v1/requests/{purchase['id']}", headers=user_a)
    assert got.status_code == 200
    assert got.json() == purchase
    listed = api.get("/v1/requests", params={"type": "isp_account_setup"}, headers=user_a).json()
    assert [r["id"] for r in listed["items"]] == [isp["id"]]
    assert api.get("/v1/requests", params={"status": "done"}, headers=user_a).json()["items"] == []
    tech = auth("technician", "tech-1")
    ids = {r["id"] for r in api.get("/v1/requests", params={"client_id": client_a["id"]}, headers=tech).json()["items"]}
    assert ids == {purchase["id"], isp["id"]}


def test_request_list_pages_with_a_cursor(api, user_a):
    made = [create_request(api, user_a, purchase_body())["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/requests", params=params, headers=user_a).json()
        assert len(page["items"]) <= 2
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made


def test_a_malformed_cursor_is_422_naming_cursor(api, user_a):
    response = api.get("/v1/requests", params={"cursor": "bm90LWpzb24"}, headers=user_a)
    assert response.status_code == 422
    assert response.json()["field"] == "cursor"


@pytest.mark.parametrize("template", ["Bearer {}", "bearer {}", "Bearer {} "], ids=["canonical", "lower", "trailing"])
def test_the_bearer_token_is_read_as_http_bearer_reads_it(api, client_a, user_a, template):
    token = user_a["Authorization"].removeprefix("Bearer ")
    response = submit(api, {"Authorization": template.format(token)}, purchase_body())
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        (lambda h, b: ({**h, "Idempotency-Key": "x" * 129}, b), 422, "Idempotency-Key"),
        (lambda h, b: ({**h, "Idempotency-Key": " leading-space"}, b), 422, "Idempotency-Key"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "Idempotency-Key"}, b), 422, "Idempotency-Key"),
        (lambda h, b: (h, {**b, "items": []}), 422, "items"),
        (lambda h, b: (h, {**b, "type": "no_such_type"}), 422, "type"),
        (lambda h, b: ({**h, "Authorization": "Bearer not-a-token"}, b), 401, None),
        (lambda h, b: ({**h, "Authorization": "Basic dTpw"}, b), 401, None),
    ],
    ids=["key-too-long", "key-pattern", "key-missing", "empty-items", "bad-type", "bad-token", "not-bearer"],
)
def test_a_refused_create_writes_nothing(api, client_a, user_a, sql, change, status, field):
    headers, body = change({**user_a, "Idempotency-Key": "refused"}, purchase_body())
    response = api.post("/v1/requests", json=body, headers=headers)
    assert response.status_code == status
    assert response.json().get("field") == field
    assert outbox(sql, client_a["id"]) == []
    assert sql("SELECT count(*) FROM intake.idempotency_keys WHERE scope = :s", s=f"client:{client_a['id']}")[0][0] == 0


def test_a_body_that_is_not_json_is_422_naming_body(api, client_a, user_a, sql):
    response = api.post(
        "/v1/requests",
        content=b"type=purchase",
        headers={**user_a, "Idempotency-Key": "form", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (response.status_code, response.json()["field"]) == (422, "body")
    assert outbox(sql, client_a["id"]) == []
