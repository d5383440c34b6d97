"""intake's own reads of the staff directory: a staff view per request, and who may be assigned."""

from __future__ import annotations

import uuid

from sqlmodel import Session, select

from intake.staff.models import Staff
from mspkit.errors import ValidationFailed
from mspkit.staff import StaffView, need_to_know


def view_of(staff: Staff | None) -> StaffView | None:
    """The four values need-to-know reads of a staff row."""
    if staff is None:
        return None
    ids = None if staff.client_ids is None else frozenset(uuid.UUID(i) for i in staff.client_ids)
    return StaffView(sub=staff.sub, role=staff.role, active=staff.active, client_ids=ids)


def staff_view(session: Session, sub: str) -> StaffView | None:
    """The staff view of `sub`, None without a staff row."""
    return view_of(session.get(Staff, sub))


def ensure_assignable(session: Session, *, assignee: str, client_id: uuid.UUID) -> None:
    """422 (`field: assignee`) unless `assignee` is an active staff member who may see `client_id`."""
    # FOR SHARE, re-read: a PATCH narrowing this person's clients (it holds the row FOR UPDATE) either
    # commits first and is seen here, or waits for this assignment and then finds the task to unassign.
    row = session.exec(
        select(Staff).where(Staff.sub == assignee).with_for_update(read=True).execution_options(populate_existing=True)
    ).first()
    view = view_of(row)
    if view is None or not view.active:
        raise ValidationFailed("assignee is not an active staff member; add them at /v1/staff first", field="assignee")
    if not need_to_know(view, client_id):
        raise ValidationFailed("assignee does not work for this task's client (see their client_ids)", field="assignee")
