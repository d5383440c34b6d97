"""An account sync's plan: what to create, update and delete in the registry, and the delete threshold.

Pure: both sides are maps from an object's identity to its attributes, read before anything changes,
as octodns plans a zone. The threshold stops a vendor outage that answers an empty list from
wiping an account's registry: more than `MIN_DELETES` deletes that are also more than
`MAX_DELETE_SHARE` of the account's objects are refused unless the sync is forced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

MIN_DELETES = 10
MAX_DELETE_SHARE = 0.25

Action = Literal["create", "update", "delete"]
# ("zone", name), ("record", zone, type, name, content), ("domain", name)
Key = tuple[str, ...]
Attrs = Mapping[str, Any]


@dataclass(frozen=True)
class Change:
    """One planned change of one registry object; `before`/`after` are its attributes (None when absent)."""

    action: Action
    key: Key
    before: Attrs | None
    after: Attrs | None

    @property
    def object(self) -> str:
        """The object's kind: zone, record or domain."""
        return self.key[0]


@dataclass(frozen=True)
class Plan:
    """The changes that make the registry match the vendor, in a stable order (creates, updates, deletes)."""

    changes: tuple[Change, ...]
    # How many objects the registry held for the account before the sync.
    existing: int
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, action: Action) -> int:
        """How many changes of one action the plan holds."""
        return self.counts.get(action, 0)

    def exceeds_delete_threshold(self) -> bool:
        """True when the deletes pass both the absolute floor and the share of the account's objects."""
        deletes = self.count("delete")
        return deletes > MIN_DELETES and deletes > MAX_DELETE_SHARE * self.existing

    def summary(self) -> dict[str, int]:
        """`{create, update, delete}` counts, as `GET /v1/sync-runs/{id}` shows them."""
        return {action: self.count(action) for action in ("create", "update", "delete")}


def build_plan(current: Mapping[Key, Attrs], desired: Mapping[Key, Attrs]) -> Plan:
    """Compare the registry's objects (`current`) with the vendor's (`desired`) and list the changes."""
    creates = [Change("create", key, None, desired[key]) for key in sorted(desired.keys() - current.keys())]
    updates = [
        Change("update", key, current[key], desired[key])
        for key in sorted(desired.keys() & current.keys())
        if dict(current[key]) != dict(desired[key])
    ]
    deletes = [Change("delete", key, current[key], None) for key in sorted(current.keys() - desired.keys())]
    counts = {"create": len(creates), "update": len(updates), "delete": len(deletes)}
    return Plan(changes=(*creates, *updates, *deletes), existing=len(current), counts=counts)
