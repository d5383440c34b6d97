"""Clients: create, read, patch; leaving `active` cancels open tasks, all in one transaction."""

from __future__ import annotations

import pytest
from intake_factories import assign, create_request, get_task, isp_body, make_client, move, outbox, purchase_body


def test_admin_creates_an_active_client(api, admin_h):
    client = make_client(api, admin_h, primary_domain="Example-Dental.EXAMPLE")
    assert client["status"] == "active"
    assert client["primary_domain"] == "example-dental.example"
    assert set(client) >= {
        "id",
        "name",
        "primary_domain",
        "status",
        "approver_emails",
        "purchase_approval_threshold_cents",
        "created_at",
        "updated_at",
    }


@pytest.mark.parametrize(
    ("role", "sub"), [("technician", "t"), ("client_admin", "c"), ("client_user", "u"), ("service", "svc:vendor_sync")]
)
def test_only_admins_create_clients(api, auth, role, sub):
    client_id = "00000000-0000-4000-8000-000000000001" if role.startswith("client") else None
    body = {
        "name": "X",
        "primary_domain": "x.example",
        "approver_emails": ["a@x.example"],
        "purchase_approval_threshold_cents": 0,
    }
    assert api.post("/v1/clients", json=body, headers=auth(role, sub, client_id)).status_code == 403


def test_reads_by_role(api, admin_h, auth):
    a = make_client(api, admin_h)
    b = make_client(api, admin_h, name="B")
    assert api.get(f"/v1/clients/{a['id']}", headers=auth("technician", "t")).status_code == 200
    assert api.get(f"/v1/clients/{a['id']}", headers=auth("client_user", "u", a["id"])).json() == a
    assert api.get(f"/v1/clients/{b['id']}", headers=auth("client_user", "u", a["id"])).status_code == 404
    assert api.get(f"/v1/clients/{a['id']}", headers=auth("service", "svc:secrets_broker")).status_code == 403
    own = api.get("/v1/clients", headers=auth("client_admin", "c", a["id"])).json()
    assert [c["id"] for c in own["items"]] == [a["id"]]


@pytest.mark.parametrize("role", ["technician", "client_admin"])
def test_only_admins_patch(api, admin_h, auth, role):
    client = make_client(api, admin_h)
    headers = auth(role, "x", client["id"] if role == "client_admin" else None)
    response = api.patch(f"/v1/clients/{client['id']}", json={"status": "inactive"}, headers=headers)
    assert response.status_code == 403
    assert api.get(f"/v1/clients/{client['id']}", headers=admin_h).json()["status"] == "active"


def test_patch_fields(api, admin_h):
    client = make_client(api, admin_h)
    response = api.patch(
        f"/v1/clients/{client['id']}",
        json={"name": "Renamed", "purchase_approval_threshold_cents": 1, "approver_emails": ["x@y.example"]},
        headers=admin_h,
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["purchase_approval_threshold_cents"], body["approver_emails"]) == (
        "Renamed",
        1,
        ["x@y.example"],
    )
    assert body["updated_at"] > client["updated_at"]


@pytest.mark.parametrize("target", ["inactive", "closed"])
def test_leaving_active_cancels_every_open_task_with_events(api, admin_h, auth, tech_h, broker_h, sql, target):
    client = make_client(api, admin_h)
    user = auth("client_user", "u", client["id"])
    ready = create_request(api, user, purchase_body())["task_ids"][0]
    waiting = create_request(api, user, isp_body())["task_ids"][0]
    working = create_request(api, user, purchase_body())["task_ids"][0]
    done = create_request(api, user, purchase_body())["task_ids"][0]
    for task_id in (working, done):
        assert assign(api, tech_h, task_id, "tech-1").status_code == 200
        assert move(api, tech_h, task_id, "in_progress").status_code == 200
    assert move(api, tech_h, done, "done").status_code == 200
    before = len(outbox(sql, client["id"]))

    response = api.patch(f"/v1/clients/{client['id']}", json={"status": target}, headers=admin_h)
    assert response.status_code == 200
    assert response.json()["status"] == target
    statuses = {t: get_task(api, admin_h, t)["status"] for t in (ready, waiting, working, done)}
    assert statuses == {ready: "cancelled", waiting: "cancelled", working: "cancelled", done: "done"}
    events = outbox(sql, client["id"])[before:]
    changed = [d for t, d in events if t == "task.status_changed"]
    assert sorted((d["task_id"], d["from"], d["to"]) for d in changed) == sorted(
        [
            (ready, "ready", "cancelled"),
            (waiting, "awaiting_approval", "cancelled"),
            (working, "in_progress", "cancelled"),
        ]
    )
    assert events[-1] == ("client.status_changed", {"client_id": client["id"], "from": "active", "to": target})
    view = api.get(f"/internal/tasks/{working}/authorization", headers=broker_h).json()
    assert (view["status"], view["client_status"]) == ("cancelled", target)
    # Every record is kept and still readable.
    assert len(api.get("/v1/requests", headers=admin_h, params={"client_id": client["id"]}).json()["items"]) == 4


def test_status_change_that_fails_half_way_writes_nothing(api, admin_h, auth, sql, monkeypatch):
    client = make_client(api, admin_h)
    task_id = create_request(api, auth("client_user", "u", client["id"]), purchase_body())["task_ids"][0]
    before = outbox(sql, client["id"])
    from intake.clients import service

    def _boom(*args, **kwargs):
        raise RuntimeError("crash after cancelling tasks")

    monkeypatch.setattr(service, "emit", _boom)
    from fastapi.testclient import TestClient

    from intake.main import app

    with TestClient(app, raise_server_exceptions=False) as quiet:
        from intake.deps import get_session

        app.dependency_overrides[get_session] = api.app.dependency_overrides[get_session]
        response = quiet.patch(f"/v1/clients/{client['id']}", json={"status": "closed"}, headers=admin_h)
    assert response.status_code == 500
    assert get_task(api, admin_h, task_id)["status"] == "ready"
    assert api.get(f"/v1/clients/{client['id']}", headers=admin_h).json()["status"] == "active"
    assert outbox(sql, client["id"]) == before


def test_reactivating_emits_the_change(api, admin_h, sql):
    client = make_client(api, admin_h)
    api.patch(f"/v1/clients/{client['id']}", json={"status": "inactive"}, headers=admin_h)
    api.patch(f"/v1/clients/{client['id']}", json={"status": "active"}, headers=admin_h)
    assert [d for t, d in outbox(sql, client["id"])] == [
        {"client_id": client["id"], "from": "active", "to": "inactive"},
        {"client_id": client["id"], "from": "inactive", "to": "active"},
    ]
