"""Requests: reads (creation is in `intake.requests.create`)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlmodel import Session, col, select

from intake.common.pages import page_query, split_page
from intake.deps import sees_client
from intake.requests.models import ServiceRequest
from intake.requests.schemas import BODY_TYPES, RequestDetail, RequestPublic
from intake.tasks.models import Task
from mspkit.auth import Principal
from mspkit.errors import NotFound


def _not_found() -> NotFound:
    return NotFound("request not found")


def get_request(session: Session, user: Principal, request_id: uuid.UUID) -> ServiceRequest:
    """The request if the caller may see it, else 404."""
    request = session.exec(select(ServiceRequest).where(ServiceRequest.id == request_id)).first()
    if request is None or not sees_client(user, request.client_id):
        raise _not_found()
    return request


def _task_ids(session: Session, request_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    out: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    if request_ids:
        rows = session.exec(
            select(Task.request_id, Task.id)
            .where(col(Task.request_id).in_(request_ids))
            .order_by(col(Task.created_at), col(Task.id))
        ).all()
        for request_id, task_id in rows:
            if request_id is not None:
                out[request_id].append(task_id)
    return out


def request_views(session: Session, requests: Sequence[ServiceRequest]) -> list[RequestPublic]:
    """Views of these requests with their task ids."""
    task_ids = _task_ids(session, [r.id for r in requests])
    return [
        RequestPublic(
            id=r.id,
            type=r.type,  # type: ignore[arg-type]
            client_id=r.client_id,
            status=r.status,  # type: ignore[arg-type]
            task_ids=task_ids.get(r.id, []),
            created_at=r.created_at,
        )
        for r in requests
    ]


def request_detail(session: Session, request: ServiceRequest) -> RequestDetail:
    """A request with its typed body, for workers."""
    public = request_views(session, [request])[0]
    body = BODY_TYPES[request.type].model_validate(request.body)
    return RequestDetail(**public.model_dump(), created_by=request.created_by, body=body)


def list_requests(
    session: Session,
    user: Principal,
    *,
    client_id: uuid.UUID | None,
    status: str | None,
    type: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[RequestPublic], str | None]:
    """A page of the requests the caller may see, filtered."""
    query = select(ServiceRequest)
    if user.is_client:
        if client_id is not None and client_id != user.client_id:
            return [], None
        client_id = user.client_id
    if client_id is not None:
        query = query.where(ServiceRequest.client_id == client_id)
    if status is not None:
        query = query.where(ServiceRequest.status == status)
    if type is not None:
        query = query.where(ServiceRequest.type == type)
    rows = session.exec(page_query(query, ServiceRequest, limit=limit, cursor=cursor)).all()
    items, next_cursor = split_page(rows, limit)
    return request_views(session, items), next_cursor
