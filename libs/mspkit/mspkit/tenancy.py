"""Object-level tenancy: who may see an object of a client (one pure rule for every service).

Client roles see only their own client; staff and services see every client. Anything a caller may
not see answers exactly as a missing object does (404), so ids of other tenants leak nothing.
"""

from __future__ import annotations

import uuid

from mspkit.auth import Principal
from mspkit.errors import NotFound


def sees_client(user: Principal, client_id: uuid.UUID) -> bool:
    """Whether `user` may see objects of `client_id`."""
    return not user.is_client or user.client_id == client_id


def ensure_sees_client(user: Principal, client_id: uuid.UUID, what: str = "object") -> None:
    """Raise the same 404 as a missing `what` unless `user` may see objects of `client_id`."""
    if not sees_client(user, client_id):
        raise NotFound(f"{what} not found")
