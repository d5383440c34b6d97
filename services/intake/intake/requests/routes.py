"""Request routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Header, Request
from fastapi.responses import Response

from intake.common.pages import Cursor
from intake.deps import REQUESTER_ROLES, Reader, Requester, SessionDep
from intake.requests import create, service
from intake.requests.fast_route import PlainRequest, plain_route_class
from intake.requests.schemas import RequestCreate, RequestPublic, RequestStatus, RequestType
from intake.settings import get_settings
from intake.vendors import get_registry
from mspkit.auth import Principal
from mspkit.pagination import Limit, Page

router = APIRouter(prefix="/v1/requests", tags=["requests"])

KEY_PATTERN = r"^[!-~](?:[ -~]*[!-~])?$"
KEY_MAX_LENGTH = 128

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=KEY_MAX_LENGTH,
        pattern=KEY_PATTERN,
        description="Scoped to the caller's client (client roles) or sub; kept 24 h",
    ),
]


async def _create(request: Request, body: RequestCreate, key: str, user: Principal) -> Response:
    # The store and registry come from the app, not from dependencies: on the hottest route every
    # dependency FastAPI solves costs more than the lookup it wraps.
    stored = await create.create_request(
        request.app.state.store, user=user, body=body, key=key, registry=get_registry(), settings=get_settings()
    )
    return Response(content=stored.body, status_code=stored.status_code, media_type="application/json")


# POST /v1/requests has its own router: its route class answers plain requests without FastAPI's
# parameter machinery (see fast_route), with the same checks as the declaration below.
plain = PlainRequest(RequestCreate, frozenset(REQUESTER_ROLES), KEY_PATTERN, KEY_MAX_LENGTH)
create_router = APIRouter(prefix="/v1/requests", tags=["requests"], route_class=plain_route_class(plain, _create))


@create_router.post("", status_code=201, response_model=RequestPublic, responses={201: {"model": RequestPublic}})
async def create_request(
    request: Request, body: Annotated[RequestCreate, Body()], idempotency_key: IdempotencyKey, user: Requester
) -> Response:
    """Submit a request; it expands into tasks (and approvals) at once. Replays answer the first response."""
    return await _create(request, body, idempotency_key, user)


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
        session, user, client_id=client_id, status=status, type=type, limit=limit, cursor=cursor
    )
    return Page[RequestPublic](items=items, next_cursor=next_cursor)


@router.get("/{request_id}")
def get_request(request_id: uuid.UUID, user: Reader, session: SessionDep) -> RequestPublic:
    """Read a request."""
    return service.request_views(session, [service.get_request(session, user, request_id)])[0]
