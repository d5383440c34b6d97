"""What every vendor adapter offers, and the records they return."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable


@dataclass(frozen=True)
class AbuseContact:
    """The registrar's abuse contact as published in RDAP."""

    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class DomainRecord:
    """Registration data of one domain; every field may be None when redacted or absent."""

    name: str
    unicode_name: str
    registrar: str | None = None
    registrar_iana_id: int | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    last_changed_at: datetime | None = None
    statuses: tuple[str, ...] = ()
    nameservers: tuple[str, ...] = ()
    dnssec: bool | None = None
    abuse_contact: AbuseContact | None = None
    # Where the data came from (redacted URLs), for drift reports and debugging.
    sources: tuple[str, ...] = field(default=(), compare=False)
    registrar_data: Literal["none", "followed", "not_allowed", "failed"] = field(default="none", compare=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (RFC 3339 times, lists) in the shape of the domain resource."""
        data = asdict(self)
        for key in ("created_at", "expires_at", "last_changed_at"):
            value = getattr(self, key)
            data[key] = value.isoformat().replace("+00:00", "Z") if value else None
        data["statuses"] = list(self.statuses)
        data["nameservers"] = list(self.nameservers)
        data["sources"] = list(self.sources)
        return data


@runtime_checkable
class DomainRegistryAdapter(Protocol):
    """Looks up registration data for a domain name (RDAP today; WHOIS or registrar APIs later)."""

    vendor: str

    def lookup_domain(self, name: str) -> DomainRecord:
        """Return the registration data of a domain; raises mspkit.http Vendor* errors."""
        ...
