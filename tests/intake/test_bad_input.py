"""Bad input: mass assignment, oversized bodies, NUL bytes, huge arrays and wrong types, all named."""

from __future__ import annotations

import json
import uuid

import pytest
from intake_factories import create_request, make_client, outbox, purchase_body, submit, system_task

SERVER_OWNED = {
    "id": str(uuid.uuid4()),
    "status": "done",
    "assignee": "mallory",
    "assigned_by": "mallory",
    "client_id": str(uuid.uuid4()),
    "scope": {"credential_categories": ["registrar"], "vendor_account_ids": [], "credential_ids": []},
    "created_at": "2020-01-01T00:00:00Z",
    "updated_at": "2020-01-01T00:00:00Z",
    "task_ids": [str(uuid.uuid4())],
    "request_id": str(uuid.uuid4()),
    "approvals": [],
    "steps": [],
    "internal_notes": [],
    "created_by": "mallory",
    "decided_by": "mallory",
    "expires_at": "2099-01-01T00:00:00Z",
}


@pytest.fixture
def tenant(api, admin_h, auth):
    client = make_client(api, admin_h)
    return client, auth("client_admin", "carol", client["id"])


@pytest.mark.parametrize("field", sorted(SERVER_OWNED))
def test_mass_assignment_on_requests_is_422(api, tenant, sql, field):
    client, headers = tenant
    response = submit(api, headers, {**purchase_body(), field: SERVER_OWNED[field]})
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert outbox(sql, client["id"]) == []


@pytest.mark.parametrize("field", ["status", "id", "created_at", "updated_at", "assignee"])
def test_mass_assignment_on_client_create_is_422(api, admin_h, field):
    body = {
        "name": "X",
        "primary_domain": "x.example",
        "approver_emails": ["a@x.example"],
        "purchase_approval_threshold_cents": 0,
        field: SERVER_OWNED.get(field, "active"),
    }
    response = api.post("/v1/clients", json=body, headers=admin_h)
    assert response.status_code == 422
    assert response.json()["field"] == field


@pytest.mark.parametrize("field", ["id", "created_at", "updated_at", "client_id"])
def test_mass_assignment_on_client_patch_is_422(api, admin_h, tenant, field):
    client, _ = tenant
    response = api.patch(f"/v1/clients/{client['id']}", json={field: SERVER_OWNED[field]}, headers=admin_h)
    assert response.status_code == 422
    assert response.json()["field"] == field


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("assign", {"assignee": "tech-1", "status": "in_progress"}, "status"),
        ("assign", {"assignee": "tech-1", "assigned_by": "admin-1"}, "assigned_by"),
        ("transition", {"to": "cancelled", "assignee": "mallory"}, "assignee"),
        ("transition", {"to": "cancelled", "updated_at": "2020-01-01T00:00:00Z"}, "updated_at"),
        (
            "approvals",
            {
                "recipient": {"name": "R", "contact_email": "r@r.example", "party_category": "provider_for_msp"},
                "information_categories": ["domain"],
                "expires_in_s": 600,
                "status": "approved",
            },
            "status",
        ),
        (
            "approvals",
            {
                "recipient": {"name": "R", "contact_email": "r@r.example", "party_category": "provider_for_msp"},
                "information_categories": ["domain"],
                "expires_in_s": 600,
                "client_id": str(uuid.uuid4()),
            },
            "client_id",
        ),
    ],
)
def test_mass_assignment_on_task_actions_is_422(api, admin_h, tenant, path, body, field):
    _, headers = tenant
    task_id = create_request(api, headers, purchase_body())["task_ids"][0]
    response = api.post(f"/v1/tasks/{task_id}/{path}", json=body, headers=admin_h)
    assert response.status_code == 422
    assert response.json()["field"] == field


