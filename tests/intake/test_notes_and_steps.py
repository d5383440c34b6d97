"""Internal notes and human steps: who may write and decide them, what clients see, and the worker's step reports."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from intake_factories import assign, client_state, create_request, get_task, make_client, move, outbox, purchase_body

Headers = dict[str, str]
TASK_NOT_FOUND = {"error": "not_found", "detail": "task not found"}
ROLE_NOT_ALLOWED = {"error": "forbidden", "detail": "role not allowed"}


def note(api, headers: Headers, task_id: str, body: Any) -> Any:
    """POST /v1/tasks/{id}/notes with `{body}` (a non-dict `body` is sent as the whole JSON body)."""
    payload = body if isinstance(body, dict) else {"body": body}
    return api.post(f"/v1/tasks/{task_id}/notes", json=payload, headers=headers)


def decide(api, headers: Headers, task_id: str, step_id: str, **body: Any) -> Any:
    """POST /v1/tasks/{id}/steps/{step_id}."""
    return api.post(f"/v1/tasks/{task_id}/steps/{step_id}", json=body, headers=headers)


def report(api, vs_h: Headers, task_id: str, **overrides: Any) -> Any:
    """POST /internal/tasks/{id}/steps: a pending human step unless overridden."""
    body = {
        "name": "Order the line from the ISP",
        "status": "pending",
        "human": True,
        "detail": "Call the ISP's business desk",
        "idempotency_key": "order-line",
        **overrides,
    }
    return api.post(f"/internal/tasks/{task_id}/steps", json=body, headers=vs_h)


def step_row(sql, step_id: str) -> dict[str, Any]:
    """The step's row as intake stores it."""
    [row] = sql("SELECT * FROM intake.task_steps WHERE id = :i", i=step_id)
    return dict(row._mapping)


@pytest.fixture
def world(api, admin_h, auth, tech_h, vs_h) -> dict[str, Any]:
    """A client with a ready task taken by tech-1, carrying one pending human step."""
    client = make_client(api, admin_h)
    user = auth("client_user", "u", client["id"])
    task_id = create_request(api, user, purchase_body())["task_ids"][0]
    assert assign(api, tech_h, task_id, "tech-1").status_code == 200
    step = report(api, vs_h, task_id)
    assert step.status_code == 201, step.text
    return {"client": client["id"], "task": task_id, "step": step.json()["id"], "user": user}


# ---- notes ---------------------------------------------------------------------------------------


def test_the_assignee_writes_a_note_that_staff_see(api, admin_h, tech_h, world, sql):
    events_before = outbox(sql, world["client"])
    response = note(api, tech_h, world["task"], "  Called the ISP; the line is ordered.\n")
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"id", "kind", "author", "body", "created_at"}
    assert (created["kind"], created["author"], created["body"]) == (
        "note",
        "tech-1",
        "Called the ISP; the line is ordered.",
    )
    assert created["created_at"].endswith("Z")
    for headers in (admin_h, tech_h):
        assert created in get_task(api, headers, world["task"])["internal_notes"]
    assert sql("SELECT kind, author, body FROM intake.task_notes WHERE id = :i", i=created["id"]) == [
        ("note", "tech-1", "Called the ISP; the line is ordered.")
    ]
    assert outbox(sql, world["client"]) == events_before  # a note is no event


def test_an_admin_writes_a_note_on_a_task_nobody_holds(api, admin_h, auth, world):
    task_id = create_request(api, world["user"], purchase_body())["task_ids"][0]
    response = note(api, admin_h, task_id, "Waiting for the supplier's quote.")
    assert response.status_code == 201, response.text
    assert (response.json()["author"], response.json()["body"]) == ("admin-1", "Waiting for the supplier's quote.")


@pytest.mark.parametrize("closing", ["cancelled", "done"])
def test_a_closed_task_still_takes_notes(api, admin_h, tech_h, world, closing):
    """Post-mortems are written after the work: a note changes no status and no access."""
    if closing == "done":
        assert move(api, tech_h, world["task"], "in_progress").status_code == 200
    assert move(api, tech_h, world["task"], closing).status_code == 200
    for headers, author in ((tech_h, "tech-1"), (admin_h, "admin-1")):
        response = note(api, headers, world["task"], f"Post-mortem by {author}.")
        assert response.status_code == 201, response.text
    task = get_task(api, admin_h, world["task"])
    assert task["status"] == closing
    assert [n["body"] for n in task["internal_notes"] if n["kind"] == "note"] == [
        "Post-mortem by tech-1.",
        "Post-mortem by admin-1.",
    ]


