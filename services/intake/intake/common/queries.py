"""Reads every domain shares: a row the caller may see, a list's filters, and one keyset page."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar, cast

from sqlalchemy import Select
from sqlmodel import Session, SQLModel, select

from mspkit.auth import Principal
from mspkit.errors import NotFound
from mspkit.pagination import keyset, page_of
from mspkit.tenancy import sees_client, visible

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
    # A task's assignee also sees it (need-to-know: their own work, whatever their clients).
    if row is None or not sees_client(user, getattr(row, owner), assignee=getattr(row, "assignee", None)):
        raise NotFound(f"{what} not found")
    return row


def where_equal(query: Select[Any], model: type[SQLModel], **values: object) -> Select[Any]:
    """`query` narrowed to rows whose columns equal the values given (a None value filters nothing)."""
    for name, value in values.items():
        if value is not None:
            query = query.where(getattr(model, name) == value)
    return query


def where_visible(
    query: Select[Any], model: type[SQLModel], *, user: Principal, client_id: uuid.UUID | None, owner: str = "client_id"
) -> Select[Any]:
    """`query` narrowed to the rows the caller may list (mspkit.tenancy.visible), and to `client_id` if given."""
    table = cast(Any, model)
    condition = visible(user, client_id).where(getattr(table, owner), getattr(table, "assignee", None))
    return query if condition is None else query.where(condition)


def tenant_page(
    session: Session,
    model: type[T],
    *,
    user: Principal,
    client_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
    where: tuple[Any, ...] = (),
    **filters: object,
) -> tuple[list[T], str | None]:
    """One page of a client-owned table for this caller: its tenant filter, equality filters, then `where`.

    A caller filtering on a client they may not see gets the 404 of a missing client (mspkit.tenancy);
    a technician's unfiltered list holds their clients' rows, and the tasks assigned to them.
    """
    query = where_visible(where_equal(select(model), model, **filters), model, user=user, client_id=client_id)
    if where:
        query = query.where(*where)
    return keyset_page(session, query, model, limit=limit, cursor=cursor)


def keyset_page(
    session: Session, query: Select[Any], model: type[T], *, limit: int, cursor: str | None
) -> tuple[list[T], str | None]:
    """One page of `query` in (created_at, id) order after `cursor`, and the next page's cursor."""
    table = cast(Any, model)
    rows = session.exec(keyset(query, at=table.created_at, id_=table.id, limit=limit, cursor=cursor)).all()
    return page_of(rows, limit=limit, key=lambda row: (row.created_at, row.id))
