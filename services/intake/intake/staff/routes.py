"""Staff directory routes (admin), and the staff view other services read (`/internal/staff/{sub}`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from intake.deps import AdminUser, SessionDep, StaffViewReader
from intake.staff import service
from intake.staff.schemas import StaffCreate, StaffPublic, StaffSubPattern, StaffUpdate
from mspkit.pagination import Cursor, Limit, Page

router = APIRouter(tags=["staff"])

SubPath = Annotated[str, Path(min_length=1, max_length=255, pattern=StaffSubPattern)]


@router.post("/v1/staff", status_code=201)
def create_staff(body: StaffCreate, user: AdminUser, session: SessionDep) -> StaffPublic:
    """Add a staff member (admin); a sub or a PSA member id already taken is 409."""
    return service.create_staff(session, body=body)


@router.get("/v1/staff")
def list_staff(
    user: AdminUser, session: SessionDep, active: bool | None = None, limit: Limit = 50, cursor: Cursor = None
) -> Page[StaffPublic]:
    """Staff members, oldest first (admin)."""
    items, next_cursor = service.list_staff(session, active=active, limit=limit, cursor=cursor)
    return Page[StaffPublic](items=items, next_cursor=next_cursor)


@router.get("/v1/staff/{sub}")
def get_staff(sub: SubPath, user: AdminUser, session: SessionDep) -> StaffPublic:
    """One staff member (admin)."""
    return service.staff_public(session, service.get_staff(session, sub=sub))


@router.patch("/v1/staff/{sub}")
def update_staff(sub: SubPath, body: StaffUpdate, user: AdminUser, session: SessionDep) -> StaffPublic:
    """Change a staff member (admin); taking clients away or deactivating unassigns the open tasks that fall outside."""
    return service.update_staff(session, user_sub=user.sub, sub=sub, body=body)


@router.get("/internal/staff/{sub}", tags=["internal"])
def staff_view(sub: SubPath, service_caller: StaffViewReader, session: SessionDep) -> StaffPublic:
    """The staff view need-to-know reads (svc:vendor_sync, svc:secrets_broker); 404 without a staff row."""
    return service.staff_public(session, service.get_staff(session, sub=sub))
