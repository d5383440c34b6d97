"""The staff directory: create, read, list and patch staff rows; assignment checks; the staff view.

Every change writes `staff.changed` (vendor_sync and the broker drop their cached view). Taking a
client away from a technician, or deactivating them, unassigns their open tasks of the clients they
lose (each with an internal note; a task in progress is put on hold first), in the same transaction:
the `task.assigned` and `task.status_changed` events then revoke their live releases.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from intake.clients.models import Client
from intake.common.queries import keyset_page
from intake.common.types import new_id, utcnow
from intake.events import emit
from intake.staff.directory import view_of
from intake.staff.models import Staff, StaffPsaMember
from intake.staff.schemas import StaffCreate, StaffPublic, StaffUpdate
from intake.tasks.models import Task
from intake.tasks.service import add_note, apply_status, record_assignment
from intake.tasks.workflow import Actor
from mspkit.errors import Conflict, NotFound, ValidationFailed
from mspkit.staff import STAFF_CHANGED, StaffView, need_to_know
from mspkit.vocabulary import OPEN_TASK_STATUSES

SYSTEM_AUTHOR = "intake"


def _not_found() -> NotFound:
    return NotFound("staff member not found")


def _members(session: Session, sub: str) -> dict[str, str]:
    rows = session.exec(select(StaffPsaMember).where(StaffPsaMember.sub == sub)).all()
    return {row.provider: row.member_id for row in rows}


def staff_public(session: Session, staff: Staff) -> StaffPublic:
    """A staff row with its PSA member ids, in the public shape."""
    return StaffPublic.model_validate({**staff.model_dump(), "psa_member_ids": _members(session, staff.sub)})


def _check_clients(session: Session, client_ids: list[uuid.UUID] | None) -> list[str] | None:
    """The ids as stored (deduplicated, in order); every one must be a client (422 naming the unknown ones)."""
    if client_ids is None:
        return None
    ids = list(dict.fromkeys(client_ids))
    known = set(session.exec(select(Client.id).where(col(Client.id).in_(ids))).all()) if ids else set()
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValidationFailed.listing(
            (f"client_ids.{client_ids.index(i)}", f"no client has the id {i}") for i in unknown
        )
    return [str(i) for i in ids]


def _taken_members(session: Session, sub: str, members: dict[str, str]) -> None:
    """409 naming the first PSA member id (by provider) that another staff member already holds."""
    for provider, member_id in sorted(members.items()):
        holder = session.exec(
            select(StaffPsaMember.sub).where(
                StaffPsaMember.provider == provider, StaffPsaMember.member_id == member_id, StaffPsaMember.sub != sub
            )
        ).first()
        if holder is not None:
            raise Conflict(
                f"the {provider} member id {member_id} already belongs to another staff member",
                field=f"psa_member_ids.{provider}",
            )


def _set_members(session: Session, sub: str, members: dict[str, str]) -> None:
    _taken_members(session, sub, members)
    for row in session.exec(select(StaffPsaMember).where(StaffPsaMember.sub == sub)).all():
        session.delete(row)
    session.flush()
    for provider, member_id in members.items():
        session.add(StaffPsaMember(sub=sub, provider=provider, member_id=member_id))
    _flush(session)


def _flush(session: Session) -> None:
    """Flush; a sub or PSA member id taken meanwhile by a concurrent request is 409 (the unique keys decide)."""
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        if "ux_staff_psa_members_member" in str(exc.orig):
            raise Conflict(
                "a PSA member id in psa_member_ids already belongs to another staff member", field="psa_member_ids"
            ) from None
        raise Conflict("a staff member with this sub already exists", field="sub") from None


def _changed(session: Session, staff: Staff) -> None:
    emit(
        session,
        STAFF_CHANGED,
        client_id=None,
        aggregate_id=None,
        data={"sub": staff.sub, "active": staff.active, "updated_at": staff.updated_at.isoformat()},
    )


def create_staff(session: Session, *, body: StaffCreate) -> StaffPublic:
    """Add a staff member (409 for a known sub or a PSA member id already mapped)."""
    if session.get(Staff, body.sub) is not None:
        raise Conflict("a staff member with this sub already exists", field="sub")
    now = utcnow()
    staff = Staff(
        sub=body.sub,
        id=new_id(),
        display_name=body.display_name,
        email=body.email,
        role=body.role,
        active=body.active,
        client_ids=_check_clients(session, body.client_ids),
        created_at=now,
        updated_at=now,
    )
    session.add(staff)
    _flush(session)
    _set_members(session, staff.sub, dict(body.psa_member_ids))
    _changed(session, staff)
    session.commit()
    return staff_public(session, staff)


def get_staff(session: Session, *, sub: str, for_update: bool = False) -> Staff:
    """The staff row of `sub`, else 404."""
    query = select(Staff).where(Staff.sub == sub)
    staff = session.exec(query.with_for_update() if for_update else query).first()
    if staff is None:
        raise _not_found()
    return staff


def list_staff(
    session: Session, *, active: bool | None, limit: int, cursor: str | None
) -> tuple[list[StaffPublic], str | None]:
    """A page of staff rows, oldest first."""
    query = select(Staff)
    if active is not None:
        query = query.where(Staff.active == active)
    rows, next_cursor = keyset_page(session, query, Staff, limit=limit, cursor=cursor)
    return [staff_public(session, row) for row in rows], next_cursor


def update_staff(session: Session, *, user_sub: str, sub: str, body: StaffUpdate) -> StaffPublic:
    """Patch a staff row; losing clients or `active` unassigns the open tasks that fall outside, in one transaction."""
    staff = get_staff(session, sub=sub, for_update=True)
    changes = body.model_dump(exclude_unset=True)
    for name in ("display_name", "email", "role", "active"):
        if changes.get(name) is not None:
            setattr(staff, name, changes[name])
    if "client_ids" in changes:
        staff.client_ids = _check_clients(session, body.client_ids)
    if changes.get("psa_member_ids") is not None:
        _set_members(session, sub, dict(changes["psa_member_ids"]))
    staff.updated_at = utcnow()
    session.add(staff)
    session.flush()
    view = view_of(staff)
    assert view is not None
    _unassign_outside(session, staff=view, by=user_sub)
    _changed(session, staff)
    session.commit()
    return staff_public(session, staff)


def _unassign_outside(session: Session, *, staff: StaffView, by: str) -> None:
    """Unassign `staff`'s open tasks of clients they may not see (none unless their clients or `active` shrank)."""
    tasks: Iterable[Task] = session.exec(
        select(Task)
        .where(Task.assignee == staff.sub, col(Task.status).in_(OPEN_TASK_STATUSES))
        .order_by(col(Task.created_at), col(Task.id))
        .with_for_update()
    ).all()
    for task in tasks:
        if need_to_know(staff, task.client_id):
            continue
        why = "was deactivated" if not staff.active else "no longer works for this client"
        if task.status == "in_progress":
            apply_status(session, task=task, target="on_hold", actor=Actor.SYSTEM)
        record_assignment(session, task=task, assignee=None, by=by)
        add_note(
            session,
            task=task,
            kind="staff",
            author=SYSTEM_AUTHOR,
            body=f"Unassigned from {staff.sub}, who {why}; assign another technician.",
        )
