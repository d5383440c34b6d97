"""Both sides of an account sync as plan inputs: the registry's objects and the vendor's, keyed alike.

A DNS host's objects are its zones (`("zone", name)`) and their records
(`("record", zone, type, name, content)`); a registrar's are its domains (`("domain", name)`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from vendor_sync.adapters.dns_types import DnsRecord, Zone
from vendor_sync.adapters.registrar_types import RegistrarDomain
from vendor_sync.domains.models import DnsRecord as RecordRow
from vendor_sync.domains.models import Domain
from vendor_sync.domains.names import normalize_domain_name
from vendor_sync.sync.plan import Attrs, Key

DOMAINS = Domain.__table__
RECORDS = RecordRow.__table__


@dataclass(frozen=True)
class VendorSnapshot:
    """What the vendor reported for an account, already keyed; names the registry cannot hold are skipped."""

    objects: dict[Key, Attrs]
    skipped: int = 0


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _name(text: str) -> str | None:
    try:
        return normalize_domain_name(text)[0]
    except ValueError:
        return None


def record_key(zone: str, record: DnsRecord) -> Key:
    """A record's identity: its zone, type, owner name and content (several A or MX records share a name)."""
    return ("record", zone, record.type.upper(), record.name.lower().rstrip("."), record.content)


def dns_vendor_state(zones: Iterable[tuple[Zone, list[DnsRecord]]]) -> VendorSnapshot:
    """A DNS host's zones and records as plan objects."""
    objects: dict[Key, Attrs] = {}
    skipped = 0
    for zone, records in zones:
        name = _name(zone.name)
        if name is None:
            skipped += 1
            continue
        objects[("zone", name)] = {"zone_id": zone.id}
        for record in records:
            objects[record_key(name, record)] = {
                "ttl": record.ttl,
                "priority": record.priority,
                "vendor_record_id": record.id,
            }
    return VendorSnapshot(objects, skipped)


def dns_registry_state(conn: Connection, account_id: uuid.UUID) -> dict[Key, Attrs]:
    """The zones linked to a DNS-host account and their records, as the registry holds them."""
    zones = conn.execute(
        select(DOMAINS.c.id, DOMAINS.c.name, DOMAINS.c.dns_zone_id).where(DOMAINS.c.dns_host_account_id == account_id)
    ).all()
    objects: dict[Key, Attrs] = {("zone", z.name): {"zone_id": z.dns_zone_id} for z in zones}
    names = {z.id: z.name for z in zones}
    if names:
        rows = conn.execute(select(RECORDS).where(RECORDS.c.domain_id.in_(list(names)))).all()
        for row in rows:
            key = ("record", names[row.domain_id], row.type, row.name, row.content)
            objects[key] = {"ttl": row.ttl, "priority": row.priority, "vendor_record_id": row.vendor_record_id}
    return objects


def registrar_vendor_state(domains: Iterable[RegistrarDomain], current: Mapping[Key, Attrs]) -> VendorSnapshot:
    """A registrar's domains as plan objects; what the listing did not say keeps the registry's value."""
    objects: dict[Key, Attrs] = {}
    skipped = 0
    for domain in domains:
        name = _name(domain.name)
        if name is None:
            skipped += 1
            continue
        known = current.get(("domain", name), {})
        reported: dict[str, Any] = {
            "expires_at": _iso(domain.expires_at),
            "transfer_lock": domain.locked,
            "nameservers": sorted({ns.lower().rstrip(".") for ns in domain.nameservers})
            if domain.nameservers is not None
            else None,
        }
        objects[("domain", name)] = {
            field: value if value is not None else known.get(field) for field, value in reported.items()
        }
    return VendorSnapshot(objects, skipped)


def registrar_registry_state(conn: Connection, account_id: uuid.UUID) -> dict[Key, Attrs]:
    """The domains linked to a registrar account, with the fields a registrar reports."""
    rows = conn.execute(
        select(DOMAINS.c.name, DOMAINS.c.expires_at, DOMAINS.c.transfer_lock, DOMAINS.c.nameservers).where(
            DOMAINS.c.registrar_account_id == account_id
        )
    ).all()
    return {
        ("domain", row.name): {
            "expires_at": _iso(row.expires_at),
            "transfer_lock": row.transfer_lock,
            "nameservers": sorted(row.nameservers) if row.nameservers else None,
        }
        for row in rows
    }
