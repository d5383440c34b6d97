"""What a registrar adapter offers (a Protocol with declared capabilities) and the records it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

# Capability names an adapter may declare; sync and provisioning check them before calling.
DOMAINS_READ = "domains.read"
NAMESERVERS_WRITE = "nameservers.write"
CONTACTS_WRITE = "contacts.write"
LOCK_WRITE = "lock.write"
KNOWN_CAPABILITIES = frozenset({DOMAINS_READ, NAMESERVERS_WRITE, CONTACTS_WRITE, LOCK_WRITE})

# A vendor's own status word folded into the few states sync and expiry care about.
Lifecycle = Literal["active", "pending", "expired", "cancelled", "transferred_out", "other"]


@dataclass(frozen=True)
class RegistrarContact:
    """One contact of a domain at its registrar (no postal address: sync does not need it)."""

    role: Literal["registrant", "admin", "tech", "billing"]
    name_first: str | None = None
    name_last: str | None = None
    organization: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class RegistrarDomain:
    """A domain as its registrar account reports it; None means the vendor did not say."""

    name: str
    status: str
    lifecycle: Lifecycle
    vendor_id: str | None = None
    expires_at: datetime | None = None
    created_at: datetime | None = None
    renew_deadline: datetime | None = None
    renew_auto: bool | None = None
    locked: bool | None = None
    privacy: bool | None = None
    # None: this answer did not include nameservers (a listing); () would mean "none set".
    nameservers: tuple[str, ...] | None = None
    contacts: tuple[RegistrarContact, ...] | None = None


@runtime_checkable
class RegistrarAdapter(Protocol):
    """Reads (and, where `capabilities` says so, changes) the domains of one registrar account."""

    vendor: str
    capabilities: frozenset[str]

    def list_domains(self) -> list[RegistrarDomain]:
        """Every domain of the account, all pages; raises mspkit.http Vendor* errors."""
        ...

    def get_domain(self, name: str) -> RegistrarDomain:
        """One domain with its nameservers and contacts; VendorNotFound when the account lacks it."""
        ...


@runtime_checkable
class RegistrarWriter(Protocol):
    """Changes a domain at its registrar; each method only where `capabilities` declares its *_WRITE name.

    A write returns nothing: the next read (get_domain) is the source of truth. Bad input is refused before
    any call; vendor failures raise mspkit.http Vendor* errors (VendorConflict when the domain's state
    forbids the change).
    """

    vendor: str
    capabilities: frozenset[str]

    def set_nameservers(self, name: str, nameservers: Sequence[str]) -> None:
        """Point the domain at these nameservers (NAMESERVERS_WRITE)."""
        ...

    def set_contacts(self, name: str, contacts: Sequence[RegistrarContact]) -> None:
        """Change the given roles' fields (None leaves a field as it is), keeping everything else (CONTACTS_WRITE)."""
        ...

    def set_lock(self, name: str, locked: bool) -> None:
        """Set or clear the registrar transfer lock (LOCK_WRITE)."""
        ...
