"""The task workflow: one transition table, consulted by every status change."""

from __future__ import annotations

from enum import StrEnum

from mspkit.errors import Forbidden, InvalidTransition
from mspkit.vocabulary import OPEN_TASK_STATUSES, TASK_STATUSES

STATUSES = TASK_STATUSES


class Actor(StrEnum):
    """Who is moving the task."""

    ASSIGNEE = "assignee"  # the task's assignee (permission is checked by the caller)
    ADMIN = "admin"
    APPROVAL = "approval"  # an approval decision
    SYSTEM = "system"  # intake itself, e.g. cancelling when a client leaves `active`
    # Provisioning at vendors: vendor_sync's claim, the moves its step reports make, and its retry.
    PROVISIONING = "provisioning"
    # A verified PSA callback: it only closes a task or puts it on hold (intake.psa.inbound picks the edge).
    PSA = "psa"


class Rule(StrEnum):
    """Who may take an edge."""

    WORK = "work"  # the assignee, an admin, or intake itself
    BY_APPROVAL = "by_approval"  # only an approval decision
    ADMIN_ONLY = "admin_only"  # reopening a closed task
    # Handing an `on_hold` provisioning task back to provisioning (POST /v1/tasks/{id}/provisioning/retry):
    # `ready` again, so `task.status_changed` starts the job anew. No person's transition takes it.
    PROVISIONING_RETRY = "provisioning_retry"


TRANSITIONS: dict[tuple[str, str], Rule] = {
    ("new", "awaiting_approval"): Rule.WORK,
    ("new", "ready"): Rule.WORK,
    ("new", "cancelled"): Rule.WORK,
    ("awaiting_approval", "ready"): Rule.BY_APPROVAL,
    ("awaiting_approval", "rejected"): Rule.BY_APPROVAL,
    ("awaiting_approval", "cancelled"): Rule.WORK,
    ("ready", "in_progress"): Rule.WORK,
    ("ready", "cancelled"): Rule.WORK,
    ("in_progress", "on_hold"): Rule.WORK,
    ("in_progress", "done"): Rule.WORK,
    ("in_progress", "cancelled"): Rule.WORK,
    ("on_hold", "in_progress"): Rule.WORK,
    ("on_hold", "cancelled"): Rule.WORK,
    ("on_hold", "ready"): Rule.PROVISIONING_RETRY,
    ("done", "ready"): Rule.ADMIN_ONLY,
    ("rejected", "ready"): Rule.ADMIN_ONLY,
    ("cancelled", "ready"): Rule.ADMIN_ONLY,
}

ALLOWED: dict[Rule, frozenset[Actor]] = {
    Rule.WORK: frozenset({Actor.ASSIGNEE, Actor.ADMIN, Actor.SYSTEM, Actor.PROVISIONING, Actor.PSA}),
    Rule.BY_APPROVAL: frozenset({Actor.APPROVAL}),
    Rule.ADMIN_ONLY: frozenset({Actor.ADMIN}),
    Rule.PROVISIONING_RETRY: frozenset({Actor.PROVISIONING}),
}


def reachable(current: str, actor: Actor) -> list[str]:
    """The statuses `actor` may move a task to from `current`, in the order of `STATUSES`."""
    return [to for to in STATUSES if (rule := TRANSITIONS.get((current, to))) is not None and actor in ALLOWED[rule]]


def check(current: str, target: str, actor: Actor) -> None:
    """Raise unless `actor` may move a task from `current` to `target`.

    No edge, or an edge only an approval may take: 409 invalid_transition, whose `allowed` lists what
    this actor may do from here (an approval-only or admin-only edge is not offered to anyone else).
    An admin-only edge taken by anyone else: 403.
    """
    rule = TRANSITIONS.get((current, target))
    if rule is None or actor not in ALLOWED[rule]:
        if rule is Rule.ADMIN_ONLY:
            raise Forbidden("reopening a closed task is admin-only")
        raise InvalidTransition(
            f"cannot move a task from {current} to {target}",
            current_status=current,
            allowed=reachable(current, actor),
        )


def is_open(status: str) -> bool:
    """True for the open statuses."""
    return status in OPEN_TASK_STATUSES
