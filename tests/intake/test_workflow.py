"""The transition table: every (from, to) pair, for the assignee and for an admin."""

from __future__ import annotations

import itertools

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
    purchase_body,
    system_task,
)

STATUSES = ["new", "awaiting_approval", "ready", "in_progress", "on_hold", "done", "rejected", "cancelled"]
WORK = {
    ("new", "awaiting_approval"),
    ("new", "ready"),
    ("new", "cancelled"),
    ("awaiting_approval", "cancelled"),
    ("ready", "in_progress"),
    ("ready", "cancelled"),
    ("in_progress", "on_hold"),
    ("in_progress", "done"),
    ("in_progress", "cancelled"),
    ("on_hold", "in_progress"),
    ("on_hold", "cancelled"),
}
BY_APPROVAL = {("awaiting_approval", "ready"), ("awaiting_approval", "rejected")}
REOPEN = {("done", "ready"), ("rejected", "ready"), ("cancelled", "ready")}
PAIRS = list(itertools.product(STATUSES, STATUSES))


def _expected(pair: tuple[str, str], actor: str) -> int:
    if pair in WORK:
        return 200
    if pair in REOPEN:
        return 200 if actor == "admin" else 403
    return 409  # no edge, or an edge only an approval decision takes


def _allowed(current: str, actor: str) -> list[str]:
    """What an invalid_transition offers this actor: its own edges from here (never an approval's)."""
    mine = WORK | (REOPEN if actor == "admin" else set())
    return [to for to in STATUSES if (current, to) in mine]


def test_the_table_in_the_code_is_the_contracts():
    from intake.tasks.workflow import STATUSES as CODE_STATUSES
    from intake.tasks.workflow import TRANSITIONS, Rule

    assert list(CODE_STATUSES) == STATUSES
    assert {p for p, r in TRANSITIONS.items() if r is Rule.WORK} == WORK
    assert {p for p, r in TRANSITIONS.items() if r is Rule.BY_APPROVAL} == BY_APPROVAL
    assert {p for p, r in TRANSITIONS.items() if r is Rule.ADMIN_ONLY} == REOPEN


@pytest.fixture
def task_in(api, admin_h, auth, sql):
    """Factory: a task of a fresh request, forced into a status, assigned to tech-1."""
    client = make_client(api, admin_h)
    user = auth("client_user", "u", client["id"])

    def _make(status: str) -> dict:
        task_id = create_request(api, user, purchase_body())["task_ids"][0]
        sql(
            "UPDATE intake.tasks SET status = :s, assignee = 'tech-1', assigned_by = 'admin-1' WHERE id = :i",
            s=status,
            i=task_id,
        )
        return {"id": task_id, "client_id": client["id"]}

    return _make


@pytest.mark.parametrize("actor", ["assignee", "admin"])
@pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_transition_matrix(api, admin_h, tech_h, task_in, sql, current, target, actor):
    task = task_in(current)
    before = get_task(api, admin_h, task["id"])
    state = client_state(sql, task["client_id"])
    headers = admin_h if actor == "admin" else tech_h
    response = move(api, headers, task["id"], target)
    expected = _expected((current, target), actor)
    assert response.status_code == expected, response.text
    changes = events(sql, task["client_id"], "task.status_changed")
    after = get_task(api, admin_h, task["id"])
    if expected == 200:
        assert response.json()["status"] == target
        assert after["status"] == target
        assert after["updated_at"] > before["updated_at"]
        assert changes == [
            ("task.status_changed", {"task_id": task["id"], "from": current, "to": target, "assignee": "tech-1"})
        ]
    else:
        body = response.json()
        if expected == 409:
            assert body == {
                "error": "invalid_transition",
                "detail": f"cannot move a task from {current} to {target}",
                "current_status": current,
                "allowed": _allowed(current, actor),
            }
        else:
            assert body == {"error": "forbidden", "detail": "reopening a closed task is admin-only"}
        # Nothing changed: no row (task, request, note, approval) and no outbox event.
        assert client_state(sql, task["client_id"]) == state
        assert after == before
        assert changes == []


@pytest.mark.parametrize("current", STATUSES)
def test_non_assignee_gets_403_before_the_table(api, tech2_h, task_in, current, sql):
    task = task_in(current)
    state = client_state(sql, task["client_id"])
    for to in STATUSES:  # valid and invalid edges alike: 403, never 409
        response = move(api, tech2_h, task["id"], to)
        assert response.status_code == 403, (to, response.text)
        assert response.json() == {"error": "forbidden", "detail": "only the assignee or an admin may move this task"}
    assert client_state(sql, task["client_id"]) == state


