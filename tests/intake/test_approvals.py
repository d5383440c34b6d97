"""Approvals: decided by a client_admin of that client only; expiry; the task and request follow."""

from __future__ import annotations

import uuid

import pytest
from intake_factories import assign, create_request, get_task, isp_body, make_client, move, outbox, purchase_body


@pytest.fixture
def waiting(api, admin_h, auth):
    """An ISP request: its task waits for a pending approval."""
    client = make_client(api, admin_h)
    created = create_request(api, auth("client_user", "u", client["id"]), isp_body())
    task = get_task(api, admin_h, created["task_ids"][0])
    return {
        "client_id": client["id"],
        "request_id": created["id"],
        "task_id": task["id"],
        "approval_id": task["approvals"][0]["id"],
        "approver": auth("client_admin", "carol", client["id"]),
    }


def decide(api, headers, approval_id, decision="approved", **extra):
    return api.post(f"/v1/approvals/{approval_id}/decision", json={"decision": decision, **extra}, headers=headers)


def test_approving_moves_the_task_to_ready(api, admin_h, auth, waiting, sql):
    response = decide(api, waiting["approver"], waiting["approval_id"], comment="Go ahead")
    assert response.status_code == 200
    approval = response.json()
    assert approval["status"] == "approved"
    assert approval["decided_by"] == "carol"
    assert approval["decided_at"] is not None
    assert get_task(api, admin_h, waiting["task_id"])["status"] == "ready"
    user = auth("client_user", "u", waiting["client_id"])
    assert api.get(f"/v1/requests/{waiting['request_id']}", headers=user).json()["status"] == "open"
    assert outbox(sql, waiting["client_id"])[1:] == [
        (
            "approval.decided",
            {"approval_id": waiting["approval_id"], "task_id": waiting["task_id"], "decision": "approved"},
        ),
        (
            "task.status_changed",
            {"task_id": waiting["task_id"], "from": "awaiting_approval", "to": "ready", "assignee": None},
        ),
    ]


def test_rejecting_moves_the_task_to_rejected_and_closes_the_request(api, admin_h, auth, waiting, sql):
    response = decide(api, waiting["approver"], waiting["approval_id"], "rejected")
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    assert get_task(api, admin_h, waiting["task_id"])["status"] == "rejected"
    user = auth("client_user", "u", waiting["client_id"])
    assert api.get(f"/v1/requests/{waiting['request_id']}", headers=user).json()["status"] == "rejected"
    types = [t for t, _ in outbox(sql, waiting["client_id"])]
    assert types == ["task.created", "approval.decided", "task.status_changed"]


def test_another_clients_admin_gets_the_missing_404(api, admin_h, auth, waiting, sql):
    other = make_client(api, admin_h, name="Other")
    mallory = auth("client_admin", "mallory", other["id"])
    foreign = decide(api, mallory, waiting["approval_id"])
    missing = decide(api, mallory, str(uuid.uuid4()))
    assert foreign.status_code == missing.status_code == 404
    assert foreign.content == missing.content == b'{"error":"not_found","detail":"approval not found"}'
    assert api.get(f"/v1/approvals/{waiting['approval_id']}", headers=mallory).status_code == 404
    assert get_task(api, admin_h, waiting["task_id"])["status"] == "awaiting_approval"
    assert [t for t, _ in outbox(sql, waiting["client_id"])] == ["task.created"]


@pytest.mark.parametrize(
    ("role", "sub"),
    [("client_user", "u"), ("admin", "admin-1"), ("technician", "tech-1"), ("service", "svc:vendor_sync")],
)
def test_only_a_client_admin_decides(api, auth, waiting, role, sub):
    client_id = waiting["client_id"] if role == "client_user" else None
    response = decide(api, auth(role, sub, client_id), waiting["approval_id"])
    assert response.status_code == 403


def test_deciding_an_expired_approval_is_409(api, admin_h, waiting, sql):
    sql("UPDATE intake.approvals SET expires_at = now() - interval '1 second' WHERE id = :i", i=waiting["approval_id"])
    assert api.get(f"/v1/approvals/{waiting['approval_id']}", headers=admin_h).json()["status"] == "expired"
    response = decide(api, waiting["approver"], waiting["approval_id"])
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert response.json()["current_status"] == "expired"
    assert get_task(api, admin_h, waiting["task_id"])["status"] == "awaiting_approval"
    assert [t for t, _ in outbox(sql, waiting["client_id"])] == ["task.created"]


def test_deciding_twice_is_409(api, waiting):
    assert decide(api, waiting["approver"], waiting["approval_id"]).status_code == 200
    again = decide(api, waiting["approver"], waiting["approval_id"], "rejected")
    assert again.status_code == 409
    assert again.json()["current_status"] == "approved"


