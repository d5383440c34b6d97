"""vendor_sync's registry as intake sees it: vendor accounts and vendors, read with intake's service token."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httpx

from intake.settings import Settings, get_settings
from mspkit.errors import NotFound, Unauthenticated, Unavailable
from mspkit.service_tokens import ServiceClient, token_source
from mspkit.vocabulary import KIND_TO_CATEGORY


@dataclass(frozen=True)
class VendorAccountInfo:
    """What intake needs to know about one vendor account."""

    id: uuid.UUID
    client_id: uuid.UUID
    vendor_id: uuid.UUID
    vendor_kind: str
    contact_ids: frozenset[str] | None
    vendor_name: str | None = None
    support_email: str | None = None

    @property
    def credential_category(self) -> str:
        """The credential category of the vendor's kind."""
        return KIND_TO_CATEGORY.get(self.vendor_kind, "other")


def _account_not_found() -> NotFound:
    # The same answer for a missing account and another client's: nothing tells them apart.
    return NotFound("vendor account not found", field="vendor_account_id")


class VendorRegistry:
    """Reads vendor_sync's registry API; unreachable or garbled answers become 503."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: ServiceClient | None = None
        self._lock = threading.Lock()

    def _http(self) -> ServiceClient:
        with self._lock:
            if self._client is None:
                s = self._settings
                self._client = ServiceClient(
                    base_url=s.vendor_sync_url,
                    audience="vendor_sync",
                    tokens=token_source(s, timeout_s=s.vendor_sync_timeout_s),
                    timeout_s=s.vendor_sync_timeout_s,
                )
            return self._client

    def _get(self, path: str) -> dict[str, Any] | None:
        """The JSON object at `path`, None on 404; anything else unexpected is 503."""
        try:
            response = self._http().get(path)
        except (httpx.HTTPError, Unauthenticated) as exc:
            raise Unavailable("vendor registry unavailable") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise Unavailable("vendor registry unavailable")
        try:
            data = response.json()
        except ValueError as exc:
            raise Unavailable("vendor registry gave an unreadable answer") from exc
        if not isinstance(data, dict):
            raise Unavailable("vendor registry gave an unreadable answer")
        return data

    def account_for_client(
        self, account_id: uuid.UUID, client_id: uuid.UUID, *, with_vendor: bool
    ) -> VendorAccountInfo:
        """The vendor account if it belongs to `client_id` (else 404), with its vendor's name and email if asked."""
        data = self._get(f"/v1/vendor-accounts/{account_id}")
        if data is None:
            raise _account_not_found()
        try:
            owner = uuid.UUID(str(data["client_id"]))
            vendor_id = uuid.UUID(str(data["vendor_id"]))
            kind = str(data["vendor_kind"])
            contacts = data.get("contacts") or []
            ids = [str(c["id"]) for c in contacts if isinstance(c, dict) and c.get("id")]
        except (KeyError, ValueError, TypeError) as exc:
            raise Unavailable("vendor registry gave an unreadable answer") from exc
        if owner != client_id:
            raise _account_not_found()
        # Contact ids are checked only when the registry shows them for every contact.
        contact_ids = (
            frozenset(ids) if contacts and len(ids) == len(contacts) else (frozenset() if not contacts else None)
        )
        info = VendorAccountInfo(
            id=account_id, client_id=owner, vendor_id=vendor_id, vendor_kind=kind, contact_ids=contact_ids
        )
        if not with_vendor:
            return info
        vendor = self._get(f"/v1/vendors/{vendor_id}") or {}
        name = vendor.get("name")
        email = vendor.get("support_email")
        return VendorAccountInfo(
            id=info.id,
            client_id=info.client_id,
            vendor_id=info.vendor_id,
            vendor_kind=info.vendor_kind,
            contact_ids=info.contact_ids,
            vendor_name=str(name) if name else None,
            support_email=str(email) if email else None,
        )


@lru_cache
def get_registry() -> VendorRegistry:
    """The process's registry client (one token cache, one connection pool)."""
    return VendorRegistry(get_settings())
