"""The consumer of intake's task events (`vendor_sync.events.task_ready`) against the real PostgreSQL.

A task that becomes `ready` gets one run, whatever order its events arrive in and however often; every
other event adds nothing. Each test uses fresh ids, and commits (the inbox is the real one).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from vendor_sync.provisioning import runs
from vendor_sync.provisioning.trigger import task_ready

sys.path.insert(0, str(Path(__file__).parent))
pytest_plugins = ["fixtures_registry"]


@pytest.fixture
def ids() -> dict[str, uuid.UUID]:
    return {"task": uuid.uuid4(), "client": uuid.uuid4(), "request": uuid.uuid4()}


def created(ids: dict[str, uuid.UUID], status: str, **data: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "task.created",
        "occurred_at": "2026-01-01T00:00:00Z",
        "client_id": str(ids["client"]),
        "aggregate_id": str(ids["task"]),
        "data": {"task_id": str(ids["task"]), "request_id": str(ids["request"]), "status": status, **data},
    }


def changed(ids: dict[str, uuid.UUID], to: str, frm: str = "awaiting_approval") -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "task.status_changed",
        "occurred_at": "2026-01-01T00:00:00Z",
        "client_id": str(ids["client"]),
        "aggregate_id": str(ids["task"]),
        "data": {"task_id": str(ids["task"]), "from": frm, "to": to, "assignee": None},
    }


def rows(engine: Engine, task_id: uuid.UUID) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT id, status, request_id, client_id, trigger, ready_at FROM vendor_sync.provisioning_runs"
                " WHERE task_id = :t ORDER BY created_at"
            ),
            {"t": task_id},
        ).mappings()
        return [dict(r) for r in found]


@pytest.fixture
def consume(vs_engine: Engine) -> Callable[[dict[str, Any]], list[uuid.UUID]]:
    return lambda envelope: task_ready(envelope, engine=vs_engine)


def test_a_task_created_ready_gets_one_queued_run(consume, vs_engine, ids):
    [run_id] = consume(created(ids, "ready"))
    assert [(r["id"], r["status"], r["request_id"], r["client_id"]) for r in rows(vs_engine, ids["task"])] == [
        (run_id, "queued", ids["request"], ids["client"])
    ]


def test_a_task_waiting_for_approval_is_remembered_then_queued_when_ready(consume, vs_engine, ids):
    assert consume(created(ids, "awaiting_approval")) == []
    assert [(r["status"], r["request_id"]) for r in rows(vs_engine, ids["task"])] == [("waiting", ids["request"])]
    [run_id] = consume(changed(ids, "ready"))
    assert [(r["id"], r["status"], r["trigger"]) for r in rows(vs_engine, ids["task"])] == [
        (run_id, "queued", "task.status_changed")
    ]


def test_events_applied_out_of_order_meet_in_one_row_and_queue_one_run(consume, vs_engine, ids):
    # Two workers: the change to ready is applied before the creation that carries the request id.
    assert consume(changed(ids, "ready")) == []
    [waiting] = rows(vs_engine, ids["task"])
    assert (waiting["status"], waiting["request_id"]) == ("waiting", None) and waiting["ready_at"] is not None
    [run_id] = consume(created(ids, "awaiting_approval"))
    assert [(r["id"], r["status"], r["request_id"]) for r in rows(vs_engine, ids["task"])] == [
        (run_id, "queued", ids["request"])
    ]


def test_a_duplicate_event_adds_nothing(consume, vs_engine, ids):
    event = created(ids, "ready")
    [run_id] = consume(event)
    assert consume(event) == []
    assert [r["id"] for r in rows(vs_engine, ids["task"])] == [run_id]


def test_a_duplicate_hands_out_again_a_run_whose_publish_failed(consume, vs_engine, ids):
    event = created(ids, "ready")
    [run_id] = consume(event)
    with vs_engine.begin() as conn:
        conn.execute(text("UPDATE vendor_sync.provisioning_runs SET enqueued_at = NULL WHERE id = :i"), {"i": run_id})
    assert consume(event) == [run_id]
    # Marked sent again: a third delivery hands out nothing.
    assert consume(event) == []


def test_ready_again_while_a_run_is_in_flight_adds_no_second_run(consume, vs_engine, ids):
    [run_id] = consume(created(ids, "ready"))
    assert consume(changed(ids, "ready", frm="on_hold")) == []
    assert [r["id"] for r in rows(vs_engine, ids["task"])] == [run_id]


def test_ready_again_after_a_finished_run_queues_a_new_one_for_the_same_request(consume, vs_engine, ids):
    [first] = consume(created(ids, "ready"))
    with vs_engine.begin() as conn:
        conn.execute(text("UPDATE vendor_sync.provisioning_runs SET status = 'failed' WHERE id = :i"), {"i": first})
    [second] = consume(changed(ids, "ready", frm="on_hold"))
    assert second != first
    assert [(r["status"], r["request_id"]) for r in rows(vs_engine, ids["task"])] == [
        ("failed", ids["request"]),
        ("queued", ids["request"]),
    ]


@pytest.mark.parametrize(
    "event",
    [
        lambda ids: changed(ids, "in_progress", frm="ready"),
        lambda ids: changed(ids, "rejected"),
        lambda ids: changed(ids, "cancelled"),
        # A system task (no request) is never provisioned.
        lambda ids: {
            **created(ids, "ready"),
            "data": {"task_id": str(ids["task"]), "request_id": None, "status": "ready"},
        },
        # A type that is not provisioned, when the event names it.
        lambda ids: created(ids, "ready", type="purchase"),
    ],
)
def test_other_events_add_nothing(consume, vs_engine, ids, event):
    assert consume(event(ids)) == []
    assert rows(vs_engine, ids["task"]) == []


@pytest.mark.parametrize(
    "envelope",
    [
        None,
        "task.created",
        {"type": "task.assigned", "event_id": str(uuid.uuid4()), "data": {}},
        {"type": "task.created", "event_id": "not-a-uuid", "data": {}},
        {"type": "task.created", "event_id": str(uuid.uuid4()), "data": "ready"},
        {"type": "task.created", "event_id": str(uuid.uuid4()), "data": {"status": "ready"}, "client_id": "x"},
    ],
)
def test_a_malformed_envelope_is_dropped(consume, envelope):
    assert consume(envelope) == []


def test_the_sweep_hands_out_due_runs_without_a_message(vs_engine, ids, consume):
    from vendor_sync.settings import get_settings

    [run_id] = consume(created(ids, "ready"))
    with vs_engine.begin() as conn:
        conn.execute(text("UPDATE vendor_sync.provisioning_runs SET enqueued_at = NULL WHERE id = :i"), {"i": run_id})
    assert run_id in runs.stale(vs_engine, get_settings())
    # Marked sent: the next sweep leaves it alone until it is stale again.
    assert run_id not in runs.stale(vs_engine, get_settings())
