"""The task's steps as vendor_sync keeps them, and their reports to intake (each outcome reported once).

A step's outcome is committed here first (with whatever it changed in the registry, in the same
transaction), then reported to intake with an idempotency key: `{task_id}:{name}` for its first outcome,
`{task_id}:{name}:{n}` for the n-th (a retried step). A delivery that dies between the two reports it
again under the same key, and intake answers with the step it already has.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects.postgresql import insert

from vendor_sync.db import utcnow
from vendor_sync.intake_client import IntakeProvisioning, StepReport
from vendor_sync.provisioning.models import ProvisioningStep
from vendor_sync.provisioning.plans import clip

STEPS = ProvisioningStep.__table__


@dataclass(frozen=True)
class StepState:
    """A step as the table holds it."""

    name: str
    status: str
    human: bool
    outcomes: int
    reported: bool
    run_id: uuid.UUID | None
    summary: str | None
    error: str | None


@dataclass
class StepResult:
    """One go of a step: its outcome, what it did, and the registry writes to commit with it."""

    status: str  # succeeded | failed | pending (a human step)
    vendor: str | None
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    human: bool = False
    # Writes to the registry (e.g. the domain's new MX) made in the transaction that records the outcome.
    apply: Callable[[Connection], None] | None = None


def states(conn: Connection, task_id: uuid.UUID) -> dict[str, StepState]:
    """The task's steps by name."""
    rows = conn.execute(select(STEPS).where(STEPS.c.task_id == task_id)).mappings()
    return {
        row["name"]: StepState(
            name=row["name"],
            status=row["status"],
            human=row["human"],
            outcomes=row["outcomes"],
            reported=row["reported_at"] is not None,
            run_id=row["run_id"],
            summary=row["summary"],
            error=row["error"],
        )
        for row in rows
    }


def record(conn: Connection, *, task_id: uuid.UUID, run_id: uuid.UUID, name: str, result: StepResult) -> StepState:
    """Commit-ready: the step's new outcome (one more, if it had one), and its registry writes."""
    if result.apply is not None:
        result.apply(conn)
    now = utcnow()
    values = {
        "run_id": run_id,
        "human": result.human,
        "status": result.status,
        "vendor": result.vendor,
        "detail": result.detail,
        "summary": clip(result.summary),
        "error": result.error[:1000] if result.error else None,
        "reported_at": None,
        "updated_at": now,
    }
    row = conn.execute(
        insert(STEPS)
        .values(task_id=task_id, name=name, outcomes=1, created_at=now, **values)
        .on_conflict_do_update(
            index_elements=[STEPS.c.task_id, STEPS.c.name], set_={**values, "outcomes": STEPS.c.outcomes + 1}
        )
        .returning(STEPS.c.outcomes)
    ).scalar_one()
    return StepState(name, result.status, result.human, int(row), False, run_id, values["summary"], values["error"])


def idempotency_key(task_id: uuid.UUID, name: str, outcomes: int) -> str:
    """intake's key for a step's n-th outcome."""
    return f"{task_id}:{name}" if outcomes <= 1 else f"{task_id}:{name}:{outcomes}"


def report(intake: IntakeProvisioning, conn: Connection, *, task_id: uuid.UUID, step: StepState) -> None:
    """Report the step's current outcome to intake (raises IntakeUnavailable/IntakeRefused), then mark it reported."""
    text = step.summary if step.status != "failed" or not step.error else f"{step.summary} Error: {step.error}"
    intake.report_step(
        task_id,
        StepReport(
            name=step.name,
            status=step.status,
            human=step.human,
            idempotency_key=idempotency_key(task_id, step.name, step.outcomes),
            detail=clip(text) if text else None,
        ),
    )
    with conn.begin():
        conn.execute(
            update(STEPS)
            .where(STEPS.c.task_id == task_id, STEPS.c.name == step.name, STEPS.c.outcomes == step.outcomes)
            .values(reported_at=utcnow())
        )


def report_plan(intake: IntakeProvisioning, *, task_id: uuid.UUID, planned: Sequence[tuple[str, str]]) -> None:
    """Report the (name, words) steps not begun yet as `pending`, before any outcome is reported.

    intake moves the task to `done` once every worker step it knows has succeeded: it must know them all
    before it hears the first. A step's outcome is later reported under the same name, and replaces the plan's.
    """
    for name, words in planned:
        report = StepReport(
            name=name, status="pending", human=False, idempotency_key=f"{task_id}:{name}:plan", detail=clip(words)
        )
        intake.report_step(task_id, report)
