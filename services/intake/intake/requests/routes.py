"""Request routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Header
from fastapi.responses import Response

from intake.deps import Reader, Requester, SessionDep
from intake.requests import service
from intake.requests.schemas import RequestCreate, RequestPublic, RequestStatus, RequestType
from mspkit.pagination import Cursor, Limit, Page
from mspkit.patterns import described

router = APIRouter(prefix="/v1/requests", tags=["requests"])

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        pattern=described(
            r"^[!-~](?:[ -~]*[!-~])?$", "may contain only printable ASCII characters, with no space at either end"
        ),
        description="Scoped to the caller's client (client roles) or sub; kept 24 h",
    ),
]


@router.post("", status_code=201, response_model=RequestPublic, responses={201: {"model": RequestPublic}})
def create_request(
    body: Annotated[RequestCreate, Body()], idempotency_key: IdempotencyKey, user: Requester, session: SessionDep
) -> Response:
    """Submit a request; it expands into tasks (and approvals) at once. Replays answer the first response."""
    stored = service.create_request(session, user=user, body=body, idempotency_key=idempotency_key)
    # The stored bytes, not a re-rendered model: a replay must be the first answer byte for byte.
    return Response(content=stored.body, status_code=stored.status_code, media_type="application/json")


@router.get("")
def list_requests(
    user: Reader,
    session: SessionDep,
    client_id: uuid.UUID | None = None,
    status: RequestStatus | None = None,
    type: RequestType | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[RequestPublic]:
    """Requests the caller may see, filtered by status and type."""
    items, next_cursor = service.list_requests(
        session, user=user, client_id=client_id, status=status, type=type, limit=limit, cursor=cursor
    )
    return Page[RequestPublic](items=items, next_cursor=next_cursor)


@router.get("/{request_id}")
def get_request(request_id: uuid.UUID, user: Reader, session: SessionDep) -> RequestPublic:
    """Read a request."""
    request = service.get_request(session, user=user, request_id=request_id)
    return service.request_views(session, requests=[request])[0]
