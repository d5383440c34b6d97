"""Deactivating a technician, or taking clients from them, unassigns their open tasks that fall outside."""

from __future__ import annotations

import threading
import time

import pytest
from intake_factories import (
    assign,
    client_state,
    create_request,
    events,
    get_task,
    isp_body,
    make_client,
    make_staff,
    move,
    purchase_body,
    staff_events,
    walk,
)

LISTS = ("/v1/tasks", "/v1/requests", "/v1/approvals", "/v1/clients")


def _notes(task):
    return [(n["kind"], n["author"], n["body"]) for n in task["internal_notes"]]


@pytest.fixture
def working(api, admin_h, auth):
    """A technician (every client) with tasks of two clients in every open status, and two closed ones."""
    a = make_client(api, admin_h, name="A")
    b = make_client(api, admin_h, name="B")
    sub = make_staff(api, admin_h)["sub"]
    tech = auth("technician", sub, staff=False)
    a_user = auth("client_user", "ann", a["id"])
    b_user = auth("client_user", "bob", b["id"])

    def _task(user, body=None):
        task_id = create_request(api, user, body or purchase_body())["task_ids"][0]
        assert assign(api, admin_h, task_id, sub).status_code == 200
        return task_id

    tasks = {
        "ready": _task(a_user),
        "awaiting": _task(a_user, isp_body()),
        "in_progress": _task(a_user),
        "on_hold": _task(b_user),
        "b_in_progress": _task(b_user),
        "done": _task(a_user),
        "cancelled": _task(b_user),
    }
    for key in ("in_progress", "on_hold", "b_in_progress", "done"):
        assert move(api, tech, tasks[key], "in_progress").status_code == 200
    assert move(api, tech, tasks["on_hold"], "on_hold").status_code == 200
    assert move(api, tech, tasks["done"], "done").status_code == 200
    assert move(api, tech, tasks["cancelled"], "cancelled").status_code == 200
    return {"a": a, "b": b, "sub": sub, "tech": tech, "tasks": tasks}


def test_deactivating_unassigns_every_open_task(api, admin_h, sql, working):
    sub, tasks, a, b = working["sub"], working["tasks"], working["a"], working["b"]
    before = {key: get_task(api, admin_h, task_id) for key, task_id in tasks.items()}
    assert {t["status"] for t in before.values()} == {
        "ready",
        "awaiting_approval",
        "in_progress",
        "on_hold",
        "done",
        "cancelled",
    }
    assert {t["assignee"] for t in before.values()} == {sub}
    events_before = {c: events(sql, c) for c in (a["id"], b["id"])}
    response = api.patch(f"/v1/staff/{sub}", json={"active": False}, headers=admin_h)
    assert response.status_code == 200
    assert response.json()["active"] is False
    after = {key: get_task(api, admin_h, task_id) for key, task_id in tasks.items()}
    note = ("staff", "intake", f"Unassigned from {sub}, who was deactivated; assign another technician.")
    expected_status = {"in_progress": "on_hold", "b_in_progress": "on_hold"}
    for key in ("ready", "awaiting", "in_progress", "on_hold", "b_in_progress"):
        assert after[key]["assignee"] is None, key
        assert after[key]["status"] == expected_status.get(key, before[key]["status"]), key
        assert _notes(after[key]) == [*_notes(before[key]), note], key
    for key in ("done", "cancelled"):
        assert after[key] == before[key], key  # closed work keeps its history

    # Events, per client in write order: a task in progress is put on hold, then unassigned.
    def _assigned(key, status):
        change = {"assignee": None, "previous_assignee": sub, "assigned_by": "admin-1", "status": status}
        return ("task.assigned", {"task_id": tasks[key], **change})

    def _held(key):
        return ("task.status_changed", {"task_id": tasks[key], "from": "in_progress", "to": "on_hold", "assignee": sub})

    def _expected(keys, held):
        order = sorted(keys, key=lambda k: before[k]["created_at"])
        return [e for k in order for e in ([_held(k)] if k == held else []) + [_assigned(k, after[k]["status"])]]

    assert events(sql, a["id"])[len(events_before[a["id"]]) :] == _expected(
        ("ready", "awaiting", "in_progress"), "in_progress"
    )
    assert events(sql, b["id"])[len(events_before[b["id"]]) :] == _expected(
        ("on_hold", "b_in_progress"), "b_in_progress"
    )
    assert [e["data"]["active"] for e in staff_events(sql, sub)] == [True, False]


