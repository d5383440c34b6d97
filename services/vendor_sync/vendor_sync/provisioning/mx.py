"""Pointing a zone's apex MX at a spam filter's inbound hosts: a diff against what the DNS host holds (pure).

The diff is what makes the step idempotent: run again after a crash or a retry, it finds the records
it already created and creates nothing twice. New records are created before the old ones are deleted,
so the zone never goes without an MX in between.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vendor_sync.adapters.dns_types import DnsRecord


def host(value: str) -> str:
    """A host name as the registry compares it: lower-case, without the trailing dot."""
    return value.strip().lower().rstrip(".")


def apex_mx(records: Iterable[DnsRecord], apex: str) -> list[DnsRecord]:
    """The zone's MX records at its apex (the ones mail for the domain follows)."""
    return [r for r in records if r.type.upper() == "MX" and host(r.name) == host(apex)]


def mx_values(records: Iterable[DnsRecord]) -> list[str]:
    """MX records as the domain's last known state holds them: "priority host", by priority then text."""
    values = {f"{r.priority if r.priority is not None else 0} {host(r.content)}" for r in records}
    return sorted(values, key=lambda v: (int(v.split(" ", 1)[0]), v))


@dataclass(frozen=True)
class MxChanges:
    """What to create and delete so the apex MX is exactly the wanted hosts; `keep` already is."""

    create: tuple[DnsRecord, ...]
    delete: tuple[DnsRecord, ...]
    keep: tuple[DnsRecord, ...]


def mx_changes(records: Sequence[DnsRecord], apex: str, wanted: Sequence[tuple[int, str]], ttl: int) -> MxChanges:
    """Keep the apex MX records that are a wanted (priority, host); delete the rest; create the missing ones."""
    wanted_set = {(priority, host(target)) for priority, target in wanted}
    keep: list[DnsRecord] = []
    delete: list[DnsRecord] = []
    seen: set[tuple[int, str]] = set()
    for record in apex_mx(records, apex):
        pair = (record.priority if record.priority is not None else 0, host(record.content))
        # A second record with the same pair (a duplicate at the host) goes too.
        if pair in wanted_set and pair not in seen:
            keep.append(record)
            seen.add(pair)
        else:
            delete.append(record)
    create = tuple(
        DnsRecord(type="MX", name=host(apex), content=target, ttl=ttl, priority=priority)
        for priority, target in sorted(wanted_set)
        if (priority, target) not in seen
    )
    return MxChanges(create=create, delete=tuple(delete), keep=tuple(keep))


def after_changes(changes: MxChanges, created: Sequence[DnsRecord]) -> list[DnsRecord]:
    """The apex MX once the changes are made: what was kept plus what the host created."""
    return [*changes.keep, *created]
