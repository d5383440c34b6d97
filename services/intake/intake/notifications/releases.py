"""The broker's release as intake reads it for the access alert (`GET /internal/releases/{id}`).

Events carry ids only, so the alert's details (the credential's name, the reason, who) are read
back with intake's token for the broker alone. A release the broker does not know is None; when the
broker does not answer, or answers off-shape, `Unavailable` (the job retries).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from intake.settings import Settings, get_settings
from mspkit.errors import Unavailable
from mspkit.service_tokens import service_client


@dataclass(frozen=True)
class ReleaseFacts:
    """What the alert says about a release: ids, names, the reason and the time; never a token."""

    id: uuid.UUID
    client_id: uuid.UUID
    task_id: uuid.UUID | None
    credential_name: str
    recipient_kind: str
    recipient_sub: str | None
    recipient_name: str | None
    party_category: str | None
    reason: str
    created_at: datetime

    @classmethod
    def parse(cls, data: Any, release_id: uuid.UUID) -> ReleaseFacts:
        """Read the broker's answer; anything off-shape is `Unavailable`."""
        try:
            recipient = data["recipient"]
            facts = cls(
                id=uuid.UUID(str(data["id"])),
                client_id=uuid.UUID(str(data["client_id"])),
                task_id=uuid.UUID(str(data["task_id"])) if data.get("task_id") else None,
                credential_name=str(data["credential_name"]),
                recipient_kind=str(recipient["kind"]),
                recipient_sub=recipient.get("sub"),
                recipient_name=recipient.get("name"),
                party_category=recipient.get("party_category"),
                reason=str(data.get("reason") or ""),
                created_at=datetime.fromisoformat(str(data["created_at"]).replace("Z", "+00:00")),
            )
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise Unavailable("the broker gave an unreadable answer") from exc
        if facts.id != release_id:
            raise Unavailable("the broker answered for another release")
        return facts


class BrokerReleases:
    """Reads releases from the secrets broker."""

    def __init__(self, settings: Settings) -> None:
        self._http = service_client(
            settings,
            base_url=settings.secrets_broker_url,
            audience="secrets_broker",
            timeout_s=settings.secrets_broker_timeout_s,
        )

    def get(self, release_id: uuid.UUID) -> ReleaseFacts | None:
        """The release, or None when the broker does not know it."""
        data = self._http.read_json(f"/internal/releases/{release_id}")
        return None if data is None else ReleaseFacts.parse(data, release_id)


@lru_cache
def get_releases() -> BrokerReleases:
    """The process's broker client (one token cache, one connection pool)."""
    return BrokerReleases(get_settings())
