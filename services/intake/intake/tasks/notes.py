"""Internal notes written by staff on a task."""

from __future__ import annotations

import uuid

from sqlmodel import Session

from intake.tasks.access import task_for_hand_work
from intake.tasks.models import TaskNote
from intake.tasks.service import add_note
from mspkit.auth import Principal


def write_note(session: Session, *, user: Principal, task_id: uuid.UUID, body: str) -> TaskNote:
    """Add a note of kind `note` by the task's assignee or an admin, on an open or a closed task.

    A closed task takes notes too: an MSP writes its post-mortem after the work is over, and a note
    changes neither the task's status nor what anyone may access through it.
    """
    task = task_for_hand_work(session, user=user, task_id=task_id, action="add a note to this task")
    note = add_note(session, task=task, kind="note", author=user.sub, body=body)
    session.commit()
    return note