def test_an_approved_approval_past_expiry_reads_expired(api, admin_h, broker_h, waiting, sql):
    assert decide(api, waiting["approver"], waiting["approval_id"]).status_code == 200
    sql("UPDATE intake.approvals SET expires_at = now() - interval '1 second' WHERE id = :i", i=waiting["approval_id"])
    assert api.get(f"/v1/approvals/{waiting['approval_id']}", headers=admin_h).json()["status"] == "expired"
    view = api.get(f"/internal/tasks/{waiting['task_id']}/authorization", headers=broker_h).json()
    assert [a["status"] for a in view["approvals"]] == ["expired"]
    listed = api.get("/v1/approvals", params={"status": "approved", "task_id": waiting["task_id"]}, headers=admin_h)
    assert listed.json()["items"] == []
    listed = api.get("/v1/approvals", params={"status": "expired", "task_id": waiting["task_id"]}, headers=admin_h)
    assert [a["id"] for a in listed.json()["items"]] == [waiting["approval_id"]]


def test_approval_lists_are_tenant_scoped(api, admin_h, auth, waiting):
    other = make_client(api, admin_h, name="Other")
    assert api.get("/v1/approvals", headers=auth("client_user", "x", other["id"])).json()["items"] == []
    mine = api.get("/v1/approvals", headers=auth("client_user", "u", waiting["client_id"])).json()["items"]
    assert [a["id"] for a in mine] == [waiting["approval_id"]]


# ---- approvals asked by the assignee ---------------------------------------------------------------

DISCLOSURE = {
    "recipient": {
        "name": "Registrar Support",
        "contact_email": "help@registrar.example",
        "party_category": "provider_for_client",
    },
    "information_categories": ["credentials"],
    "credential_ids": [str(uuid.UUID(int=7))],
    "expires_in_s": 3600,
}


@pytest.fixture
def in_progress(api, admin_h, auth, tech_h):
    client = make_client(api, admin_h)
    task_id = create_request(api, auth("client_user", "u", client["id"]), purchase_body())["task_ids"][0]
    assert assign(api, tech_h, task_id, "tech-1").status_code == 200
    assert move(api, tech_h, task_id, "in_progress").status_code == 200
    return {"task_id": task_id, "client_id": client["id"], "approver": auth("client_admin", "carol", client["id"])}


def test_assignee_asks_for_a_disclosure_approval(api, tech_h, in_progress, broker_h):
    response = api.post(f"/v1/tasks/{in_progress['task_id']}/approvals", json=DISCLOSURE, headers=tech_h)
    assert response.status_code == 201, response.text
    approval = response.json()
    assert approval["status"] == "pending"
    assert approval["credential_ids"] == DISCLOSURE["credential_ids"]
    assert approval["recipient"]["legal_reference"] is None
    assert decide(api, in_progress["approver"], approval["id"]).status_code == 200
    view = api.get(f"/internal/tasks/{in_progress['task_id']}/authorization", headers=broker_h).json()
    assert view["status"] == "in_progress"  # a disclosure approval does not move a task that is being worked
    assert [(a["id"], a["status"]) for a in view["approvals"]] == [(approval["id"], "approved")]


def test_rejected_disclosure_does_not_end_the_task(api, admin_h, tech_h, in_progress):
    approval = api.post(f"/v1/tasks/{in_progress['task_id']}/approvals", json=DISCLOSURE, headers=tech_h).json()
    assert decide(api, in_progress["approver"], approval["id"], "rejected").status_code == 200
    assert get_task(api, admin_h, in_progress["task_id"])["status"] == "in_progress"


def test_non_assignee_cannot_ask(api, tech2_h, in_progress):
    response = api.post(f"/v1/tasks/{in_progress['task_id']}/approvals", json=DISCLOSURE, headers=tech2_h)
    assert response.status_code == 403


def test_government_recipient_needs_a_legal_reference(api, tech_h, in_progress):
    body = {**DISCLOSURE, "recipient": {**DISCLOSURE["recipient"], "party_category": "government_legal_process"}}
    response = api.post(f"/v1/tasks/{in_progress['task_id']}/approvals", json=body, headers=tech_h)
    assert response.status_code == 422
    assert response.json()["field"] == "recipient.legal_reference"
    body["recipient"]["legal_reference"] = "Subpoena 2026-117"
    response = api.post(f"/v1/tasks/{in_progress['task_id']}/approvals", json=body, headers=tech_h)
    assert response.status_code == 201
    assert response.json()["recipient"]["legal_reference"] == "Subpoena 2026-117"


def test_an_unknown_party_category_is_refused(api, tech_h, in_progress):
    body = {**DISCLOSURE, "recipient": {**DISCLOSURE["recipient"], "party_category": "friend_of_a_friend"}}
    response = api.post(f"/v1/tasks/{in_progress['task_id']}/approvals", json=body, headers=tech_h)
    assert response.status_code == 422
    assert response.json()["field"] == "recipient.party_category"


def test_closed_task_cannot_ask(api, admin_h, tech_h, in_progress):
    assert move(api, tech_h, in_progress["task_id"], "done").status_code == 200
    response = api.post(f"/v1/tasks/{in_progress['task_id']}/approvals", json=DISCLOSURE, headers=tech_h)
    assert response.status_code == 409
