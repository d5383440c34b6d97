"""What a DNS-host adapter offers (zones and their records), and the records it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

ZONES_READ = "zones.read"
RECORDS_READ = "records.read"
# Create, overwrite and delete single records (DnsWriter); provisioning checks it before calling.
RECORDS_WRITE = "records.write"


@dataclass(frozen=True)
class Zone:
    """One zone hosted at a DNS host; `id` is the vendor's own identifier."""

    id: str
    name: str
    status: str | None = None
    name_servers: tuple[str, ...] = ()


@dataclass(frozen=True)
class DnsRecord:
    """One DNS record in the registry's shape; `priority` only for MX (and SRV/URI), `ttl` 1 is the host's "auto"."""

    type: str
    name: str
    content: str
    ttl: int
    priority: int | None = None
    # The vendor's record id, needed to update or delete it; not part of the record's identity.
    id: str | None = field(default=None, compare=False)
    # Cloudflare's proxy flag (A/AAAA/CNAME only); None when the host has none or did not say.
    proxied: bool | None = field(default=None, compare=False)


@runtime_checkable
class DnsHostAdapter(Protocol):
    """Reads the zones of a DNS-host account and their records; raises mspkit.http Vendor* errors."""

    vendor: str
    capabilities: frozenset[str]

    def list_zones(self) -> list[Zone]:
        """Every zone the account's key can see."""
        ...

    def list_records(self, zone_id: str) -> list[DnsRecord]:
        """Every record of one zone."""
        ...


@runtime_checkable
class DnsWriter(Protocol):
    """Changes single records of a zone at a DNS host declaring RECORDS_WRITE; raises mspkit.http Vendor* errors."""

    vendor: str
    capabilities: frozenset[str]

    def create_record(self, zone_id: str, record: DnsRecord) -> DnsRecord:
        """Add one record; returns it as the host stored it, with its vendor id."""
        ...

    def update_record(self, zone_id: str, record_id: str, record: DnsRecord) -> DnsRecord:
        """Overwrite one record by its vendor id; returns it as the host stored it."""
        ...

    def delete_record(self, zone_id: str, record_id: str) -> None:
        """Remove one record by its vendor id."""
        ...
