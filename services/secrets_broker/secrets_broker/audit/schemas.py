"""Audit API shapes."""

from __future__ import annotations

import json
import uuid
from typing import Any

from pydantic import Field

from secrets_broker.audit.models import AuditEntry
from secrets_broker.common.types import Output, UtcDatetime


class AuditEntryPublic(Output):
    """One chain entry as the API shows it."""

    index: int
    action: str
    actor: str
    client_id: uuid.UUID | None
    task_id: uuid.UUID | None
    credential_id: uuid.UUID | None
    release_id: uuid.UUID | None
    rule: str | None
    details: dict[str, Any] = Field(default_factory=dict)
    prev_hash: str
    hash: str
    created_at: UtcDatetime

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryPublic:
        """Build from a row; the details come from the hashed canonical text itself."""
        try:
            details = json.loads(entry.canonical).get("details") or {}
        except (ValueError, AttributeError):
            details = {}
        return cls.model_validate({**entry.model_dump(), "details": details if isinstance(details, dict) else {}})


class VerifyPublic(Output):
    """`GET /v1/audit/verify`: `first_bad_index` is 0-based in chain order, null when ok."""

    ok: bool
    entries: int
    first_bad_index: int | None