def test_a_deactivated_technician_reads_nothing_and_cannot_be_assigned(api, admin_h, sql, working):
    sub, tech, tasks, a = working["sub"], working["tech"], working["tasks"], working["a"]
    # While active they see their work (so the 404s below are the deactivation, not the fixture).
    assert get_task(api, tech, tasks["done"])["assignee"] == sub
    assert set(tasks.values()) <= {t["id"] for t in walk(api, tech, "/v1/tasks")}
    assert api.patch(f"/v1/staff/{sub}", json={"active": False}, headers=admin_h).status_code == 200
    missing = {"error": "not_found", "detail": "task not found"}
    for task_id in tasks.values():
        response = api.get(f"/v1/tasks/{task_id}", headers=tech)
        assert (response.status_code, response.json()) == (404, missing)
        assert api.get(f"/v1/tasks/{task_id}", headers=admin_h).status_code == 200
    for path in LISTS:
        assert walk(api, tech, path) == [], path
        assert walk(api, admin_h, path), path
    client = api.get(f"/v1/clients/{a['id']}", headers=tech)
    assert (client.status_code, client.json()) == (404, {"error": "not_found", "detail": "client not found"})
    before = client_state(sql, a["id"])
    response = assign(api, admin_h, tasks["ready"], sub)
    assert response.status_code == 422
    body = response.json()
    assert (body["error"], body["field"], body["detail"]) == (
        "validation_error",
        "assignee",
        "assignee is not an active staff member; add them at /v1/staff first",
    )
    assert client_state(sql, a["id"]) == before
    # Reactivated, they see their closed work again and may be assigned; nothing is reassigned by itself.
    assert api.patch(f"/v1/staff/{sub}", json={"active": True}, headers=admin_h).status_code == 200
    assert get_task(api, tech, tasks["ready"])["assignee"] is None
    assert assign(api, admin_h, tasks["ready"], sub).status_code == 200


def test_taking_a_client_away_unassigns_only_that_clients_open_tasks(api, admin_h, sql, working):
    sub, tech, tasks, a, b = working["sub"], working["tech"], working["tasks"], working["a"], working["b"]
    before = {key: get_task(api, admin_h, task_id) for key, task_id in tasks.items()}
    a_events = events(sql, a["id"])
    response = api.patch(f"/v1/staff/{sub}", json={"client_ids": [a["id"]]}, headers=admin_h)
    assert response.status_code == 200
    after = {key: get_task(api, admin_h, task_id) for key, task_id in tasks.items()}
    note = (
        "staff",
        "intake",
        f"Unassigned from {sub}, who no longer works for this client; assign another technician.",
    )
    for key in ("on_hold", "b_in_progress"):
        assert (after[key]["assignee"], after[key]["status"]) == (None, "on_hold"), key
        assert _notes(after[key]) == [*_notes(before[key]), note]
    for key in ("ready", "awaiting", "in_progress", "done", "cancelled"):
        assert after[key] == before[key], key
    assert events(sql, a["id"]) == a_events
    # They keep working on A's tasks, and B's open ones are gone from their sight.
    assert move(api, tech, tasks["in_progress"], "done").status_code == 200
    for key in ("on_hold", "b_in_progress"):
        assert api.get(f"/v1/tasks/{tasks[key]}", headers=tech).status_code == 404
    # B's task they closed is still theirs to read (a task assigned to them), nothing else of B's.
    assert get_task(api, tech, tasks["cancelled"])["client_id"] == b["id"]
    # Another narrowing that loses nothing unassigns nothing.
    unchanged = events(sql, b["id"])
    assert api.patch(f"/v1/staff/{sub}", json={"client_ids": [a["id"], b["id"]]}, headers=admin_h).status_code == 200
    assert api.patch(f"/v1/staff/{sub}", json={"client_ids": [a["id"]]}, headers=admin_h).status_code == 200
    assert events(sql, b["id"]) == unchanged


