"""PSA out: a task's ticket follows the task's status and assignee; the broker's releases become ticket notes.

Events carry ids only, so every job reads the task as it is now: a stale, out-of-order or redelivered
event pushes the current state, or nothing when the ticket already shows it. Each job runs in the
caller's transaction under an advisory lock on the task id, so two pushes of one task (or a push and a
note) take turns; the PSA is called inside that transaction and the link row is written only after it
answered, so a failed call leaves nothing half-written (the create is idempotent at the PSA through the
task id: a retry finds the ticket instead of making a second one). A ticket carries only what
`TicketFields` holds: never names, addresses, contacts, domains or notes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, select

from intake.clients.models import Client
from intake.common.types import utcnow
from intake.psa.models import PsaLink, PsaNoteSent
from intake.psa.protocol import PsaAdapter, Ticket, TicketFields
from intake.settings import Settings
from intake.staff.models import StaffPsaMember
from intake.tasks.models import Task, TaskNote
from intake.tasks.service import add_note
from mspkit.db import advisory_xact_lock

# The key is the task id: pushes and notes of one task serialise, other tasks never wait.
LOCK_NAMESPACE = "intake.psa.task"
UNMAPPED_NOTE_KIND = "psa_unmapped"
AUTHOR = "intake"
RELEASE_EVENTS = ("release.granted", "release.denied")
# A broker rule id (`caller_not_assignee`, ...): anything else in the event is not written to a ticket.
_RULE = re.compile(r"[a-z][a-z0-9_]{0,63}")


class MalformedEvent(ValueError):
    """An envelope without the ids the job needs: dead-lettered, never retried."""


def _uuid(value: Any, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError) as exc:
        raise MalformedEvent(f"{what} is not a UUID") from exc


def _data(envelope: Any) -> Mapping[str, Any]:
    data = envelope.get("data") if isinstance(envelope, Mapping) else None
    if not isinstance(data, Mapping):
        raise MalformedEvent("the envelope has no data object")
    return data


def task_id_of(envelope: Any) -> uuid.UUID:
    """The task a `task.*` event is about (`data.task_id`)."""
    return _uuid(_data(envelope).get("task_id"), "data.task_id")


def push_task(session: Session, *, adapter: PsaAdapter, settings: Settings, task_id: uuid.UUID) -> str:
    """Make the task's ticket show its current status and assignee; the caller commits. Returns what was done."""
    advisory_xact_lock(session, LOCK_NAMESPACE, str(task_id))
    # Read after the lock, from the database: the task as it is now, not as the event or a cache saw it.
    task = session.get(Task, task_id, populate_existing=True)
    if task is None:
        return "missing"
    company_id = _company_id(session, task, adapter.provider)
    if company_id is None:
        return "unmapped" if _note_unmapped(session, task, adapter.provider) else "unmapped_noted_before"
    fields = ticket_fields(session, task, provider=adapter.provider, company_id=company_id, settings=settings)
    link = session.get(PsaLink, task.id, populate_existing=True)
    if link is None:
        _create(session, adapter, fields, settings)
        return "created"
    if link.provider != adapter.provider:
        # Linked in another PSA before a switch of INTAKE_PSA_PROVIDER: that ticket is not ours to move.
        return "other_provider"
    if (link.pushed_status, link.pushed_owner) == (fields.task_status, fields.assignee_member_id):
        return "unchanged"
    adapter.update_ticket(link.ticket_id, fields)
    _record_pushed(session, link, fields)
    return "updated"


def ticket_fields(session: Session, task: Task, *, provider: str, company_id: str, settings: Settings) -> TicketFields:
    """Everything the ticket may say: task id, type, status, company id, portal link and the assignee's member id."""
    return TicketFields(
        task_id=task.id,
        task_type=task.type,
        task_status=task.status,
        company_id=company_id,
        portal_url=f"{settings.portal_url.rstrip('/')}/tasks/{task.id}",
        assignee_member_id=member_id(session, task.assignee, provider),
    )


def member_id(session: Session, sub: str | None, provider: str) -> str | None:
    """The staff member's id in this PSA (None when unassigned or unmapped)."""
    if sub is None:
        return None
    return session.exec(
        select(StaffPsaMember.member_id).where(StaffPsaMember.sub == sub, StaffPsaMember.provider == provider)
    ).first()


def _company_id(session: Session, task: Task, provider: str) -> str | None:
    client = session.get(Client, task.client_id, populate_existing=True)
    mapping = client.psa_company_ids if client is not None else None
    value = mapping.get(provider) if isinstance(mapping, Mapping) else None
    return value if isinstance(value, str) and value else None


