"""Who may work on a task by hand (notes, human steps): its assignee or an admin."""

from __future__ import annotations

import uuid

from sqlmodel import Session

from intake.tasks.models import Task
from intake.tasks.service import get_task
from mspkit.auth import Principal
from mspkit.errors import Forbidden, NotFound


def task_for_hand_work(
    session: Session, *, user: Principal, task_id: uuid.UUID, action: str, for_update: bool = False
) -> Task:
    """The task if `user` is its assignee or an admin; 403 for other staff, 404 for anyone who may not see it.

    Client roles get the missing task's 404 even for their own client's task: the work on it
    (internal notes above all) is staff business, and the answer must not differ from a foreign id's.
    """
    if user.is_client:
        raise NotFound("task not found")
    task = get_task(session, user=user, task_id=task_id, for_update=for_update)
    if user.role != "admin" and (task.assignee is None or task.assignee != user.sub):
        raise Forbidden(f"only the assignee or an admin may {action}")
    return task
