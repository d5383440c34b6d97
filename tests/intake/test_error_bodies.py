"""intake's error bodies: every problem of a body listed in words, a non-JSON body, another client's filter."""

from __future__ import annotations

import json
import uuid

import pytest
from intake_factories import client_state, create_request, make_client, purchase_body, submit

NOT_JSON = "body: send the body as JSON with the header Content-Type: application/json (this request had {shown})"


@pytest.fixture
def tenant(api, admin_h, auth):
    client = make_client(api, admin_h)
    return client, auth("client_user", "carol", client["id"])


def _keys(sql, key: str) -> int:
    return sql("SELECT count(*) FROM intake.idempotency_keys WHERE key = :k", k=key)[0][0]


def test_a_purchase_with_two_bad_fields_lists_both_in_words(api, tenant, sql):
    client, headers = tenant
    before = client_state(sql, client["id"])
    body = purchase_body(
        items=[{"description": "Keyboard", "quantity": 0, "unit_price_cents": 100}],
        supplier={"name": "Office Ltd", "contact_email": "sales at office"},
    )
    response = submit(api, headers, body, key="two-bad")
    assert response.status_code == 422
    out = response.json()
    assert out["errors"] == [
        {"field": "items.0.quantity", "detail": "items.0.quantity: Input should be greater than or equal to 1"},
        {
            "field": "supplier.contact_email",
            "detail": "supplier.contact_email: must be an e-mail address such as name@example.com",
        },
    ]
    assert (out["error"], out["field"], out["detail"]) == (
        "validation_error",
        "items.0.quantity",
        out["errors"][0]["detail"],
    )
    assert client_state(sql, client["id"]) == before
    assert _keys(sql, "two-bad") == 0


def test_a_missing_idempotency_key_and_a_bad_field_are_both_listed(api, tenant):
    _, headers = tenant
    response = api.post("/v1/requests", json=purchase_body(justification=""), headers=headers)
    assert response.status_code == 422
    assert [p["field"] for p in response.json()["errors"]] == ["Idempotency-Key", "justification"]
    assert response.json()["errors"][0]["detail"] == "Idempotency-Key: is required"


@pytest.mark.parametrize(
    ("content_type", "content", "shown"),
    [
        (None, json.dumps(purchase_body()).encode(), "no Content-Type"),
        ("text/plain", json.dumps(purchase_body()).encode(), "Content-Type text/plain"),
        (
            "application/x-www-form-urlencoded",
            b"type=purchase&justification=x",
            "Content-Type application/x-www-form-urlencoded",
        ),
    ],
    ids=["missing", "text", "form"],
)
def test_a_request_body_that_is_not_json_is_422_for_the_body(api, tenant, sql, content_type, content, shown):
    client, headers = tenant
    before = client_state(sql, client["id"])
    sent = {**headers, "Idempotency-Key": f"ct-{shown}"}
    if content_type is not None:
        sent["Content-Type"] = content_type
    response = api.post("/v1/requests", content=content, headers=sent)
    assert response.status_code == 422
    detail = NOT_JSON.format(shown=shown)
    assert response.json() == {
        "error": "validation_error",
        "detail": detail,
        "field": "body",
        "errors": [{"field": "body", "detail": detail}],
    }
    assert client_state(sql, client["id"]) == before
    assert _keys(sql, f"ct-{shown}") == 0


def test_a_client_patch_as_text_is_422_for_the_body(api, admin_h, tenant, sql):
    client, _ = tenant
    before = client_state(sql, client["id"])
    response = api.patch(
        f"/v1/clients/{client['id']}",
        content=b'{"status": "closed"}',
        headers={**admin_h, "Content-Type": "text/plain"},
    )
    assert (response.status_code, response.json()["field"]) == (422, "body")
    assert client_state(sql, client["id"]) == before


LISTS = ["/v1/requests", "/v1/tasks", "/v1/approvals"]


@pytest.mark.parametrize("role", ["client_user", "client_admin"])
@pytest.mark.parametrize("path", LISTS)
def test_a_client_role_filtering_on_another_client_gets_a_missing_clients_404(api, admin_h, auth, path, role):
    mine = make_client(api, admin_h, name="Mine")
    theirs = make_client(api, admin_h, name="Theirs")
    create_request(api, auth("client_user", "tom", theirs["id"]), purchase_body(total_cents=10**9))  # an approval too
    create_request(api, auth("client_user", "ann", mine["id"]), purchase_body(total_cents=10**9))
    headers = auth(role, "ann", mine["id"])
    missing = api.get(f"/v1/clients/{uuid.uuid4()}", headers=admin_h)
    assert missing.status_code == 404

    foreign = api.get(path, params={"client_id": theirs["id"]}, headers=headers)
    assert (foreign.status_code, foreign.content) == (404, missing.content)
    unknown = api.get(path, params={"client_id": str(uuid.uuid4())}, headers=headers)
    assert (unknown.status_code, unknown.content) == (404, missing.content)

    # Its own id still lists its own rows (so the 404 above is the tenancy rule, not a broken filter).
    own = api.get(path, params={"client_id": mine["id"]}, headers=headers)
    assert own.status_code == 200, own.text
    assert own.json()["items"] and {i["client_id"] for i in own.json()["items"]} == {mine["id"]}


@pytest.mark.parametrize("path", LISTS)
def test_staff_filter_on_any_client(api, admin_h, auth, path):
    client = make_client(api, admin_h)
    create_request(api, auth("client_user", "ann", client["id"]), purchase_body(total_cents=10**9))
    listed = api.get(path, params={"client_id": client["id"]}, headers=admin_h).json()["items"]
    assert listed and {i["client_id"] for i in listed} == {client["id"]}
    assert api.get(path, params={"client_id": str(uuid.uuid4())}, headers=admin_h).json()["items"] == []
