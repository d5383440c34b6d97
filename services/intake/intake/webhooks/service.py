"""PSA webhooks: recording a ticket link on a task, once."""

from __future__ import annotations

from sqlmodel import Session, select

from intake.tasks.models import Task, TaskNote
from intake.tasks.service import add_note
from intake.webhooks.schemas import PsaTicketLink
from mspkit.errors import NotFound


def record_ticket_link(session: Session, *, provider: str, link: PsaTicketLink) -> bool:
    """Add a `psa_link` internal note to the task; False when the same link is already recorded."""
    body = f"{provider} ticket {link.ticket_id}" + (f" {link.ticket_url}" if link.ticket_url else "")
    task = session.exec(select(Task).where(Task.id == link.task_id).with_for_update()).first()
    if task is None:
        raise NotFound("task not found")
    # A redelivered webhook adds nothing: the same link is recorded once.
    seen = session.exec(
        select(TaskNote.id).where(TaskNote.task_id == task.id, TaskNote.kind == "psa_link", TaskNote.body == body)
    ).first()
    if seen is not None:
        return False
    add_note(session, task=task, kind="psa_link", author=f"psa:{provider}", body=body)
    session.commit()
    return True
