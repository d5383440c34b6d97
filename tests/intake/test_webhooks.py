"""PSA webhook: HMAC-SHA256 over the raw body with a per-provider secret; records a ticket link note."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest
from intake_factories import create_request, get_task, make_client, purchase_body

SECRET = "whsec-test-connectwise-0123456789"


@pytest.fixture
def psa_secret(monkeypatch):
    from pydantic import SecretStr

    from intake.settings import get_settings

    monkeypatch.setitem(get_settings().psa_webhook_secrets, "connectwise", SecretStr(SECRET))
    return SECRET


def _sign(raw: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


@pytest.fixture
def task(api, admin_h, auth):
    client = make_client(api, admin_h)
    created = create_request(api, auth("client_user", "u", client["id"]), purchase_body())
    return {"id": created["task_ids"][0], "client_id": client["id"]}


def _post(api, provider, raw, signature):
    return api.post(
        f"/v1/webhooks/psa/{provider}",
        content=raw,
        headers={"Content-Type": "application/json", "X-PSA-Signature": signature},
    )


def test_signed_callback_records_a_ticket_link_note(api, admin_h, auth, psa_secret, task):
    raw = json.dumps(
        {"task_id": task["id"], "ticket_id": "CW-1001", "ticket_url": "https://psa.example/tickets/1001"}
    ).encode()
    response = _post(api, "connectwise", raw, _sign(raw))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "task_id": task["id"],
        "provider": "connectwise",
        "ticket_id": "CW-1001",
        "recorded": True,
    }
    notes = get_task(api, admin_h, task["id"])["internal_notes"]
    assert [(n["kind"], n["author"], n["body"]) for n in notes] == [
        ("psa_link", "psa:connectwise", "connectwise ticket CW-1001 https://psa.example/tickets/1001")
    ]
    assert "internal_notes" not in get_task(api, auth("client_user", "u", task["client_id"]), task["id"])
    again = _post(api, "connectwise", raw, _sign(raw))
    assert again.json()["recorded"] is False
    assert len(get_task(api, admin_h, task["id"])["internal_notes"]) == 1


def test_bad_signature_is_401(api, admin_h, psa_secret, task):
    raw = json.dumps({"task_id": task["id"], "ticket_id": "CW-1"}).encode()
    for signature in (_sign(raw, "wrong-secret"), _sign(raw + b" "), "sha256=" + "0" * 64):
        response = _post(api, "connectwise", raw, signature)
        assert response.status_code == 401
        assert response.json()["error"] == "unauthenticated"
    assert get_task(api, admin_h, task["id"])["internal_notes"] == []


def test_missing_signature_is_422(api, psa_secret, task):
    response = api.post("/v1/webhooks/psa/connectwise", json={"task_id": task["id"], "ticket_id": "x"})
    assert response.status_code == 422
    assert response.json()["field"] == "X-PSA-Signature"


def test_unknown_provider_is_404(api, psa_secret):
    raw = b"{}"
    assert _post(api, "autotask", raw, _sign(raw)).status_code == 404


def test_signed_but_invalid_body_is_422_naming_the_field(api, psa_secret):
    raw = json.dumps({"task_id": "nope", "ticket_id": "x"}).encode()
    response = _post(api, "connectwise", raw, _sign(raw))
    assert response.status_code == 422
    assert response.json()["field"] == "task_id"


def test_signed_callback_for_a_missing_task_is_404(api, psa_secret):
    raw = json.dumps({"task_id": str(uuid.uuid4()), "ticket_id": "x"}).encode()
    assert _post(api, "connectwise", raw, _sign(raw)).status_code == 404
