"""`GET /v1/disclosures`: the ledger as JSON pages or as one CSV export; `POST /internal/disclosures`
(svc:vendor_sync): client information about to leave for a vendor, recorded on its approval."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response

from mspkit.pagination import Cursor, Limit, Page
from secrets_broker.deps import AuditClient, Gateway, Intake, SessionDep, SettingsDep, VendorSyncService
from secrets_broker.ledger import service
from secrets_broker.ledger.csv_export import to_csv
from secrets_broker.ledger.schemas import DisclosurePublic, InformationDisclosureCreate, InformationDisclosurePublic

router = APIRouter(tags=["disclosures"])


@router.get(
    "/v1/disclosures",
    response_model=Page[DisclosurePublic],
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "JSON page or CSV"}},
)
def list_disclosures(
    session: SessionDep,
    client_id: AuditClient,
    limit: Limit = 50,
    cursor: Cursor = None,
    format: Literal["json", "csv"] = "json",
) -> Page[DisclosurePublic] | Response:
    """The disclosure ledger (a client_admin gets their own client's); `format=csv` exports every row."""
    if format == "csv":
        text = to_csv(service.as_row(row) for row in service.iter_all(session, client_id=client_id))
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="disclosures.csv"', "Cache-Control": "no-store"},
        )
    rows, next_cursor = service.list_page(session, client_id=client_id, limit=limit, cursor=cursor)
    return Page[DisclosurePublic](
        items=[DisclosurePublic.model_validate(service.as_row(row)) for row in rows], next_cursor=next_cursor
    )


@router.post(
    "/internal/disclosures",
    status_code=201,
    response_model=InformationDisclosurePublic,
    responses={200: {"model": InformationDisclosurePublic, "description": "Already recorded under this key"}},
)
def record_disclosure(
    body: InformationDisclosureCreate,
    session: SessionDep,
    user: VendorSyncService,
    intake: Intake,
    gateway: Gateway,
    settings: SettingsDep,
    response: Response,
) -> InformationDisclosurePublic:
    """Record client information about to leave for a vendor; 403 `disclosure_denied` naming the rule otherwise."""
    row, created = service.record_information(
        session, user=user, body=body, intake=intake, gateway=gateway, settings=settings
    )
    if not created:
        response.status_code = 200
    return InformationDisclosurePublic.model_validate({**service.as_row(row), "id": row.id})