@pytest.mark.parametrize("role", ["client_user", "client_admin"])
def test_client_roles_cannot_transition(api, auth, task_in, role, sql):
    task = task_in("ready")
    state = client_state(sql, task["client_id"])
    response = move(api, auth(role, "tech-1", task["client_id"]), task["id"], "in_progress")
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden", "detail": "role not allowed"}
    assert client_state(sql, task["client_id"]) == state


def test_unknown_target_status_is_422(api, tech_h, task_in, sql):
    task = task_in("ready")
    state = client_state(sql, task["client_id"])
    response = move(api, tech_h, task["id"], "finished")
    assert response.status_code == 422
    assert (response.json()["error"], response.json()["field"]) == ("validation_error", "to")
    assert client_state(sql, task["client_id"]) == state


def test_starting_an_unassigned_task_is_refused(api, admin_h, task_in, sql):
    task = task_in("ready")
    sql("UPDATE intake.tasks SET assignee = NULL WHERE id = :i", i=task["id"])
    state = client_state(sql, task["client_id"])
    response = move(api, admin_h, task["id"], "in_progress", note="Starting now")
    assert response.status_code == 409
    assert response.json() == {
        "error": "conflict",
        "detail": "assign the task before starting it",
        "current_status": "ready",
    }
    assert client_state(sql, task["client_id"]) == state


def test_a_note_becomes_an_internal_note_hidden_from_the_client(api, admin_h, auth, tech_h, task_in):
    task = task_in("ready")
    assert move(api, tech_h, task["id"], "in_progress", note="Called the supplier").status_code == 200
    notes = get_task(api, admin_h, task["id"])["internal_notes"]
    assert [(n["kind"], n["author"], n["body"]) for n in notes] == [
        ("transition", "tech-1", "in_progress: Called the supplier")
    ]
    client_view = get_task(api, auth("client_admin", "c", task["client_id"]), task["id"])
    assert "internal_notes" not in client_view
    assert "Called the supplier" not in str(client_view)


def test_request_status_follows_its_task(api, admin_h, auth, tech_h, task_in):
    task = task_in("in_progress")
    request_id = get_task(api, admin_h, task["id"])["request_id"]
    user = auth("client_user", "u", task["client_id"])

    def status() -> str:
        return api.get(f"/v1/requests/{request_id}", headers=user).json()["status"]

    assert status() == "open"
    assert move(api, tech_h, task["id"], "done").status_code == 200
    assert status() == "done"
    assert move(api, admin_h, task["id"], "ready").status_code == 200
    assert status() == "open"
    assert move(api, admin_h, task["id"], "cancelled").status_code == 200
    assert status() == "cancelled"


def test_reopen_for_an_inactive_client_is_refused(api, admin_h, task_in, sql):
    task = task_in("ready")
    assert (
        api.patch(f"/v1/clients/{task['client_id']}", json={"status": "inactive"}, headers=admin_h).status_code == 200
    )
    assert get_task(api, admin_h, task["id"])["status"] == "cancelled"
    state = client_state(sql, task["client_id"])
    response = move(api, admin_h, task["id"], "ready", note="Reopening")
    assert response.status_code == 409
    assert response.json() == {
        "error": "conflict",
        "detail": "the client is not active",
        "field": "client_id",
        "current_status": "cancelled",
    }
    assert client_state(sql, task["client_id"]) == state


def test_neither_the_assignee_nor_an_admin_can_answer_for_the_client(api, admin_h, auth, tech_h, sql):
    """A waiting task leaves `awaiting_approval` by its approval alone: the people working it get a 409."""
    client = make_client(api, admin_h)
    task_id = create_request(api, auth("client_user", "u", client["id"]), isp_body())["task_ids"][0]
    assert assign(api, admin_h, task_id, "tech-1").status_code == 200
    state = client_state(sql, client["id"])
    for headers in (tech_h, admin_h):
        for to in ("ready", "rejected"):
            response = move(api, headers, task_id, to)
            assert response.status_code == 409
            assert response.json() == {
                "error": "invalid_transition",
                "detail": f"cannot move a task from awaiting_approval to {to}",
                "current_status": "awaiting_approval",
                "allowed": ["cancelled"],  # the approval's own edges are not offered to the people working it
            }
    assert client_state(sql, client["id"]) == state
    assert [a["status"] for a in get_task(api, admin_h, task_id)["approvals"]] == ["pending"]


def test_system_task_walks_from_new(api, admin_h, tech_h, vs_h):
    client = make_client(api, admin_h)
    task = system_task(api, vs_h, client["id"])
    assert task["status"] == "new" and task["request_id"] is None
    assert assign(api, admin_h, task["id"], "tech-1").status_code == 200
    for to in ("ready", "in_progress", "on_hold", "in_progress", "done"):
        response = move(api, tech_h, task["id"], to)
        assert response.status_code == 200, response.text