def test_a_body_of_exactly_10000_characters_is_kept_and_the_limit_counts_what_was_sent(api, tech_h, world):
    assert note(api, tech_h, world["task"], "a" * 10_000).status_code == 201
    response = note(api, tech_h, world["task"], " " + "b" * 9_999)
    assert (response.status_code, response.json()["body"]) == (201, "b" * 9_999)


@pytest.mark.parametrize("role", ["client_user", "client_admin"])
def test_client_roles_never_see_internal_notes(api, auth, tech_h, world, role):
    secret_words = "Client is late paying; hold the order " + uuid.uuid4().hex
    assert note(api, tech_h, world["task"], secret_words).status_code == 201
    headers = auth(role, "u", world["client"])
    one = api.get(f"/v1/tasks/{world['task']}", headers=headers)
    listed = api.get("/v1/tasks", params={"client_id": world["client"], "limit": 200}, headers=headers)
    assert (one.status_code, listed.status_code) == (200, 200)
    assert "internal_notes" not in one.json()
    assert world["task"] in [t["id"] for t in listed.json()["items"]]
    assert all("internal_notes" not in t for t in listed.json()["items"])
    for response in (one, listed):
        assert secret_words.encode() not in response.content


def test_another_technician_may_not_write_a_note(api, tech2_h, world, sql):
    state = client_state(sql, world["client"])
    response = note(api, tech2_h, world["task"], "Not my task.")
    assert response.status_code == 403
    assert response.json() == {
        "error": "forbidden",
        "detail": "only the assignee or an admin may add a note to this task",
    }
    assert client_state(sql, world["client"]) == state


def test_a_technician_may_not_write_on_an_unassigned_task(api, tech_h, world, sql):
    task_id = create_request(api, world["user"], purchase_body())["task_ids"][0]
    state = client_state(sql, world["client"])
    response = note(api, tech_h, task_id, "Drive-by note.")
    assert response.status_code == 403
    assert response.json()["detail"] == "only the assignee or an admin may add a note to this task"
    assert client_state(sql, world["client"]) == state


@pytest.mark.parametrize("role", ["client_user", "client_admin"])
def test_client_roles_get_the_missing_tasks_404_even_on_their_own_task(api, auth, world, sql, role):
    headers = auth(role, "u", world["client"])
    state = client_state(sql, world["client"])
    own = note(api, headers, world["task"], "Please hurry.")
    missing = note(api, headers, str(uuid.uuid4()), "Please hurry.")
    assert (own.status_code, own.json()) == (404, TASK_NOT_FOUND)
    assert own.content == missing.content
    assert client_state(sql, world["client"]) == state


def test_a_service_may_not_write_a_note(api, vs_h, broker_h, world, sql):
    state = client_state(sql, world["client"])
    for headers in (vs_h, broker_h):
        response = note(api, headers, world["task"], "From a worker.")
        assert (response.status_code, response.json()) == (403, ROLE_NOT_ALLOWED)
    assert client_state(sql, world["client"]) == state


def test_a_note_on_a_missing_task_is_404(api, admin_h):
    response = note(api, admin_h, str(uuid.uuid4()), "Lost.")
    assert (response.status_code, response.json()) == (404, TASK_NOT_FOUND)


@pytest.mark.parametrize(
    ("payload", "field", "detail"),
    [
        ({"body": ""}, "body", "body: String should have at least 1 character"),
        ({"body": " \n\t "}, "body", "body: must not be blank"),
        ({"body": "\u2003\u00a0"}, "body", "body: must not be blank"),  # Unicode spaces are blank too
        ({"body": "a" * 10_001}, "body", "body: String should have at most 10000 characters"),
        ({"body": "a\x00b"}, "body", "body: must not contain a NUL character"),
        ({"body": 42}, "body", "body: Input should be a valid string"),
        ({}, "body", "body: is required"),
        ({"body": "ok", "kind": "transition"}, "kind", "kind: unknown field"),
        ({"body": "ok", "author": "mallory"}, "author", "author: unknown field"),
    ],
    ids=["empty", "blank", "unicode-blank", "too-long", "nul", "number", "missing", "kind", "author"],
)
def test_bad_note_bodies_are_422_naming_the_field(api, tech_h, world, sql, payload, field, detail):
    state = client_state(sql, world["client"])
    response = note(api, tech_h, world["task"], payload)
    assert response.status_code == 422, response.text
    assert (response.json()["error"], response.json()["field"], response.json()["detail"]) == (
        "validation_error",
        field,
        detail,
    )
    assert client_state(sql, world["client"]) == state


