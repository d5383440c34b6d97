"""vendor_sync's registry as the broker reads it: which client a vendor account belongs to.

Read live with the broker's token for vendor_sync alone (`GET /v1/vendor-accounts/{id}`); an
unreachable, slow, refusing or garbled registry is 503, never a guess.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final
from uuid import UUID

from mspkit.errors import Unavailable
from mspkit.service_tokens import ServiceClient, ServiceTokenSource, token_source
from secrets_broker.settings import get_settings

TIMEOUT_S: Final = 2.0


class VendorSyncUnavailable(Unavailable):
    """vendor_sync's registry could not be read."""


class VendorRegistry:
    """Calls vendor_sync's registry with the broker's service token, within a hard deadline."""

    def __init__(self, *, base_url: str, tokens: ServiceTokenSource, timeout_s: float = TIMEOUT_S) -> None:
        self._http = ServiceClient(
            base_url=base_url.rstrip("/"), audience="vendor_sync", tokens=tokens, timeout_s=timeout_s
        )

    def account_owner(self, account_id: UUID) -> UUID | None:
        """The client the vendor account belongs to; None when vendor_sync does not know the account."""
        body = self._http.read_json(f"/v1/vendor-accounts/{UUID(str(account_id))}", unavailable=VendorSyncUnavailable)
        if body is None:
            return None
        try:
            answered_for, owner = UUID(str(body["id"])), UUID(str(body["client_id"]))
        except (ValueError, KeyError, TypeError):
            raise VendorSyncUnavailable("vendor_sync's vendor account is malformed") from None
        if answered_for != account_id:
            raise VendorSyncUnavailable("vendor_sync answered for another vendor account")
        return owner


@lru_cache
def get_vendor_registry() -> VendorRegistry:
    """The process's vendor_sync registry client, authenticated as `svc:secrets_broker`."""
    settings = get_settings()
    return VendorRegistry(base_url=settings.vendor_sync_url, tokens=token_source(settings, timeout_s=TIMEOUT_S))
