"""Need-to-know: which clients a technician may see (one pure rule for every service).

DESIGN.md § Contract: staff directory and need-to-know. intake keeps the staff directory; each
service resolves a technician's `StaffView` per request (intake from its table, the others from
intake's `GET /internal/staff/{sub}`) and hands it to `need_to_know` with the object's client.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from mspkit.vocabulary import STAFF_ROLES

STAFF_CHANGED: Final = "staff.changed"


class MalformedStaffView(ValueError):
    """intake's staff view did not have the contract's shape (callers fail closed on it)."""


@dataclass(frozen=True)
class StaffView:
    """What need-to-know reads of a staff row: who, whether active, and which clients (None: every one)."""

    sub: str
    role: str
    active: bool
    client_ids: frozenset[uuid.UUID] | None

    @classmethod
    def from_json(cls, body: Any) -> StaffView:
        """Parse the contract's staff body (hostile input: anything off-shape raises MalformedStaffView)."""
        if not isinstance(body, Mapping):
            raise MalformedStaffView("staff view is not an object")
        sub, role, active, client_ids = (body.get(k) for k in ("sub", "role", "active", "client_ids"))
        if not isinstance(sub, str) or not sub or role not in STAFF_ROLES or not isinstance(active, bool):
            raise MalformedStaffView("staff view lacks sub, role or active")
        if client_ids is None:
            return cls(sub=sub, role=str(role), active=active, client_ids=None)
        if not isinstance(client_ids, list):
            raise MalformedStaffView("staff view's client_ids is not a list")
        try:
            ids = frozenset(uuid.UUID(str(value)) for value in client_ids)
        except ValueError:
            raise MalformedStaffView("staff view's client_ids holds a non-uuid") from None
        return cls(sub=sub, role=str(role), active=active, client_ids=ids)

    def to_json(self) -> dict[str, Any]:
        """The contract's field names for the four values need-to-know reads."""
        ids = None if self.client_ids is None else sorted(str(i) for i in self.client_ids)
        return {"sub": self.sub, "role": self.role, "active": self.active, "client_ids": ids}


def need_to_know(staff: StaffView | None, client_id: uuid.UUID, *, assigned: bool = False) -> bool:
    """Whether a technician with `staff` may see an object of `client_id` (`assigned`: a task assigned to them)."""
    if staff is None or not staff.active:
        return False  # no staff row, or deactivated: reads nothing
    return assigned or staff.client_ids is None or client_id in staff.client_ids


def known_clients(staff: StaffView | None) -> frozenset[uuid.UUID] | None:
    """The clients a technician's lists are limited to (None: every client; empty: none)."""
    if staff is None or not staff.active:
        return frozenset()
    return staff.client_ids