def _note_unmapped(session: Session, task: Task, provider: str) -> bool:
    """One internal note per task that its client has no company in the PSA; False when it is already there."""
    seen = session.exec(
        select(TaskNote.id).where(TaskNote.task_id == task.id, TaskNote.kind == UNMAPPED_NOTE_KIND)
    ).first()
    if seen is not None:
        return False
    body = (
        f"No {provider} ticket: the client is not mapped to a {provider} company "
        f"(set psa_company_ids.{provider} on the client; the next change of this task pushes it)."
    )
    add_note(session, task=task, kind=UNMAPPED_NOTE_KIND, author=AUTHOR, body=body)
    session.flush()
    return True


def _create(session: Session, adapter: PsaAdapter, fields: TicketFields, settings: Settings) -> None:
    """Create (or find) the ticket, bring a found one up to date, then write the link."""
    ticket = adapter.create_ticket(fields)
    if not _shows(ticket, fields, settings):
        # A ticket found by the task id (made by an attempt whose commit was lost) shows an older state.
        adapter.update_ticket(ticket.ticket_id, fields)
    now = utcnow()
    link = PsaLink(
        task_id=fields.task_id,
        provider=adapter.provider,
        ticket_id=ticket.ticket_id,
        ticket_url=ticket.url,
        created_at=now,
        updated_at=now,
    )
    _record_pushed(session, link, fields)


def _shows(ticket: Ticket, fields: TicketFields, settings: Settings) -> bool:
    """Whether the ticket already shows the task's status (by the board's map) and assignee."""
    shown = status_shown(settings, fields.task_status)
    return ticket.status == shown and same_member(ticket.owner_member_id, fields.assignee_member_id)


def status_shown(settings: Settings, task_status: str | None) -> str | None:
    """The PSA status the configured board's map gives a task status (None for none)."""
    return settings.psa_status_maps.get(settings.psa_board, {}).get(task_status or "")


def same_member(member: str | None, other: str | None) -> bool:
    """Whether two PSA member identifiers name the same member (the PSA compares them without case)."""
    return (member or "").casefold() == (other or "").casefold()


def _record_pushed(session: Session, link: PsaLink, fields: TicketFields) -> None:
    link.pushed_status = fields.task_status
    link.pushed_owner = fields.assignee_member_id
    link.updated_at = utcnow()
    session.add(link)
    session.flush()


# --- release notes ------------------------------------------------------------------------------------------


def release_note_text(envelope: Any) -> tuple[uuid.UUID, uuid.UUID, str] | None:
    """(event id, task id, note text) of a broker `release.*` event; None when it names no task."""
    if not isinstance(envelope, Mapping) or envelope.get("type") not in RELEASE_EVENTS:
        raise MalformedEvent("not a release.granted or release.denied event")
    event_id = _uuid(envelope.get("event_id"), "event_id")
    data = _data(envelope)
    if data.get("task_id") is None:
        return None
    task_id = _uuid(data.get("task_id"), "data.task_id")
    credential_id = _uuid(data.get("credential_id"), "data.credential_id")
    rule = data.get("rule")
    if rule is not None and (not isinstance(rule, str) or not _RULE.fullmatch(rule)):
        raise MalformedEvent("data.rule is not a rule id")
    # Ids, the rule and the audit index only: the credential's name, people and reasons stay behind the link.
    lines = [
        f"MSP {envelope['type']}",
        f"credential: {credential_id}",
        f"rule: {rule or 'none failed (granted)'}",
        f"audit entry: {_audit_index(data)}",
    ]
    return event_id, task_id, "\n".join(lines)


def _audit_index(data: Mapping[str, Any]) -> str:
    index = data.get("audit_index")
    if isinstance(index, int) and not isinstance(index, bool) and index >= 0:
        return str(index)
    return "not in the event (see the MSP audit log)"


def add_release_note(session: Session, *, adapter: PsaAdapter, envelope: Any) -> str:
    """Note a broker release on the task's ticket, once per event; the caller commits. Returns what was done."""
    parsed = release_note_text(envelope)
    if parsed is None:
        return "no_task"
    event_id, task_id, text = parsed
    advisory_xact_lock(session, LOCK_NAMESPACE, str(task_id))
    if session.get(PsaNoteSent, event_id) is not None:
        return "duplicate"
    link = session.get(PsaLink, task_id, populate_existing=True)
    if link is None or link.provider != adapter.provider:
        return "no_ticket"
    adapter.add_note(link.ticket_id, text)
    session.add(
        PsaNoteSent(
            event_id=event_id, task_id=task_id, provider=link.provider, ticket_id=link.ticket_id, created_at=utcnow()
        )
    )
    session.flush()
    return "noted"