# ---- deciding human steps ------------------------------------------------------------------------


def test_the_assignee_decides_a_pending_human_step(api, tech_h, world, sql):
    events_before = outbox(sql, world["client"])
    reported = step_row(sql, world["step"])
    response = decide(api, tech_h, world["task"], world["step"], status="succeeded", detail="Line ordered, ref FF-42")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": world["step"],
        "name": "Order the line from the ISP",
        "status": "succeeded",
        "human": True,
        "detail": "Line ordered, ref FF-42",
        "created_at": response.json()["created_at"],
    }
    row = step_row(sql, world["step"])
    assert (row["status"], row["decided_by"], row["detail"]) == ("succeeded", "tech-1", "Line ordered, ref FF-42")
    assert row["updated_at"] >= reported["updated_at"]
    assert (row["reported_by"], row["created_at"]) == ("svc:vendor_sync", reported["created_at"])
    # The client follows the checklist in the task's steps.
    [seen] = get_task(api, world["user"], world["task"])["steps"]
    assert (seen["id"], seen["status"], seen["human"]) == (world["step"], "succeeded", True)
    # `provisioning.step_reported` is the worker's report; a person's decision writes no event.
    assert outbox(sql, world["client"]) == events_before


def test_an_admin_decides_failed_and_the_reported_detail_stays_without_a_new_one(api, admin_h, world, sql):
    response = decide(api, admin_h, world["task"], world["step"], status="failed")
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["detail"]) == ("failed", "Call the ISP's business desk")
    assert (step_row(sql, world["step"])["decided_by"]) == "admin-1"


def test_a_step_that_is_not_human_is_409(api, tech_h, vs_h, world, sql):
    worker = report(
        api, vs_h, world["task"], name="Create MX records", status="pending", human=False, idempotency_key="mx"
    )
    assert worker.status_code == 201
    state = client_state(sql, world["client"])
    response = decide(api, tech_h, world["task"], worker.json()["id"], status="succeeded")
    assert response.status_code == 409
    assert response.json() == {
        "error": "conflict",
        "detail": "this step is reported by its worker; only a human step can be decided by a person",
    }
    assert client_state(sql, world["client"]) == state


@pytest.mark.parametrize("first", ["succeeded", "failed"])
def test_a_decided_step_is_409_and_keeps_its_outcome(api, admin_h, tech_h, world, sql, first):
    assert decide(api, tech_h, world["task"], world["step"], status=first, detail="done once").status_code == 200
    state = client_state(sql, world["client"])
    for headers in (tech_h, admin_h):
        for status in ("succeeded", "failed"):
            response = decide(api, headers, world["task"], world["step"], status=status, detail="again")
            assert response.status_code == 409
            assert response.json() == {"error": "conflict", "detail": f"this step was already decided: it {first}"}
    assert client_state(sql, world["client"]) == state
    assert (step_row(sql, world["step"])["status"], step_row(sql, world["step"])["detail"]) == (first, "done once")


def test_a_human_step_reported_as_already_decided_cannot_be_decided_again(api, tech_h, vs_h, world, sql):
    done = report(api, vs_h, world["task"], status="succeeded", idempotency_key="already")
    state = client_state(sql, world["client"])
    response = decide(api, tech_h, world["task"], done.json()["id"], status="failed")
    assert (response.status_code, response.json()["detail"]) == (409, "this step was already decided: it succeeded")
    assert client_state(sql, world["client"]) == state


def test_a_step_of_another_task_is_404(api, admin_h, tech_h, vs_h, world, sql):
    other_task = create_request(api, world["user"], purchase_body())["task_ids"][0]
    assert assign(api, tech_h, other_task, "tech-1").status_code == 200
    other_step = report(api, vs_h, other_task, idempotency_key="other").json()["id"]
    state = client_state(sql, world["client"])
    for headers in (tech_h, admin_h):
        crossed = decide(api, headers, world["task"], other_step, status="succeeded")
        missing = decide(api, headers, world["task"], str(uuid.uuid4()), status="succeeded")
        assert (crossed.status_code, crossed.json()) == (404, {"error": "not_found", "detail": "step not found"})
        assert crossed.content == missing.content
    assert client_state(sql, world["client"]) == state
    assert step_row(sql, other_step)["status"] == "pending"


