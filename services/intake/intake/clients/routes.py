"""Client routes."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from intake.clients import service
from intake.clients.schemas import ClientCreate, ClientPublic, ClientUpdate
from intake.deps import AdminUser, Reader, SessionDep
from mspkit.pagination import Cursor, Limit, Page
from mspkit.vocabulary import ClientStatus

router = APIRouter(prefix="/v1/clients", tags=["clients"])


@router.post("", status_code=201)
def create_client(body: ClientCreate, user: AdminUser, session: SessionDep) -> ClientPublic:
    """Create a client (admin)."""
    return ClientPublic.model_validate(service.create_client(session, body=body))


@router.get("")
def list_clients(
    user: Reader, session: SessionDep, status: ClientStatus | None = None, limit: Limit = 50, cursor: Cursor = None
) -> Page[ClientPublic]:
    """Clients the caller may see (a client role: its own)."""
    items, next_cursor = service.list_clients(session, user=user, status=status, limit=limit, cursor=cursor)
    return Page[ClientPublic](items=items, next_cursor=next_cursor)


@router.get("/{client_id}")
def get_client(client_id: uuid.UUID, user: Reader, session: SessionDep) -> ClientPublic:
    """Read a client (admin, technician, its own client roles)."""
    return ClientPublic.model_validate(service.get_client(session, user=user, client_id=client_id))


@router.patch("/{client_id}")
def update_client(client_id: uuid.UUID, body: ClientUpdate, user: AdminUser, session: SessionDep) -> ClientPublic:
    """Patch a client (admin); leaving `active` cancels its open tasks and revokes their live releases."""
    return ClientPublic.model_validate(service.update_client(session, user=user, client_id=client_id, body=body))