@pytest.mark.parametrize("field", ["decided_by", "status", "decided_at"])
def test_mass_assignment_on_decisions_is_422(api, tenant, field):
    _, headers = tenant
    response = api.post(
        f"/v1/approvals/{uuid.uuid4()}/decision", json={"decision": "approved", field: "x"}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["field"] == field


def test_two_mib_body_is_413(api, tenant, sql):
    client, headers = tenant
    body = purchase_body(justification="x" * (2 * 1024 * 1024))
    response = submit(api, headers, body)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert outbox(sql, client["id"]) == []


def test_chunked_two_mib_body_is_413(api, tenant):
    _, headers = tenant
    payload = json.dumps(purchase_body(justification="x" * (2 * 1024 * 1024))).encode()

    def chunks():
        for i in range(0, len(payload), 65536):
            yield payload[i : i + 65536]

    response = api.post(
        "/v1/requests",
        content=chunks(),
        headers={**headers, "Idempotency-Key": "big", "Content-Type": "application/json"},
    )
    assert response.status_code == 413


NUL_CASES = [
    ({"justification": "a\x00b"}, "justification"),
    ({"supplier": {"name": "Bad\x00Supplier"}}, "supplier.name"),
    ({"items": [{"description": "\x00", "quantity": 1, "unit_price_cents": 1}]}, "items.0.description"),
]


@pytest.mark.parametrize(("override", "field"), NUL_CASES)
def test_nul_bytes_are_422_naming_the_field(api, tenant, sql, override, field):
    client, headers = tenant
    response = submit(api, headers, purchase_body(**override))
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert outbox(sql, client["id"]) == []


def test_nul_in_every_string_field_of_every_body_type(api, admin_h, tenant):
    """Walk the bodies of every type and poison each string in turn."""
    from intake_factories import isp_body, spam_body, vendor_contact_body

    _, headers = tenant
    bodies = [
        purchase_body(),
        isp_body(),
        spam_body(),
        vendor_contact_body(str(uuid.uuid4()), add=[{"name": "N", "role": "r", "email": "n@x.example"}]),
    ]

    def paths(value, prefix=()):
        if isinstance(value, dict):
            for k, v in value.items():
                yield from paths(v, (*prefix, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                yield from paths(v, (*prefix, i))
        elif isinstance(value, str) and prefix[-1] != "type":
            yield prefix

    checked = 0
    for body in bodies:
        for path in paths(body):
            poisoned = json.loads(json.dumps(body))
            target = poisoned
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = str(target[path[-1]])[:3] + "\x00"
            response = submit(api, headers, poisoned)
            assert response.status_code == 422, (path, response.text)
            assert response.json()["field"] == ".".join(str(p) for p in path), path
            checked += 1
    assert checked >= 20


def test_nul_in_other_bodies(api, admin_h, tenant):
    _client, headers = tenant
    response = api.post(
        "/v1/clients",
        json={
            "name": "A\x00",
            "primary_domain": "x.example",
            "approver_emails": ["a@x.example"],
            "purchase_approval_threshold_cents": 0,
        },
        headers=admin_h,
    )
    assert (response.status_code, response.json()["field"]) == (422, "name")
    task_id = create_request(api, headers, purchase_body())["task_ids"][0]
    response = api.post(f"/v1/tasks/{task_id}/transition", json={"to": "cancelled", "note": "x\x00"}, headers=admin_h)
    assert (response.status_code, response.json()["field"]) == (422, "note")
    response = api.post(f"/v1/tasks/{task_id}/assign", json={"assignee": "\x00"}, headers=admin_h)
    assert (response.status_code, response.json()["field"]) == (422, "assignee")
    response = api.get("/v1/tasks", params={"assignee": "a\x00"}, headers=admin_h)
    assert (response.status_code, response.json()["field"]) == (422, "assignee")


def test_ten_thousand_items_is_422_naming_the_array(api, tenant, sql):
    client, headers = tenant
    items = [{"description": "pen", "quantity": 1, "unit_price_cents": 1}] * 10_000
    response = submit(api, headers, purchase_body(items=items))
    assert response.status_code == 422
    assert response.json()["field"] == "items"
    assert outbox(sql, client["id"]) == []


@pytest.mark.parametrize(
    ("body_path", "value"),
    [
        (("downstream_hosts",), ["mail.example.com"] * 10_000),
    ],
)
def test_ten_thousand_hosts_is_422(api, tenant, body_path, value):
    from intake_factories import spam_body

    _, headers = tenant
    response = submit(api, headers, spam_body(downstream_hosts=value))
    assert response.status_code == 422
    assert response.json()["field"] == "downstream_hosts"


WRONG_TYPES = [
    ({"items": "many"}, "items"),
    ({"items": [{"description": "pen", "quantity": "1", "unit_price_cents": 1}]}, "items.0.quantity"),
    ({"items": [{"description": "pen", "quantity": 1.5, "unit_price_cents": 1}]}, "items.0.quantity"),
    ({"items": [{"description": "pen", "quantity": True, "unit_price_cents": 1}]}, "items.0.quantity"),
    ({"items": [{"description": 7, "quantity": 1, "unit_price_cents": 1}]}, "items.0.description"),
    ({"items": [{"description": "pen", "quantity": 1, "unit_price_cents": -1}]}, "items.0.unit_price_cents"),
    ({"justification": ["a"]}, "justification"),
    ({"supplier": "Office"}, "supplier"),
    ({"supplier": {"name": "S", "contact_email": "not-an-email"}}, "supplier.contact_email"),
    ({"type": "teleport"}, "type"),
    ({"type": 5}, "type"),
]


@pytest.mark.parametrize(("override", "field"), WRONG_TYPES)
def test_wrong_types_are_422_naming_the_field(api, tenant, override, field):
    _, headers = tenant
    response = submit(api, headers, purchase_body(**override))
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


def test_missing_type_is_422_naming_type(api, tenant):
    _, headers = tenant
    body = purchase_body()
    del body["type"]
    response = submit(api, headers, body)
    assert (response.status_code, response.json()["field"]) == (422, "type")


def test_not_json_is_422(api, tenant):
    _, headers = tenant
    response = api.post(
        "/v1/requests",
        content=b"{not json",
        headers={**headers, "Idempotency-Key": "x", "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


def test_bad_path_id_is_422_naming_it(api, admin_h):
    response = api.get("/v1/tasks/not-a-uuid", headers=admin_h)
    assert (response.status_code, response.json()["field"]) == (422, "task_id")


def test_internal_bodies_refuse_extras_and_nul(api, admin_h, vs_h, tenant):
    client, _ = tenant
    response = api.post(
        "/internal/tasks",
        json={"client_id": client["id"], "type": "drift_review", "title": "x", "status": "in_progress"},
        headers=vs_h,
    )
    assert (response.status_code, response.json()["field"]) == (422, "status")
    task = system_task(api, vs_h, client["id"])
    response = api.post(
        f"/internal/tasks/{task['id']}/steps", json={"name": "a\x00", "status": "succeeded"}, headers=vs_h
    )
    assert (response.status_code, response.json()["field"]) == (422, "name")