def test_assigning_outside_the_assignees_clients_is_422(api, admin_h, auth, sql):
    a = make_client(api, admin_h, name="A")
    b = make_client(api, admin_h, name="B")
    sub = make_staff(api, admin_h, client_ids=[a["id"]])["sub"]
    b_task = create_request(api, auth("client_user", "bob", b["id"]), purchase_body())["task_ids"][0]
    before = client_state(sql, b["id"])
    response = assign(api, admin_h, b_task, sub)
    assert response.status_code == 422
    body = response.json()
    assert (body["field"], body["detail"]) == (
        "assignee",
        "assignee does not work for this task's client (see their client_ids)",
    )
    assert client_state(sql, b["id"]) == before
    # A technician without a staff row cannot be assigned either.
    response = assign(api, admin_h, b_task, "never-added")
    assert (response.status_code, response.json()["field"]) == (422, "assignee")
    assert client_state(sql, b["id"]) == before
    a_task = create_request(api, auth("client_user", "ann", a["id"]), purchase_body())["task_ids"][0]
    assert assign(api, admin_h, a_task, sub).status_code == 200


# ---- a narrowing racing an assignment ----------------------------------------------------------------


def _pid(session):
    return session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()


def _until_blocking_or(done, pid, admin_engine):
    """Return once `done` is set or another backend waits on a lock `pid` holds (a lock cannot be awaited)."""
    from sqlalchemy import text

    deadline = time.monotonic() + 30
    while not done.is_set():
        with admin_engine.connect() as c:
            query = "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid)))"
            if c.execute(text(query), {"pid": pid}).scalar():
                return
        assert time.monotonic() < deadline, "neither finished nor blocked"
        time.sleep(0.01)


@pytest.mark.parametrize("first", ["narrowing", "assignment"])
def test_a_narrowing_racing_an_assignment_never_leaves_a_task_outside(
    live_api, admin_h, auth, admin_engine, monkeypatch, first
):
    """Whichever locks the staff row first, a task never ends assigned to someone who may not see its client."""
    from intake.staff import service as staff_service
    from intake.tasks import service as task_service

    a = make_client(live_api, admin_h, name="A")
    b = make_client(live_api, admin_h, name="B")
    sub = make_staff(live_api, admin_h)["sub"]
    b_task = create_request(live_api, auth("client_user", "bob", b["id"]), purchase_body())["task_ids"][0]
    checked, scanned, assigned, narrowed = (threading.Event() for _ in range(4))
    check, scan = task_service.ensure_assignable, staff_service._unassign_outside

    def _check(session, **kwargs):
        if first == "narrowing":
            scanned.wait(30)
        try:
            return check(session, **kwargs)
        finally:
            checked.set()
            if first == "assignment":
                _until_blocking_or(narrowed, _pid(session), admin_engine)

    def _scan(session, **kwargs):
        scan(session, **kwargs)
        scanned.set()
        if first == "narrowing":
            _until_blocking_or(assigned, _pid(session), admin_engine)

    monkeypatch.setattr(task_service, "ensure_assignable", _check)
    monkeypatch.setattr(staff_service, "_unassign_outside", _scan)
    results = {}

    def _assign():
        results["assign"] = assign(live_api, admin_h, b_task, sub)
        assigned.set()

    def _narrow():
        results["narrow"] = live_api.patch(f"/v1/staff/{sub}", json={"client_ids": [a["id"]]}, headers=admin_h)
        narrowed.set()

    threads = [threading.Thread(target=_narrow), threading.Thread(target=_assign)]
    if first == "assignment":
        threads.reverse()
    threads[0].start()
    (scanned if first == "narrowing" else checked).wait(30)
    threads[1].start()
    for thread in threads:
        thread.join(60)
    monkeypatch.undo()
    assert results["narrow"].status_code == 200, results["narrow"].text
    task = get_task(live_api, admin_h, b_task)
    assert task["assignee"] is None
    if first == "narrowing":
        assert (results["assign"].status_code, results["assign"].json()["field"]) == (422, "assignee")
        assert task["internal_notes"] == []
    else:
        assert results["assign"].status_code == 200, results["assign"].text
        assert [n["kind"] for n in task["internal_notes"]] == ["staff"]
