"""Clients: create, read, list, and patch (leaving `active` cancels the client's open tasks)."""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from intake.clients.models import Client
from intake.clients.schemas import ClientCreate, ClientPublic, ClientStatusView, ClientUpdate
from intake.common.queries import get_visible, keyset_page, where_equal, where_visible
from intake.common.types import new_id, utcnow
from intake.events import emit
from intake.tasks.models import Task
from intake.tasks.service import apply_status
from intake.tasks.workflow import Actor
from mspkit.auth import Principal
from mspkit.errors import NotFound
from mspkit.vocabulary import OPEN_TASK_STATUSES


def create_client(session: Session, *, body: ClientCreate) -> Client:
    """Create an active client."""
    now = utcnow()
    client = Client(
        id=new_id(),
        name=body.name,
        primary_domain=body.primary_domain.lower(),
        approver_emails=list(dict.fromkeys(body.approver_emails)),
        purchase_approval_threshold_cents=body.purchase_approval_threshold_cents,
        alert_emails=_alert_emails(body.alert_emails),
        status_mail=body.status_mail,
        psa_company_ids=dict(body.psa_company_ids),
        status="active",
        created_at=now,
        updated_at=now,
    )
    session.add(client)
    session.commit()
    return client


def _alert_emails(emails: list[str] | None) -> list[str] | None:
    """Stored alert addresses, deduplicated; None (the approvers) for none."""
    return list(dict.fromkeys(emails)) if emails else None


def get_client(session: Session, *, user: Principal, client_id: uuid.UUID, for_update: bool = False) -> Client:
    """The client if the caller may see it, else 404."""
    return get_visible(session, Client, client_id, user=user, what="client", owner="id", for_update=for_update)


def client_status(session: Session, *, client_id: uuid.UUID) -> ClientStatusView:
    """A client's id and status for an allowlisted service (no tenant check); 404 when unknown."""
    row = session.exec(select(Client.id, Client.status).where(Client.id == client_id)).first()
    if row is None:
        raise NotFound("client not found")
    return ClientStatusView(id=row[0], status=row[1])


def list_clients(
    session: Session, *, user: Principal, status: str | None, limit: int, cursor: str | None
) -> tuple[list[ClientPublic], str | None]:
    """A page of the clients the caller may see."""
    query = where_visible(
        where_equal(select(Client), Client, status=status), Client, user=user, client_id=None, owner="id"
    )
    items, next_cursor = keyset_page(session, query, Client, limit=limit, cursor=cursor)
    return [ClientPublic.model_validate(c) for c in items], next_cursor


def update_client(session: Session, *, user: Principal, client_id: uuid.UUID, body: ClientUpdate) -> Client:
    """Patch a client; a status change away from `active` cancels every open task, all in one transaction."""
    client = get_client(session, user=user, client_id=client_id, for_update=True)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    status = changes.pop("status", None)
    if "primary_domain" in changes:
        changes["primary_domain"] = changes["primary_domain"].lower()
    if "approver_emails" in changes:
        changes["approver_emails"] = list(dict.fromkeys(changes["approver_emails"]))
    if "alert_emails" in changes:
        changes["alert_emails"] = _alert_emails(changes["alert_emails"])
    for name, value in changes.items():
        setattr(client, name, value)
    if status is not None and status != client.status:
        previous = client.status
        client.status = status
        if previous == "active":
            open_tasks = session.exec(
                select(Task)
                .where(Task.client_id == client.id, col(Task.status).in_(OPEN_TASK_STATUSES))
                .order_by(col(Task.created_at), col(Task.id))
                .with_for_update()
            ).all()
            for task in open_tasks:
                apply_status(session, task=task, target="cancelled", actor=Actor.SYSTEM)
        emit(
            session,
            "client.status_changed",
            client_id=client.id,
            aggregate_id=client.id,
            data={"client_id": str(client.id), "from": previous, "to": status},
        )
    if changes or status is not None:
        client.updated_at = utcnow()
    session.add(client)
    session.commit()
    return client
