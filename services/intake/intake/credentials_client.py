"""The broker's credential metadata as intake reads it (`GET /internal/credentials/{id}`, never a secret).

Read with intake's token for the broker alone. A credential the broker does not know is None; when
the broker does not answer (unreachable, slow, refused token, garbled answer) the answer is 503.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import lru_cache

from intake.settings import Settings, get_settings
from mspkit.errors import Unavailable
from mspkit.service_tokens import service_client


@dataclass(frozen=True)
class CredentialInfo:
    """What intake reads of a credential: whose it is, who stored it, and the task it was stored for."""

    client_id: uuid.UUID
    created_by: str
    # Set by the broker for a credential `svc:vendor_sync` stored while provisioning a task; None
    # when the broker did not record one (or does not record it yet).
    task_id: uuid.UUID | None


class BrokerCredentials:
    """Reads credential metadata from the secrets broker."""

    def __init__(self, settings: Settings) -> None:
        self._http = service_client(
            settings,
            base_url=settings.secrets_broker_url,
            audience="secrets_broker",
            timeout_s=settings.secrets_broker_timeout_s,
        )

    def info(self, credential_id: uuid.UUID) -> CredentialInfo | None:
        """The credential's owner, creator and task, or None when the broker does not know it."""
        data = self._http.read_json(f"/internal/credentials/{credential_id}")
        if data is None:
            return None
        try:
            answered_for = uuid.UUID(str(data["id"]))
            owner = uuid.UUID(str(data["client_id"]))
            created_by = data["created_by"]
            task = data.get("task_id")
            task_id = None if task is None else uuid.UUID(str(task))
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise Unavailable("the broker gave an unreadable answer") from exc
        if not isinstance(created_by, str):
            raise Unavailable("the broker gave an unreadable answer")
        if answered_for != credential_id:
            raise Unavailable("the broker answered for another credential")
        return CredentialInfo(client_id=owner, created_by=created_by, task_id=task_id)

    def client_of(self, credential_id: uuid.UUID) -> uuid.UUID | None:
        """The client that owns the credential, or None when the broker does not know it."""
        info = self.info(credential_id)
        return None if info is None else info.client_id


@lru_cache
def get_credentials() -> BrokerCredentials:
    """The process's broker client (one token cache, one connection pool)."""
    return BrokerCredentials(get_settings())
