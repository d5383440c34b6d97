"""Assignment rules: technicians take unassigned ready tasks; reassigning is admin-only."""

from __future__ import annotations

import pytest
from intake_factories import (
    assign,
    client_state,
    create_request,
    events,
    get_task,
    isp_body,
    make_client,
    purchase_body,
)


@pytest.fixture
def ready_task(api, admin_h, auth):
    client = make_client(api, admin_h)
    created = create_request(api, auth("client_user", "u", client["id"]), purchase_body())
    return {"id": created["task_ids"][0], "client_id": client["id"]}


def _assigned_events(sql, client_id):
    return [d for _, d in events(sql, client_id, "task.assigned")]


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
    before = client_state(sql, ready_task["client_id"])
    response = assign(api, tech_h, ready_task["id"], "tech-2")
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden", "detail": "a technician may only take a task for themselves"}
    assert client_state(sql, ready_task["client_id"]) == before
    assert _assigned_events(sql, ready_task["client_id"]) == []


def test_technician_cannot_take_an_assigned_task(api, tech_h, tech2_h, ready_task, sql):
    assert assign(api, tech_h, ready_task["id"], "tech-1").status_code == 200
    before = client_state(sql, ready_task["client_id"])
    response = assign(api, tech2_h, ready_task["id"], "tech-2")
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden", "detail": "reassigning is admin-only"}
    assert client_state(sql, ready_task["client_id"]) == before
    assert len(_assigned_events(sql, ready_task["client_id"])) == 1


def test_technician_cannot_take_a_task_that_is_not_ready(api, admin_h, auth, tech_h, sql):
    client = make_client(api, admin_h)
    created = create_request(api, auth("client_user", "u", client["id"]), isp_body())  # awaiting_approval
    before = client_state(sql, client["id"])
    response = assign(api, tech_h, created["task_ids"][0], "tech-1")
    assert response.status_code == 409
    assert response.json() == {
        "error": "conflict",
        "detail": "only a ready task can be taken",
        "current_status": "awaiting_approval",
    }
    assert client_state(sql, client["id"]) == before


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


def test_a_closed_task_cannot_be_assigned(api, admin_h, ready_task, sql):
    assert (
        api.post(f"/v1/tasks/{ready_task['id']}/transition", json={"to": "cancelled"}, headers=admin_h).status_code
        == 200
    )
    before = client_state(sql, ready_task["client_id"])
    response = assign(api, admin_h, ready_task["id"], "tech-1")
    assert response.status_code == 409
    assert response.json() == {
        "error": "conflict",
        "detail": "a closed task cannot be assigned",
        "current_status": "cancelled",
    }
    assert client_state(sql, ready_task["client_id"]) == before


@pytest.mark.parametrize("role", ["client_user", "client_admin"])
def test_client_roles_cannot_assign(api, auth, ready_task, role, sql):
    before = client_state(sql, ready_task["client_id"])
    response = assign(api, auth(role, "tech-1", ready_task["client_id"]), ready_task["id"], "tech-1")
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden", "detail": "role not allowed"}
    assert client_state(sql, ready_task["client_id"]) == before


# An assignee is checked for the shape of a person's `sub` (at most 255 visible ASCII characters, as
# OpenID Connect allows) and is never a service's subject, before the staff directory is consulted.
SHAPE = "assignee: must be a person's subject: visible ASCII, no spaces or control characters"
BAD_ASSIGNEES = [
    ("", "assignee: String should have at least 1 character"),
    ("x" * 256, "assignee: String should have at most 255 characters"),
    ("tech 1", SHAPE),
    ("tech-1\t", SHAPE),
    ("tech-1\n", SHAPE),
    ("tech\x01one", SHAPE),
    ("tech\x7fone", SHAPE),
    ("tech\x00one", SHAPE),
    ("t\u00e9ch", SHAPE),
    ("tech\u200bone", SHAPE),
    ("svc:vendor_sync", "assignee: a service subject cannot be assigned"),
    ("svc:intake", "assignee: a service subject cannot be assigned"),
    ("none", "assignee: 'none' is reserved: it means unassigned"),
]


@pytest.mark.parametrize(("assignee", "detail"), BAD_ASSIGNEES, ids=[repr(a)[:24] for a, _ in BAD_ASSIGNEES])
def test_an_assignee_that_is_not_a_persons_subject_is_422(api, admin_h, ready_task, sql, assignee, detail):
    before = client_state(sql, ready_task["client_id"])
    response = assign(api, admin_h, ready_task["id"], assignee)
    assert response.status_code == 422
    body = response.json()
    assert (body["error"], body["field"], body["detail"]) == ("validation_error", "assignee", detail)
    assert client_state(sql, ready_task["client_id"]) == before
    assert get_task(api, admin_h, ready_task["id"])["assignee"] is None


@pytest.mark.parametrize("assignee", ["tech-1", "auth0|5f7c8ec7c33c6c004bbafe82", "a" * 255, "User.Name@example.com"])
def test_any_persons_subject_can_be_assigned(api, admin_h, ready_task, seed_staff, assignee):
    seed_staff(assignee)  # the shape is the schema's rule; being an active staff member is the directory's
    response = assign(api, admin_h, ready_task["id"], assignee)
    assert response.status_code == 200, response.text
    assert response.json()["assignee"] == assignee


def test_the_schema_states_the_assignee_rules(api):
    schema = api.get("/openapi.json").json()["components"]["schemas"]["TaskAssign"]["properties"]["assignee"]
    assert (schema["minLength"], schema["maxLength"], schema["pattern"]) == (1, 255, "^[!-~]+$")
    assert schema["not"] == {"anyOf": [{"pattern": "^svc:"}, {"const": "none"}]}


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


def test_assignee_none_lists_the_tasks_nobody_holds(api, admin_h, tech_h, auth, ready_task):
    taken = create_request(api, auth("client_user", "u", ready_task["client_id"]), purchase_body())["task_ids"][0]
    assert assign(api, tech_h, taken, "tech-1").status_code == 200

    def ids(assignee: str) -> set[str]:
        params = {"client_id": ready_task["client_id"], "assignee": assignee}
        r = api.get("/v1/tasks", params=params, headers=admin_h)
        assert r.status_code == 200, r.text
        return {t["id"] for t in r.json()["items"]}

    assert ids("none") == {ready_task["id"]}
    assert ids("tech-1") == {taken}