@pytest.mark.parametrize("closing", ["cancelled", "done"])
def test_a_closed_tasks_steps_cannot_be_decided(api, admin_h, tech_h, world, sql, closing):
    if closing == "done":
        assert move(api, tech_h, world["task"], "in_progress").status_code == 200
    assert move(api, tech_h, world["task"], closing).status_code == 200
    state = client_state(sql, world["client"])
    for headers in (tech_h, admin_h):
        response = decide(api, headers, world["task"], world["step"], status="succeeded")
        assert response.status_code == 409
        assert response.json() == {
            "error": "conflict",
            "detail": "the steps of a closed task cannot be decided",
            "current_status": closing,
        }
    assert client_state(sql, world["client"]) == state


def test_another_technician_may_not_decide(api, tech2_h, world, sql):
    state = client_state(sql, world["client"])
    response = decide(api, tech2_h, world["task"], world["step"], status="succeeded")
    assert response.status_code == 403
    assert response.json() == {
        "error": "forbidden",
        "detail": "only the assignee or an admin may decide a step of this task",
    }
    assert client_state(sql, world["client"]) == state


@pytest.mark.parametrize("role", ["client_user", "client_admin"])
def test_client_roles_get_the_missing_tasks_404_when_deciding(api, auth, world, sql, role):
    headers = auth(role, "u", world["client"])
    state = client_state(sql, world["client"])
    own = decide(api, headers, world["task"], world["step"], status="succeeded")
    missing = decide(api, headers, str(uuid.uuid4()), str(uuid.uuid4()), status="succeeded")
    assert (own.status_code, own.json()) == (404, TASK_NOT_FOUND)
    assert own.content == missing.content
    assert client_state(sql, world["client"]) == state


def test_a_service_may_not_decide(api, vs_h, world, sql):
    state = client_state(sql, world["client"])
    response = decide(api, vs_h, world["task"], world["step"], status="succeeded")
    assert (response.status_code, response.json()) == (403, ROLE_NOT_ALLOWED)
    assert client_state(sql, world["client"]) == state


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "pending"}, "status"),
        ({"status": "done"}, "status"),
        ({}, "status"),
        ({"status": "succeeded", "detail": ""}, "detail"),
        ({"status": "succeeded", "detail": "x" * 4001}, "detail"),
        ({"status": "succeeded", "human": False}, "human"),
        ({"status": "succeeded", "decided_by": "mallory"}, "decided_by"),
    ],
    ids=["pending", "unknown-status", "missing", "empty-detail", "long-detail", "human", "decided_by"],
)
def test_bad_decisions_are_422_naming_the_field(api, tech_h, world, sql, body, field):
    state = client_state(sql, world["client"])
    response = decide(api, tech_h, world["task"], world["step"], **body)
    assert response.status_code == 422, response.text
    assert (response.json()["error"], response.json()["field"]) == ("validation_error", field)
    assert client_state(sql, world["client"]) == state


# ---- the worker's step reports -------------------------------------------------------------------


def _step_events(sql, client_id: str) -> list[dict[str, Any]]:
    return [data for kind, data in outbox(sql, client_id) if kind == "provisioning.step_reported"]


def test_a_reported_step_emits_one_event_with_ids_and_statuses_only(api, vs_h, world, sql):
    [first] = _step_events(sql, world["client"])  # the world's pending human step
    assert first == {"task_id": world["task"], "step_id": world["step"], "status": "pending", "human": True}
    response = report(
        api,
        vs_h,
        world["task"],
        name="Create MX records",
        status="succeeded",
        human=False,
        detail="mx1.example replaced",
        idempotency_key="mx",
    )
    assert response.status_code == 201, response.text
    step = response.json()
    assert (step["status"], step["human"], step["detail"]) == ("succeeded", False, "mx1.example replaced")
    [(envelope,)] = sql(
        "SELECT envelope FROM intake.outbox"
        " WHERE type = 'provisioning.step_reported' AND envelope->'data'->>'step_id' = :s",
        s=step["id"],
    )
    assert (envelope["client_id"], envelope["aggregate_id"]) == (world["client"], world["task"])
    assert envelope["data"] == {"task_id": world["task"], "step_id": step["id"], "status": "succeeded", "human": False}
    assert step_row(sql, step["id"])["idempotency_key"] == "mx"


