"""Approvals: decided by a client_admin of that client only; expiry; the task and request follow."""

from __future__ import annotations

import threading
import uuid

import pytest
from intake_factories import (
    assign,
    client_state,
    create_request,
    events,
    get_task,
    isp_body,
    make_client,
    move,
    outbox,
    purchase_body,
)

INACTIVE = {"error": "conflict", "detail": "the client is not active", "field": "client_id"}


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
    # task.created and approval.created (the expansion), then the decision's events.
    assert [t for t, _ in events(sql, waiting["client_id"])[:2]] == ["task.created", "approval.created"]
    assert events(sql, waiting["client_id"])[2:] == [
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
    assert types == ["task.created", "approval.created", "approval.decided", "task.status_changed"]


def test_another_clients_admin_gets_the_missing_404(api, admin_h, auth, waiting, sql):
    other = make_client(api, admin_h, name="Other")
    mallory = auth("client_admin", "mallory", other["id"])
    foreign = decide(api, mallory, waiting["approval_id"])
    missing = decide(api, mallory, str(uuid.uuid4()))
    assert foreign.status_code == missing.status_code == 404
    assert foreign.content == missing.content == b'{"error":"not_found","detail":"approval not found"}'
    assert api.get(f"/v1/approvals/{waiting['approval_id']}", headers=mallory).status_code == 404
    assert get_task(api, admin_h, waiting["task_id"])["status"] == "awaiting_approval"
    assert [t for t, _ in outbox(sql, waiting["client_id"])] == ["task.created", "approval.created"]


@pytest.mark.parametrize(
    ("role", "sub"),
    [("client_user", "u"), ("admin", "admin-1"), ("technician", "tech-1"), ("service", "svc:vendor_sync")],
)
def test_only_a_client_admin_decides(api, auth, waiting, role, sub, sql):
    client_id = waiting["client_id"] if role == "client_user" else None
    before = client_state(sql, waiting["client_id"])
    response = decide(api, auth(role, sub, client_id), waiting["approval_id"])
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden", "detail": "role not allowed"}
    assert client_state(sql, waiting["client_id"]) == before


def test_deciding_an_expired_approval_is_409(api, admin_h, waiting, sql):
    sql("UPDATE intake.approvals SET expires_at = now() - interval '1 second' WHERE id = :i", i=waiting["approval_id"])
    assert api.get(f"/v1/approvals/{waiting['approval_id']}", headers=admin_h).json()["status"] == "expired"
    before = client_state(sql, waiting["client_id"])
    response = decide(api, waiting["approver"], waiting["approval_id"])
    assert response.status_code == 409
    assert response.json() == {"error": "conflict", "detail": "the approval has expired", "current_status": "expired"}
    assert client_state(sql, waiting["client_id"]) == before
    assert get_task(api, admin_h, waiting["task_id"])["status"] == "awaiting_approval"
    assert [t for t, _ in outbox(sql, waiting["client_id"])] == ["task.created", "approval.created"]


def test_deciding_twice_is_409(api, waiting, sql):
    assert decide(api, waiting["approver"], waiting["approval_id"]).status_code == 200
    before = client_state(sql, waiting["client_id"])
    again = decide(api, waiting["approver"], waiting["approval_id"], "rejected")
    assert again.status_code == 409
    assert again.json() == {
        "error": "conflict",
        "detail": "the approval is already decided",
        "current_status": "approved",
    }
    assert client_state(sql, waiting["client_id"]) == before


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


def ask(api, headers, task_id, body=DISCLOSURE):
    return api.post(f"/v1/tasks/{task_id}/approvals", json=body, headers=headers)


def test_non_assignee_cannot_ask(api, tech2_h, in_progress, sql):
    before = client_state(sql, in_progress["client_id"])
    response = ask(api, tech2_h, in_progress["task_id"])
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden", "detail": "only the assignee or an admin may ask for an approval"}
    assert client_state(sql, in_progress["client_id"]) == before


def test_government_recipient_needs_a_legal_reference(api, tech_h, in_progress, sql):
    body = {**DISCLOSURE, "recipient": {**DISCLOSURE["recipient"], "party_category": "government_legal_process"}}
    before = client_state(sql, in_progress["client_id"])
    response = ask(api, tech_h, in_progress["task_id"], body)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    assert response.json()["field"] == "recipient.legal_reference"
    assert client_state(sql, in_progress["client_id"]) == before
    body["recipient"]["legal_reference"] = "Subpoena 2026-117"
    response = ask(api, tech_h, in_progress["task_id"], body)
    assert response.status_code == 201
    assert response.json()["recipient"]["legal_reference"] == "Subpoena 2026-117"


def test_an_unknown_party_category_is_refused(api, tech_h, in_progress, sql):
    body = {**DISCLOSURE, "recipient": {**DISCLOSURE["recipient"], "party_category": "friend_of_a_friend"}}
    before = client_state(sql, in_progress["client_id"])
    response = ask(api, tech_h, in_progress["task_id"], body)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    assert response.json()["field"] == "recipient.party_category"
    assert client_state(sql, in_progress["client_id"]) == before


def test_closed_task_cannot_ask(api, admin_h, tech_h, in_progress, sql):
    assert move(api, tech_h, in_progress["task_id"], "done").status_code == 200
    before = client_state(sql, in_progress["client_id"])
    response = ask(api, tech_h, in_progress["task_id"])
    assert response.status_code == 409
    assert response.json() == {"error": "conflict", "detail": "the task is closed", "current_status": "done"}
    assert client_state(sql, in_progress["client_id"]) == before


# ---- an inactive or closed client: 409 naming client_id, nothing written ---------------------------


@pytest.mark.parametrize("status", ["inactive", "closed"])
def test_asking_for_an_inactive_client_is_409(api, admin_h, tech_h, in_progress, sql, status):
    assert api.patch(f"/v1/clients/{in_progress['client_id']}", json={"status": status}, headers=admin_h).is_success
    before = client_state(sql, in_progress["client_id"])
    response = ask(api, tech_h, in_progress["task_id"])
    assert response.status_code == 409
    assert response.json() == INACTIVE
    assert client_state(sql, in_progress["client_id"]) == before


def test_asking_is_refused_even_while_the_task_is_still_open(api, tech_h, in_progress, sql):
    """The client check stands on its own: here no closed task could be what refuses the request."""
    sql("UPDATE intake.clients SET status = 'closed' WHERE id = :c", c=in_progress["client_id"])
    before = client_state(sql, in_progress["client_id"])
    response = ask(api, tech_h, in_progress["task_id"])
    assert (response.status_code, response.json()) == (409, INACTIVE)
    assert client_state(sql, in_progress["client_id"]) == before


@pytest.mark.parametrize("status", ["inactive", "closed"])
def test_deciding_for_an_inactive_client_is_409(api, admin_h, waiting, sql, status):
    assert api.patch(f"/v1/clients/{waiting['client_id']}", json={"status": status}, headers=admin_h).is_success
    before = client_state(sql, waiting["client_id"])
    response = decide(api, waiting["approver"], waiting["approval_id"])
    assert response.status_code == 409
    assert response.json() == INACTIVE
    assert client_state(sql, waiting["client_id"]) == before
    assert api.get(f"/v1/approvals/{waiting['approval_id']}", headers=admin_h).json()["status"] == "pending"


def test_deciding_is_refused_even_while_the_task_is_still_open(api, admin_h, waiting, sql):
    """The client check stands on its own: here no cancelled task could be what refuses the decision."""
    sql("UPDATE intake.clients SET status = 'inactive' WHERE id = :c", c=waiting["client_id"])
    before = client_state(sql, waiting["client_id"])
    response = decide(api, waiting["approver"], waiting["approval_id"], "rejected")
    assert (response.status_code, response.json()) == (409, INACTIVE)
    assert client_state(sql, waiting["client_id"]) == before
    assert get_task(api, admin_h, waiting["task_id"])["status"] == "awaiting_approval"


# ---- only the approvals of the request's expansion gate a waiting task -----------------------------


@pytest.fixture
def waiting_and_asked(api, admin_h, tech_h, waiting):
    """The waiting ISP task, assigned by an admin, with an approval its assignee asked for on top."""
    assert assign(api, admin_h, waiting["task_id"], "tech-1").status_code == 200
    asked = ask(api, tech_h, waiting["task_id"])
    assert asked.status_code == 201, asked.text
    return {**waiting, "asked_id": asked.json()["id"]}


def _status_changes(sql, client_id):
    return [(d["from"], d["to"]) for t, d in outbox(sql, client_id) if t == "task.status_changed"]


@pytest.mark.parametrize("decision", ["approved", "rejected"])
def test_an_approval_asked_later_never_moves_a_waiting_task(api, admin_h, waiting_and_asked, sql, decision):
    w = waiting_and_asked
    response = decide(api, w["approver"], w["asked_id"], decision)
    assert response.status_code == 200
    assert response.json()["status"] == decision
    assert get_task(api, admin_h, w["task_id"])["status"] == "awaiting_approval"
    assert _status_changes(sql, w["client_id"]) == []
    assert outbox(sql, w["client_id"])[-1] == (
        "approval.decided",
        {"approval_id": w["asked_id"], "task_id": w["task_id"], "decision": decision},
    )
    # The request's own approval still decides where the task goes.
    assert decide(api, w["approver"], w["approval_id"]).status_code == 200
    assert get_task(api, admin_h, w["task_id"])["status"] == "ready"
    assert _status_changes(sql, w["client_id"]) == [("awaiting_approval", "ready")]


def _second_request_approval(sql, approval_id):
    """A second approval made by the same expansion (as when a request names two recipients): a copy."""
    new_id = str(uuid.uuid4())
    sql(
        "INSERT INTO intake.approvals SELECT * FROM jsonb_populate_record(NULL::intake.approvals, "
        "(SELECT to_jsonb(a) || jsonb_build_object('id', CAST(:n AS uuid), 'recipient_name', 'Second recipient') "
        "FROM intake.approvals a WHERE a.id = :i))",
        n=new_id,
        i=approval_id,
    )
    return new_id


def test_the_task_waits_until_every_request_approval_is_approved(api, admin_h, waiting, sql):
    second = _second_request_approval(sql, waiting["approval_id"])
    assert decide(api, waiting["approver"], waiting["approval_id"]).status_code == 200
    assert get_task(api, admin_h, waiting["task_id"])["status"] == "awaiting_approval"
    assert _status_changes(sql, waiting["client_id"]) == []
    assert decide(api, waiting["approver"], second).status_code == 200
    assert get_task(api, admin_h, waiting["task_id"])["status"] == "ready"
    assert _status_changes(sql, waiting["client_id"]) == [("awaiting_approval", "ready")]


def test_one_rejection_rejects_the_task_once_all_are_decided(api, admin_h, auth, waiting, sql):
    second = _second_request_approval(sql, waiting["approval_id"])
    assert decide(api, waiting["approver"], waiting["approval_id"], "rejected").status_code == 200
    assert get_task(api, admin_h, waiting["task_id"])["status"] == "awaiting_approval"
    assert decide(api, waiting["approver"], second, "approved").status_code == 200
    assert get_task(api, admin_h, waiting["task_id"])["status"] == "rejected"
    assert _status_changes(sql, waiting["client_id"]) == [("awaiting_approval", "rejected")]
    user = auth("client_user", "u", waiting["client_id"])
    assert api.get(f"/v1/requests/{waiting['request_id']}", headers=user).json()["status"] == "rejected"


def test_a_request_approval_left_to_expire_keeps_the_task_waiting(api, admin_h, waiting, sql):
    second = _second_request_approval(sql, waiting["approval_id"])
    sql("UPDATE intake.approvals SET expires_at = now() - interval '1 second' WHERE id = :i", i=second)
    assert decide(api, waiting["approver"], waiting["approval_id"]).status_code == 200
    assert get_task(api, admin_h, waiting["task_id"])["status"] == "awaiting_approval"
    assert _status_changes(sql, waiting["client_id"]) == []


@pytest.mark.parametrize(
    ("statuses", "outcome"),
    [
        ([], None),
        (["pending"], None),
        (["approved"], "ready"),
        (["rejected"], "rejected"),
        (["approved", "approved"], "ready"),
        (["approved", "pending"], None),
        (["rejected", "pending"], None),
        (["rejected", "approved"], "rejected"),
        (["approved", "expired"], None),
    ],
)
def test_gate_outcome(statuses, outcome):
    from intake.approvals.service import gate_outcome

    assert gate_outcome(statuses) == outcome


# ---- concurrent decisions --------------------------------------------------------------------------


def test_two_concurrent_decisions_decide_once(live_api, admin_h, auth, monkeypatch):
    """Both deciders read the approval as pending before either locks: the second must see the first's decision."""
    from intake.approvals import service

    client = make_client(live_api, admin_h)
    task_id = create_request(live_api, auth("client_user", "u", client["id"]), isp_body())["task_ids"][0]
    approval_id = get_task(live_api, admin_h, task_id)["approvals"][0]["id"]
    approver = auth("client_admin", "carol", client["id"])
    both_read = threading.Barrier(2, timeout=30)
    read = service.get_approval

    def _read_then_meet(session, **kwargs):
        approval = read(session, **kwargs)
        if not kwargs.get("for_update"):
            both_read.wait()
        return approval

    monkeypatch.setattr(service, "get_approval", _read_then_meet)
    results = {}

    def _decide(decision):
        results[decision] = decide(live_api, approver, approval_id, decision)

    threads = [threading.Thread(target=_decide, args=(d,)) for d in ("approved", "rejected")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    monkeypatch.undo()
    assert sorted(r.status_code for r in results.values()) == [200, 409], {d: r.text for d, r in results.items()}
    winner = next(d for d, r in results.items() if r.status_code == 200)
    loser = results["rejected" if winner == "approved" else "approved"]
    assert loser.json()["current_status"] == winner
    assert live_api.get(f"/v1/approvals/{approval_id}", headers=admin_h).json()["status"] == winner
    task = get_task(live_api, admin_h, task_id)
    assert task["status"] == ("ready" if winner == "approved" else "rejected")
