"""The broker's credential metadata as intake reads it (`GET /internal/credentials/{id}`, never a secret).

Read with intake's token for the broker alone. A credential the broker does not know is None; when
the broker does not answer (unreachable, slow, refused token, garbled answer) the answer is 503.
"""

from __future__ import annotations

import uuid
from functools import lru_cache

from intake.settings import Settings, get_settings
from mspkit.errors import Unavailable
from mspkit.service_tokens import service_client


class BrokerCredentials:
    """Reads credential metadata from the secrets broker."""

    def __init__(self, settings: Settings) -> None:
        self._http = service_client(
            settings,
            base_url=settings.secrets_broker_url,
            audience="secrets_broker",
            timeout_s=settings.secrets_broker_timeout_s,
        )

    def client_of(self, credential_id: uuid.UUID) -> uuid.UUID | None:
        """The client that owns the credential, or None when the broker does not know it."""
        data = self._http.read_json(f"/internal/credentials/{credential_id}")
        if data is None:
            return None
        try:
            answered_for = uuid.UUID(str(data["id"]))
            owner = uuid.UUID(str(data["client_id"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise Unavailable("the broker gave an unreadable answer") from exc
        if answered_for != credential_id:
            raise Unavailable("the broker answered for another credential")
        return owner


@lru_cache
def get_credentials() -> BrokerCredentials:
    """The process's broker client (one token cache, one connection pool)."""
    return BrokerCredentials(get_settings())
