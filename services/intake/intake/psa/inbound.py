"""PSA in: a verified callback, applied to the linked task. Inbound changes only ever narrow access.

The callback says only which ticket changed; the ticket is re-fetched, under the task's advisory lock
(the push's, so a push in flight finishes first and its echo is recognised), and compared with what
intake last pushed there (`PsaLink.pushed_*`) and last saw (`seen_*`):

- the ticket is closed (or deleted) → an open task is closed: `done` from `in_progress`, else `cancelled`;
- its owner moved away from what we pushed → an assigned task is unassigned (`on_hold` first when in
  progress, so the broker revokes the assignee's releases) and nobody is assigned;
- anything else the PSA did (an owner given to an unassigned task, a status change such as start or
  reopen) becomes an internal note: assignments and transitions are made in the portal, never here.

A callback body already applied (`PsaCallback`, by the sha256 of its raw bytes) changes nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, select

from intake.common.types import utcnow
from intake.psa.models import PsaCallback, PsaLink
from intake.psa.protocol import Callback, PsaAdapter, Ticket
from intake.psa.push import LOCK_NAMESPACE, member_id, same_member, status_shown
from intake.settings import Settings
from intake.tasks.models import Task
from intake.tasks.service import add_note, apply_status, record_assignment
from intake.tasks.workflow import Actor, is_open
from mspkit.db import advisory_xact_lock
from mspkit.http import VendorNotFound

NOTE_KIND = "psa"


@dataclass(frozen=True)
class Applied:
    """What one callback did: `outcome` names it (`closed`, `unassigned`, `noted`, `unchanged`, ...)."""

    outcome: str
    task_id: str | None = None


def first_time(session: Session, *, fingerprint: str, provider: str, ticket_id: str) -> bool:
    """Record the callback body's fingerprint in the caller's transaction; False when it was applied before.

    A concurrent replay waits on the primary key until this transaction ends, then finds it taken.
    """
    row = {"fingerprint": fingerprint, "provider": provider, "ticket_id": ticket_id, "outcome": "applying"}
    inserted = session.execute(
        insert(PsaCallback)
        .values(**row, received_at=utcnow())
        .on_conflict_do_nothing(index_elements=["fingerprint"])
        .returning(PsaCallback.fingerprint)  # type: ignore[arg-type]
    ).first()
    return inserted is not None


def apply_callback(
    session: Session, *, adapter: PsaAdapter, settings: Settings, callback: Callback, fingerprint: str
) -> Applied:
    """Apply a verified, first-seen callback to its task; the caller commits."""
    link = session.exec(
        select(PsaLink).where(PsaLink.provider == adapter.provider, PsaLink.ticket_id == callback.ticket_id)
    ).first()
    if link is None:
        return _done(session, fingerprint, Applied("unlinked"))
    advisory_xact_lock(session, LOCK_NAMESPACE, str(link.task_id))
    session.refresh(link)
    task = session.exec(select(Task).where(Task.id == link.task_id).with_for_update()).one()
    ticket = _current_ticket(adapter, callback)
    outcome = _apply(session, settings, task, link, ticket)
    if ticket is not None:
        link.seen_status, link.seen_owner = ticket.status, ticket.owner_member_id
    link.updated_at = utcnow()
    session.add(link)
    return _done(session, fingerprint, Applied(outcome, str(task.id)))


def _current_ticket(adapter: PsaAdapter, callback: Callback) -> Ticket | None:
    """The ticket as the PSA holds it now; None when the PSA no longer has it (deleted)."""
    try:
        return adapter.get_ticket(callback.ticket_id)
    except VendorNotFound:
        return None


def _apply(session: Session, settings: Settings, task: Task, link: PsaLink, ticket: Ticket | None) -> str:
    if ticket is None or ticket.closed:
        return _close(session, task, "deleted" if ticket is None else f"closed ({ticket.status})")
    if (ticket.status, ticket.owner_member_id) == (link.seen_status, link.seen_owner):
        return "unchanged"
    outcomes = [_owner_change(session, task, link, ticket), _status_change(session, settings, task, link, ticket)]
    done = [o for o in outcomes if o is not None]
    return "+".join(done) if done else "unchanged"


def _close(session: Session, task: Task, how: str) -> str:
    if not is_open(task.status):
        return "already_closed"
    target = "done" if task.status == "in_progress" else "cancelled"
    apply_status(session, task=task, target=target, actor=Actor.PSA)
    _note(session, task, f"The PSA ticket was {how}: the task is {target}.")
    return "closed"


def _owner_change(session: Session, task: Task, link: PsaLink, ticket: Ticket) -> str | None:
    owner = ticket.owner_member_id
    if same_member(owner, link.pushed_owner) or same_member(owner, link.seen_owner):
        return None  # our own update coming back, or an owner already handled
    if owner is not None and same_member(owner, member_id(session, task.assignee, link.provider)):
        return None  # the PSA caught up with the task's assignee
    shown = owner or "nobody"
    if task.assignee is None:
        if owner is None:
            return None
        _note(session, task, f"The PSA ticket's owner was set to member {shown}; assign the task in the portal.")
        return "noted"
    if task.status == "in_progress":
        apply_status(session, task=task, target="on_hold", actor=Actor.PSA)
    previous = task.assignee
    record_assignment(session, task=task, assignee=None, by=f"psa:{link.provider}")
    _note(
        session,
        task,
        f"The PSA ticket's owner changed to {shown}: {previous} no longer holds this task and nobody was "
        "assigned. Assign it in the portal.",
    )
    return "unassigned"


def _status_change(session: Session, settings: Settings, task: Task, link: PsaLink, ticket: Ticket) -> str | None:
    if ticket.status in (status_shown(settings, link.pushed_status), link.seen_status):
        return None  # our own update coming back, or a status already noted
    if is_open(task.status):
        words = f"The PSA ticket's status was changed to {ticket.status}; the task stays {task.status}."
    else:
        words = f"The PSA ticket was reopened ({ticket.status}); the task stays {task.status} (an admin reopens it)."
    _note(session, task, words)
    return "noted"


def _note(session: Session, task: Task, body: str) -> None:
    add_note(session, task=task, kind=NOTE_KIND, author="psa", body=body)


def _done(session: Session, fingerprint: str, applied: Applied) -> Applied:
    row = session.get(PsaCallback, fingerprint)
    if row is not None:
        row.outcome = applied.outcome
        session.add(row)
    session.flush()
    return applied
