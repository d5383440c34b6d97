"""Object-level tenancy and need-to-know: who may see an object of a client (one rule for every service).

Client roles see only their own client; technicians only the clients of their staff row and the
tasks assigned to them (`mspkit.staff.need_to_know`); admins and services every client. Anything a
caller may not see answers exactly as a missing object does (404), so ids of other tenants leak
nothing. That holds for lists too: naming a client the caller may not see (`?client_id=`, or a
client in the path) gets the 404 of a client that does not exist, never an empty page that would
confirm the id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, or_

from mspkit.auth import Principal
from mspkit.errors import NotFound
from mspkit.staff import known_clients, need_to_know


def sees_client(user: Principal, client_id: uuid.UUID, *, assignee: str | None = None) -> bool:
    """Whether `user` may see an object of `client_id` (`assignee`: the object is a task assigned to them)."""
    if user.is_client:
        return user.client_id == client_id
    if user.role == "technician":
        return need_to_know(user.staff, client_id, assigned=assignee is not None and assignee == user.sub)
    return True


def ensure_sees_client(user: Principal, client_id: uuid.UUID, what: str = "object") -> None:
    """Raise the same 404 as a missing `what` unless `user` may see objects of `client_id`."""
    if not sees_client(user, client_id):
        raise NotFound(f"{what} not found")


@dataclass(frozen=True)
class Visible:
    """What a list may hold: rows of `client_ids` (None: of every client), and tasks assigned to `assignee`."""

    client_ids: frozenset[uuid.UUID] | None
    assignee: str | None = None

    def where(self, client_column: Any, assignee_column: Any = None) -> ColumnElement[bool] | None:
        """The SQL condition on a list's query (None: no condition), for a table with these columns."""
        if self.client_ids is None:
            return None
        by_client = client_column.in_(sorted(self.client_ids)) if self.client_ids else false()
        if assignee_column is not None and self.assignee is not None:
            return or_(by_client, assignee_column == self.assignee)
        return by_client


def visible(user: Principal, client_id: uuid.UUID | None = None) -> Visible:
    """What `user`'s list may hold, narrowed to `client_id` when asked (a client they may not see: 404)."""
    if client_id is not None:
        ensure_sees_client(user, client_id, "client")
        return Visible(frozenset({client_id}))
    if user.is_client:
        assert user.client_id is not None  # a client role's token always names its client
        return Visible(frozenset({user.client_id}))
    if user.role == "technician":
        clients = known_clients(user.staff)
        # An inactive technician, or one without a staff row, lists nothing, even assigned tasks.
        active = user.staff is not None and user.staff.active
        return Visible(clients, user.sub if active and clients is not None else None)
    return Visible(None)
