"""Reads every domain shares: a row the caller may see, a list's filters, and one keyset page."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar, cast

from sqlalchemy import Select
from sqlmodel import Session, SQLModel, select

from mspkit.auth import Principal
from mspkit.errors import NotFound
from mspkit.pagination import keyset, page_of
from mspkit.tenancy import sees_client

T = TypeVar("T", bound=SQLModel)


def get_visible(
    session: Session,
    model: type[T],
    row_id: uuid.UUID,
    *,
    user: Principal,
    what: str,
    owner: str = "client_id",
    for_update: bool = False,
) -> T:
    """The row if the caller may see its client (`owner` names that column), locked if asked; else 404.

    A missing row and another tenant's give the same bytes, and neither echoes the id.
    """
    table = cast(Any, model)
    query = select(model).where(table.id == row_id)
    if for_update:
        query = query.with_for_update()
    row = session.exec(query).first()
    if row is None or not sees_client(user, getattr(row, owner)):
        raise NotFound(f"{what} not found")
    return row


def tenant_filter(user: Principal, client_id: uuid.UUID | None) -> dict[str, uuid.UUID | None] | None:
    """A list's client filter: client roles are held to their own client; None when nothing can match.

    A client role filtering on another client's id gets the empty list an unknown id gets.
    """
    if user.is_client:
        if client_id is not None and client_id != user.client_id:
            return None
        client_id = user.client_id
    return {"client_id": client_id}


def where_equal(query: Select[Any], model: type[SQLModel], **values: object) -> Select[Any]:
    """`query` narrowed to rows whose columns equal the values given (a None value filters nothing)."""
    for name, value in values.items():
        if value is not None:
            query = query.where(getattr(model, name) == value)
    return query


def tenant_page(
    session: Session,
    model: type[T],
    *,
    user: Principal,
    client_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
    **filters: object,
) -> tuple[list[T], str | None]:
    """One page of a client-owned table for this caller: its tenant filter, then equality filters."""
    tenant = tenant_filter(user, client_id)
    if tenant is None:
        return [], None
    query = where_equal(select(model), model, **tenant, **filters)
    return keyset_page(session, query, model, limit=limit, cursor=cursor)


def keyset_page(
    session: Session, query: Select[Any], model: type[T], *, limit: int, cursor: str | None
) -> tuple[list[T], str | None]:
    """One page of `query` in (created_at, id) order after `cursor`, and the next page's cursor."""
    table = cast(Any, model)
    rows = session.exec(keyset(query, at=table.created_at, id_=table.id, limit=limit, cursor=cursor)).all()
    return page_of(rows, limit=limit, key=lambda row: (row.created_at, row.id))
