"""Release routes: `POST /v1/releases`, `GET /v1/releases/{id}`, `POST /internal/service-releases`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from secrets_broker.common.types import utcnow
from secrets_broker.deps import (
    Gateway,
    Intake,
    MailerDep,
    SessionDep,
    SettingsDep,
    Technician,
    TechnicianOrAdmin,
    VendorSyncService,
)
from secrets_broker.release import service
from secrets_broker.release.schemas import (
    Recipient,
    ReleaseCreate,
    ReleaseIssued,
    ReleasePublic,
    ServiceReleaseCreate,
    ServiceReleaseIssued,
)

router = APIRouter(tags=["releases"])


@router.post("/v1/releases", status_code=201, response_model=ReleaseIssued)
def create_release(
    body: ReleaseCreate,
    session: SessionDep,
    user: Technician,
    gateway: Gateway,
    intake: Intake,
    mailer: MailerDep,
    settings: SettingsDep,
) -> Response:
    """Release a credential for a task, as a single-use wrapping token (mailed for a third party).

    Answers with the `ReleaseIssued` JSON itself: for a sync route FastAPI would re-validate a
    returned model in the threadpool (one more hand-off per request) before serialising it.
    """
    issued = service.create_release(
        session, user=user, body=body, gateway=gateway, intake=intake, mailer=mailer, settings=settings
    )
    return Response(
        content=issued.model_dump_json(by_alias=True),
        status_code=201,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


@router.get("/v1/releases/{release_id}", response_model=ReleasePublic)
def get_release(release_id: uuid.UUID, session: SessionDep, user: TechnicianOrAdmin) -> ReleasePublic:
    """One release, for its technician or an admin."""
    release, disclosure = service.get_release(session, user=user, release_id=release_id)
    status = release.status
    if status == "issued" and release.expires_at <= utcnow():
        status = "expired"
    if release.recipient_type == "third_party":
        recipient = Recipient(
            type="third_party",
            name=disclosure.recipient_name if disclosure else None,
            party_category=disclosure.party_category if disclosure else None,
        )
    else:
        recipient = Recipient(type="technician", sub=release.technician)
    return ReleasePublic(
        id=release.id,
        task_id=release.task_id,
        credential_id=release.credential_id,
        recipient=recipient,
        approval_id=release.approval_id,
        status=status,  # type: ignore[arg-type]
        expires_at=release.expires_at,
        created_at=release.created_at,
    )


@router.post("/internal/service-releases", status_code=201, response_model=ServiceReleaseIssued)
def create_service_release(
    body: ServiceReleaseCreate,
    response: Response,
    session: SessionDep,
    user: VendorSyncService,
    gateway: Gateway,
    settings: SettingsDep,
) -> ServiceReleaseIssued:
    """Release a vendor account's API key to vendor_sync."""
    response.headers["Cache-Control"] = "no-store"
    return service.create_service_release(session, user=user, body=body, gateway=gateway, settings=settings)
