"""Events are outbox rows written in the transaction of the change: both commit, or neither."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from intake_factories import create_request, make_client, outbox, purchase_body, submit


def test_envelope_shape(api, admin_h, auth, sql):
    client = make_client(api, admin_h)
    created = create_request(api, auth("client_user", "u", client["id"]), purchase_body())
    [(event_type, envelope)] = [
        (r[0], r[1])
        for r in sql("SELECT type, envelope FROM intake.outbox WHERE envelope->>'client_id' = :c", c=client["id"])
    ]
    assert event_type == "task.created"
    # The contract's six keys, and the kit's one addition: the id of the HTTP request that caused it.
    assert set(envelope) == {"event_id", "type", "occurred_at", "client_id", "aggregate_id", "data", "http_request_id"}
    assert envelope["http_request_id"]  # this request sent none, so intake made one
    assert envelope["aggregate_id"] == created["task_ids"][0]
    uuid.UUID(envelope["event_id"])
    assert envelope["occurred_at"].endswith("Z")
    # ids and statuses only: nothing from the body (supplier, justification, items) is in the event.
    assert set(envelope["data"]) == {"task_id", "request_id", "status"}


def test_every_event_type_is_routed():
    from intake.events import ROUTES

    assert set(ROUTES) == {
        "client.status_changed",
        "staff.changed",
        "task.created",
        "task.assigned",
        "task.status_changed",
        "task.scope_changed",
        "approval.decided",
        "approval.created",
        "provisioning.step_reported",
    }


@pytest.fixture
def quiet_api(api):
    """The same app and transaction, but a crash answers 500 instead of raising into the test."""
    with TestClient(api.app, raise_server_exceptions=False) as client:
        yield client


def test_a_failing_outbox_write_leaves_neither_request_nor_event(quiet_api, api, admin_h, auth, sql, monkeypatch):
    """The request, its task and its outbox row are one transaction: the outbox row failing undoes the rest."""
    client = make_client(api, admin_h)
    user = auth("client_user", "u", client["id"])
    first = create_request(api, user, purchase_body())
    [(taken,)] = sql("SELECT event_id FROM intake.outbox WHERE envelope->>'aggregate_id' = :t", t=first["task_ids"][0])
    from mspkit import outbox as kit_outbox
    from mspkit.outbox import make_envelope

    def _duplicate_event_id(**kwargs):
        return {**make_envelope(**kwargs), "event_id": str(taken)}  # outbox.event_id is unique

    monkeypatch.setattr(kit_outbox, "make_envelope", _duplicate_event_id)
    response = submit(quiet_api, user, purchase_body(), key="fails")
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "detail": "internal error"}
    assert sql("SELECT count(*) FROM intake.requests WHERE client_id = :c", c=client["id"])[0][0] == 1
    assert sql("SELECT count(*) FROM intake.tasks WHERE client_id = :c", c=client["id"])[0][0] == 1
    assert len(outbox(sql, client["id"])) == 1
    # The key was not burnt either: a retry succeeds.
    monkeypatch.setattr(kit_outbox, "make_envelope", make_envelope)
    assert submit(api, user, purchase_body(), key="fails").status_code == 201


def test_refused_changes_write_no_event(api, admin_h, auth, tech_h, tech2_h, sql):
    client = make_client(api, admin_h)
    task_id = create_request(api, auth("client_user", "u", client["id"]), purchase_body())["task_ids"][0]
    before = outbox(sql, client["id"])
    attempts = [
        api.post(f"/v1/tasks/{task_id}/transition", json={"to": "done"}, headers=admin_h),  # 409
        api.post(f"/v1/tasks/{task_id}/transition", json={"to": "in_progress"}, headers=tech_h),  # 403
        api.post(f"/v1/tasks/{task_id}/assign", json={"assignee": "tech-2"}, headers=tech_h),  # 403
        api.patch(f"/v1/clients/{client['id']}", json={"status": "bogus"}, headers=admin_h),  # 422
    ]
    assert [r.status_code for r in attempts] == [409, 403, 403, 422]
    assert outbox(sql, client["id"]) == before


def test_committed_changes_carry_their_events(live_api, admin_h, auth, tech_h, admin_engine):
    """With real commits: each state in the database has exactly its events in intake.outbox."""
    from sqlalchemy import text

    client = make_client(live_api, admin_h)
    user = auth("client_user", "u", client["id"])
    task_id = create_request(live_api, user, purchase_body())["task_ids"][0]
    assert live_api.post(f"/v1/tasks/{task_id}/assign", json={"assignee": "tech-1"}, headers=tech_h).status_code == 200
    assert (
        live_api.post(f"/v1/tasks/{task_id}/transition", json={"to": "in_progress"}, headers=tech_h).status_code == 200
    )
    assert live_api.patch(f"/v1/clients/{client['id']}", json={"status": "closed"}, headers=admin_h).status_code == 200
    with admin_engine.connect() as conn:
        rows = conn.execute(
            text("SELECT type, envelope->'data' FROM intake.outbox WHERE envelope->>'client_id' = :c ORDER BY id"),
            {"c": client["id"]},
        ).all()
    assert [r[0] for r in rows] == [
        "task.created",
        "task.assigned",
        "task.status_changed",
        "task.status_changed",
        "client.status_changed",
    ]
    cancelled = dict(rows[3][1])
    # The task's own `updated_at` after the change travels with the event (the broker compares views by it).
    changed_at = datetime.fromisoformat(cancelled.pop("updated_at"))
    assert cancelled == {"task_id": task_id, "from": "in_progress", "to": "cancelled", "assignee": "tech-1"}
    task = live_api.get(f"/v1/tasks/{task_id}", headers=admin_h).json()
    assert changed_at == datetime.fromisoformat(task["updated_at"].replace("Z", "+00:00"))
