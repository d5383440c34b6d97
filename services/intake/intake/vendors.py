"""vendor_sync's registry as intake sees it: vendor accounts and vendors, read with intake's service token."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from intake.settings import Settings, get_settings
from mspkit.errors import NotFound, Unavailable
from mspkit.service_tokens import ServiceClient, service_client
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


# DESIGN.md § Contract: intake: request expansion waits this long for the registry, then scopes the
# task by its categories alone.
SCOPE_DEADLINE_S: Final = 2.0
# A client with more accounts than this many full pages is not one a request is scoped from.
MAX_ACCOUNT_PAGES: Final = 25
PAGE_SIZE: Final = 200


@dataclass(frozen=True)
class ClientAccount:
    """One of a client's vendor accounts as request expansion sees it (vendor name and adapter when read)."""

    id: uuid.UUID
    vendor_id: uuid.UUID
    vendor_kind: str
    vendor_name: str | None = None
    vendor_adapter: str | None = None
    vendor_support_email: str | None = None


def _unreadable() -> Unavailable:
    return Unavailable("vendor registry gave an unreadable answer")


def _account_not_found() -> NotFound:
    # The same answer for a missing account and another client's: nothing tells them apart.
    return NotFound("vendor account not found", field="vendor_account_id")


class VendorRegistry:
    """Reads vendor_sync's registry API; unreachable or garbled answers become 503."""

    def __init__(self, settings: Settings) -> None:
        url, timeout_s = settings.vendor_sync_url, settings.vendor_sync_timeout_s
        self._http = service_client(settings, base_url=url, audience="vendor_sync", timeout_s=timeout_s)
        # Its own client: expansion's deadline is the contract's 2 s, not the registry's usual timeout.
        self._scoping_http = service_client(settings, base_url=url, audience="vendor_sync", timeout_s=SCOPE_DEADLINE_S)

    def _get(
        self, path: str, *, http: ServiceClient | None = None, params: dict[str, str] | None = None
    ) -> dict[str, Any] | None:
        """The JSON object at `path`, None on 404; anything else unexpected is 503."""
        data = (http or self._http).read_json(path, params=params)
        if data is None:
            return None
        if not isinstance(data, dict):
            raise _unreadable()
        return data

    def client_accounts(
        self, client_id: uuid.UUID, *, vendor_kinds: frozenset[str], deadline_s: float = SCOPE_DEADLINE_S
    ) -> tuple[ClientAccount, ...]:
        """The client's live vendor accounts, with vendor name and adapter for those of `vendor_kinds`.

        Raises Unavailable (503) when vendor_sync does not answer in full within `deadline_s`; a client
        vendor_sync does not know has no accounts.
        """
        http = self._scoping_http
        started = time.monotonic()

        def read(path: str, params: dict[str, str] | None = None) -> dict[str, Any] | None:
            data = self._get(path, http=http, params=params)
            if time.monotonic() - started > deadline_s:
                raise Unavailable(f"vendor registry did not answer within {deadline_s:g} s")
            return data

        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(MAX_ACCOUNT_PAGES):
            params = {"limit": str(PAGE_SIZE), **({"cursor": cursor} if cursor else {})}
            page = read(f"/v1/clients/{client_id}/vendor-accounts", params)
            if page is None:
                return ()
            items, cursor = page.get("items"), page.get("next_cursor")
            if not isinstance(items, list) or not (cursor is None or isinstance(cursor, str)):
                raise _unreadable()
            rows.extend(items)
            if cursor is None:
                break
        else:
            raise Unavailable("vendor registry listed more accounts than a request is scoped from")
        try:
            accounts = [
                ClientAccount(
                    id=uuid.UUID(str(row["id"])),
                    vendor_id=uuid.UUID(str(row["vendor_id"])),
                    vendor_kind=str(row["vendor_kind"]),
                )
                for row in rows
                # Archived accounts are kept for the record only; no new work is scoped to them.
                if not (row.get("archived_at") or row.get("status") == "archived")
                and uuid.UUID(str(row["client_id"])) == client_id
            ]
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise _unreadable() from exc
        vendors: dict[uuid.UUID, dict[str, Any]] = {}
        for vendor_id in dict.fromkeys(a.vendor_id for a in accounts if a.vendor_kind in vendor_kinds):
            vendors[vendor_id] = read(f"/v1/vendors/{vendor_id}") or {}
        return tuple(_with_vendor(a, vendors.get(a.vendor_id)) for a in accounts)

    def vendor_exists(self, vendor_id: uuid.UUID) -> bool:
        """Whether vendor_sync's registry knows this vendor (vendors are shared by every client)."""
        return self._get(f"/v1/vendors/{vendor_id}") is not None

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
            raise _unreadable() from exc
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


def _with_vendor(account: ClientAccount, vendor: dict[str, Any] | None) -> ClientAccount:
    """The account with its vendor's name and adapter, when its vendor was read."""
    if not vendor:
        return account
    name, adapter, email = vendor.get("name"), vendor.get("adapter"), vendor.get("support_email")
    return ClientAccount(
        id=account.id,
        vendor_id=account.vendor_id,
        vendor_kind=account.vendor_kind,
        vendor_name=str(name) if name else None,
        vendor_adapter=str(adapter) if adapter else None,
        vendor_support_email=str(email) if email else None,
    )


@lru_cache
def get_registry() -> VendorRegistry:
    """The process's registry client (one token cache, one connection pool)."""
    return VendorRegistry(get_settings())
