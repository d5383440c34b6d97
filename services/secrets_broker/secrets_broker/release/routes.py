"""Release routes: `POST|GET /v1/releases`, `GET /v1/releases/{id}`, `POST /internal/service-releases`,
`GET /internal/releases/{id}` (svc:intake)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from mspkit.pagination import Cursor, Limit, Page
from secrets_broker.common.types import utcnow
from secrets_broker.deps import (
    AuditClient,
    Gateway,
    Intake,
    IntakeService,
    MailerDep,
    NoStore,
    SessionDep,
    SettingsDep,
    Technician,
    TechnicianOrAdmin,
    VendorSyncService,
)
from secrets_broker.release import listing, service
from secrets_broker.release.schemas import (
    ReleaseCreate,
    ReleaseForIntake,
    ReleaseIssued,
    ReleasePublic,
    ServiceReleaseCreate,
    ServiceReleaseIssued,
)

router = APIRouter(tags=["releases"])


@router.post("/v1/releases", status_code=201, response_model=ReleaseIssued, dependencies=[NoStore])
def create_release(
    body: ReleaseCreate,
    session: SessionDep,
    user: Technician,
    gateway: Gateway,
    intake: Intake,
    mailer: MailerDep,
    settings: SettingsDep,
) -> ReleaseIssued:
    """Release a credential for a task, as a single-use wrapping token (mailed for a third party)."""
    return service.create_release(
        session, user=user, body=body, gateway=gateway, intake=intake, mailer=mailer, settings=settings
    )


@router.get("/v1/releases", response_model=Page[ReleasePublic])
def list_releases(
    session: SessionDep,
    client_id: AuditClient,
    limit: Limit = 50,
    cursor: Cursor = None,
    credential_id: uuid.UUID | None = None,
) -> Page[ReleasePublic]:
    """Releases newest first, service releases included (admin; a client_admin gets their own client's)."""
    rows, next_cursor = listing.list_page(
        session, client_id=client_id, credential_id=credential_id, limit=limit, cursor=cursor
    )
    now = utcnow()
    items = [ReleasePublic.of(release, disclosure, now=now) for release, disclosure in rows]
    return Page[ReleasePublic](items=items, next_cursor=next_cursor)


@router.get("/v1/releases/{release_id}", response_model=ReleasePublic)
def get_release(release_id: uuid.UUID, session: SessionDep, user: TechnicianOrAdmin) -> ReleasePublic:
    """One release, for its technician or an admin."""
    release, disclosure = service.get_release(session, user=user, release_id=release_id)
    return ReleasePublic.of(release, disclosure, now=utcnow())


@router.get("/internal/releases/{release_id}", response_model=ReleaseForIntake)
def get_release_for_intake(release_id: uuid.UUID, session: SessionDep, _: IntakeService) -> ReleaseForIntake:
    """One release with its credential's name and reason, for intake's access alert (never a secret); 404 unknown."""
    release, disclosure, name = listing.get_with_name(session, release_id=release_id)
    return ReleaseForIntake.with_name(release, disclosure, credential_name=name, now=utcnow())


@router.post("/internal/service-releases", status_code=201, response_model=ServiceReleaseIssued, dependencies=[NoStore])
def create_service_release(
    body: ServiceReleaseCreate,
    session: SessionDep,
    user: VendorSyncService,
    gateway: Gateway,
    intake: Intake,
    settings: SettingsDep,
) -> ServiceReleaseIssued:
    """Release a vendor account's API key to vendor_sync."""
    return service.create_service_release(
        session, user=user, body=body, gateway=gateway, intake=intake, settings=settings
    )