def test_a_repeated_key_returns_the_first_step_and_writes_nothing(api, vs_h, world, sql):
    first = get_task(api, world["user"], world["task"])["steps"]
    state = client_state(sql, world["client"])
    # Same key, whatever the body says now: the first report stands (as POST /internal/tasks' dedupe_key).
    for overrides in ({}, {"status": "succeeded", "human": False, "detail": "changed", "name": "Renamed"}):
        again = report(api, vs_h, world["task"], **overrides)
        assert again.status_code == 200, again.text
        assert again.json() == first[0]
    assert client_state(sql, world["client"]) == state
    assert len(_step_events(sql, world["client"])) == 1


def test_keys_are_per_task(api, vs_h, world, sql):
    other_task = create_request(api, world["user"], purchase_body())["task_ids"][0]
    response = report(api, vs_h, other_task)  # the world's key, on another task
    assert response.status_code == 201, response.text
    assert response.json()["id"] != world["step"]
    assert [e["task_id"] for e in _step_events(sql, world["client"])] == [world["task"], other_task]


def test_a_replay_that_loses_the_race_answers_with_the_winners_step(api, vs_h, world, sql, monkeypatch):
    """Two reports with one key at once: the unique index stops the second, which answers with the first."""
    from intake.tasks import steps

    real = steps._by_key
    calls: list[str] = []

    def _not_yet_committed(session, task_id, key):
        # The first look happens before the winner commits (it sees nothing); the re-read after the
        # unique violation sees the winner's row.
        calls.append(key)
        return None if len(calls) == 1 else real(session, task_id, key)

    monkeypatch.setattr(steps, "_by_key", _not_yet_committed)
    state = client_state(sql, world["client"])
    response = report(api, vs_h, world["task"], detail="a different detail")
    assert response.status_code == 200, response.text
    assert (response.json()["id"], response.json()["detail"]) == (world["step"], "Call the ISP's business desk")
    assert calls == ["order-line", "order-line"]
    assert client_state(sql, world["client"]) == state
    assert len(_step_events(sql, world["client"])) == 1


def test_a_late_report_on_a_closed_task_is_recorded(api, tech_h, vs_h, world, sql):
    assert move(api, tech_h, world["task"], "cancelled").status_code == 200
    response = report(api, vs_h, world["task"], status="failed", human=False, idempotency_key="late")
    assert response.status_code == 201, response.text
    assert _step_events(sql, world["client"])[-1]["status"] == "failed"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"idempotency_key": None}, "idempotency_key"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "k" * 201}, "idempotency_key"),
        ({"human": None}, "human"),
        ({"human": "yes"}, "human"),
        ({"human": 1}, "human"),
        ({"status": "running"}, "status"),
        ({"name": ""}, "name"),
        ({"decided_by": "mallory"}, "decided_by"),
    ],
    ids=["no-key", "empty-key", "long-key", "no-human", "human-string", "human-number", "status", "name", "extra"],
)
def test_bad_step_reports_are_422_naming_the_field(api, vs_h, world, sql, change, field):
    body = {"name": "Verify", "status": "pending", "human": True, "idempotency_key": "verify", **change}
    body = {k: v for k, v in body.items() if v is not None}
    state = client_state(sql, world["client"])
    response = api.post(f"/internal/tasks/{world['task']}/steps", json=body, headers=vs_h)
    assert response.status_code == 422, response.text
    assert (response.json()["error"], response.json()["field"]) == ("validation_error", field)
    assert client_state(sql, world["client"]) == state


def test_every_step_view_shows_human(api, admin_h, vs_h, world):
    assert report(api, vs_h, world["task"], human=False, status="succeeded", idempotency_key="auto").status_code == 201
    for headers in (admin_h, world["user"]):
        steps = get_task(api, headers, world["task"])["steps"]
        assert [(s["human"], s["status"]) for s in steps] == [(True, "pending"), (False, "succeeded")]
        assert all(set(s) == {"id", "name", "status", "human", "detail", "created_at"} for s in steps)
