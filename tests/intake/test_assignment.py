"""Assignment rules: technicians take unassigned ready tasks; reassigning is admin-only."""

from __future__ import annotations

import pytest
from intake_factories import assign, create_request, get_task, isp_body, make_client, outbox, purchase_body


@pytest.fixture
def ready_task(api, admin_h, auth):
    client = make_client(api, admin_h)
    created = create_request(api, auth("client_user", "u", client["id"]), purchase_body())
    return {"id": created["task_ids"][0], "client_id": client["id"]}


def _assigned_events(sql, client_id):
    return [d for t, d in outbox(sql, client_id) if t == "task.assigned"]


def test_technician_takes_an_unassigned_ready_task(api, admin_h, tech_h, ready_task, sql):
    before = get_task(api, admin_h, ready_task["id"])
    response = assign(api, tech_h, ready_task["id"], "tech-1")
    assert response.status_code == 200
    task = response.json()
    assert task["assignee"] == "tech-1"
    assert task["assigned_by"] == "tech-1"
    assert task["updated_at"] > before["updated_at"]
    assert _assigned_events(sql, ready_task["client_id"]) == [
        {
            "task_id": ready_task["id"],
            "assignee": "tech-1",
            "previous_assignee": None,
            "assigned_by": "tech-1",
            "status": "ready",
        }
    ]


def test_taking_it_again_is_a_no_op(api, tech_h, ready_task, sql):
    assert assign(api, tech_h, ready_task["id"], "tech-1").status_code == 200
    assert assign(api, tech_h, ready_task["id"], "tech-1").status_code == 200
    assert len(_assigned_events(sql, ready_task["client_id"])) == 1


def test_technician_cannot_assign_someone_else(api, tech_h, ready_task, sql):
    response = assign(api, tech_h, ready_task["id"], "tech-2")
    assert response.status_code == 403
    assert _assigned_events(sql, ready_task["client_id"]) == []


def test_technician_cannot_take_an_assigned_task(api, tech_h, tech2_h, ready_task, sql):
    assert assign(api, tech_h, ready_task["id"], "tech-1").status_code == 200
    response = assign(api, tech2_h, ready_task["id"], "tech-2")
    assert response.status_code == 403
    assert response.json()["detail"] == "reassigning is admin-only"
    assert len(_assigned_events(sql, ready_task["client_id"])) == 1


def test_technician_cannot_take_a_task_that_is_not_ready(api, admin_h, auth, tech_h):
    client = make_client(api, admin_h)
    created = create_request(api, auth("client_user", "u", client["id"]), isp_body())  # awaiting_approval
    response = assign(api, tech_h, created["task_ids"][0], "tech-1")
    assert response.status_code == 409
    assert response.json()["current_status"] == "awaiting_approval"


def test_admin_reassigns_and_the_event_names_both(api, admin_h, tech_h, ready_task, sql):
    assert assign(api, tech_h, ready_task["id"], "tech-1").status_code == 200
    before = get_task(api, admin_h, ready_task["id"])
    response = assign(api, admin_h, ready_task["id"], "tech-2")
    assert response.status_code == 200
    assert response.json()["assignee"] == "tech-2"
    assert response.json()["assigned_by"] == "admin-1"
    assert response.json()["updated_at"] > before["updated_at"]
    assert _assigned_events(sql, ready_task["client_id"])[-1] == {
        "task_id": ready_task["id"],
        "assignee": "tech-2",
        "previous_assignee": "tech-1",
        "assigned_by": "admin-1",
        "status": "ready",
    }


def test_admin_assigns_a_task_in_any_open_status(api, admin_h, auth):
    client = make_client(api, admin_h)
    created = create_request(api, auth("client_user", "u", client["id"]), isp_body())
    response = assign(api, admin_h, created["task_ids"][0], "tech-2")
    assert response.status_code == 200
    assert response.json()["status"] == "awaiting_approval"


def test_a_closed_task_cannot_be_assigned(api, admin_h, ready_task):
    assert (
        api.post(f"/v1/tasks/{ready_task['id']}/transition", json={"to": "cancelled"}, headers=admin_h).status_code
        == 200
    )
    response = assign(api, admin_h, ready_task["id"], "tech-1")
    assert response.status_code == 409
    assert response.json()["current_status"] == "cancelled"


@pytest.mark.parametrize("role", ["client_user", "client_admin"])
def test_client_roles_cannot_assign(api, auth, ready_task, role):
    response = assign(api, auth(role, "tech-1", ready_task["client_id"]), ready_task["id"], "tech-1")
    assert response.status_code == 403


def test_reassignment_while_in_progress_moves_the_live_authorization(api, admin_h, tech_h, broker_h, ready_task):
    assert assign(api, tech_h, ready_task["id"], "tech-1").status_code == 200
    assert (
        api.post(f"/v1/tasks/{ready_task['id']}/transition", json={"to": "in_progress"}, headers=tech_h).status_code
        == 200
    )
    view = api.get(f"/internal/tasks/{ready_task['id']}/authorization", headers=broker_h).json()
    assert (view["assignee"], view["status"]) == ("tech-1", "in_progress")
    assert assign(api, admin_h, ready_task["id"], "tech-2").status_code == 200
    after = api.get(f"/internal/tasks/{ready_task['id']}/authorization", headers=broker_h).json()
    assert (after["assignee"], after["assigned_by"]) == ("tech-2", "admin-1")
    assert after["updated_at"] > view["updated_at"]
