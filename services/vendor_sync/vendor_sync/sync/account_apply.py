"""Applying an account sync's plan to the registry, in the caller's transaction, and what it changed.

Zones and domains are linked to (or unlinked from) the account; the domain rows themselves are kept.
A zone's MX targets and a domain's nameservers and transfer lock are the last known state that drift
is measured against: a change from a known value records a drift event, which becomes an intake task.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects.postgresql import insert

from vendor_sync.domains.models import DnsRecord as RecordRow
from vendor_sync.domains.models import Domain, DriftEvent
from vendor_sync.settings import Settings
from vendor_sync.sync.expiry import record_expiry_warning
from vendor_sync.sync.plan import Change, Plan

DOMAINS = Domain.__table__
RECORDS = RecordRow.__table__
DRIFT = DriftEvent.__table__
# The API shows at most this many changes per run; the plan's counts are always complete.
MAX_CHANGES_SHOWN = 1000


@dataclass(frozen=True)
class Account:
    """The account a sync applies to."""

    id: uuid.UUID
    client_id: uuid.UUID
    kind: str  # dns_host | registrar


@dataclass
class Applied:
    """What the apply did: the shown changes (with registry ids) and how many drift events it recorded."""

    changes: list[dict[str, Any]] = field(default_factory=list)
    drift: int = 0


def change_view(change: Change, object_id: uuid.UUID | None) -> dict[str, Any]:
    """A change as `GET /v1/sync-runs/{id}` shows it."""
    label = {
        "zone": lambda k: k[1],
        "domain": lambda k: k[1],
        "record": lambda k: f"{k[3]} {k[2]} {k[4]}",
    }[change.object](change.key)
    return {
        "action": change.action,
        "object": change.object,
        "id": str(object_id) if object_id else None,
        "name": label,
        "before": dict(change.before) if change.before is not None else None,
        "after": dict(change.after) if change.after is not None else None,
    }


def preview(conn: Connection, account: Account, plan: Plan) -> list[dict[str, Any]]:
    """The plan's changes as the API shows them, applying nothing (a dry run, or a refused plan)."""
    shown = plan.changes[:MAX_CHANGES_SHOWN]
    ids = _domain_ids(conn, account.client_id, {change.key[1] for change in shown})
    return [change_view(change, ids.get(change.key[1]) if change.object != "record" else None) for change in shown]


def _domain_ids(conn: Connection, client_id: uuid.UUID, names: set[str]) -> dict[str, uuid.UUID]:
    if not names:
        return {}
    rows = conn.execute(
        select(DOMAINS.c.name, DOMAINS.c.id).where(DOMAINS.c.client_id == client_id, DOMAINS.c.name.in_(names))
    ).all()
    return {row.name: row.id for row in rows}


def _link(conn: Connection, account: Account, name: str, column: str, values: dict[str, Any], now: datetime) -> None:
    row = {
        "id": uuid.uuid4(),
        "client_id": account.client_id,
        "name": name,
        "unicode_name": name,
        column: account.id,
        **values,
        "row_created_at": now,
        "next_check_at": now,
    }
    # A zone or domain the client already has is linked, never duplicated (unique per client and name).
    conn.execute(
        insert(DOMAINS)
        .values(row)
        .on_conflict_do_update(constraint="uq_domains_client_name", set_={column: account.id, **values})
    )


def _drift(
    domain: dict[str, Any], run_id: uuid.UUID, account: Account, name: str, old: Any, new: Any, now: datetime
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "client_id": account.client_id,
        "domain_id": domain["id"],
        "vendor_account_id": account.id,
        "sync_run_id": run_id,
        "kind": "change",
        "field": name,
        "old": old,
        "new": new,
        "detected_at": now,
    }


def apply_dns(
    conn: Connection, account: Account, plan: Plan, run_id: uuid.UUID, now: datetime, settings: Settings
) -> Applied:
    """Link, update and unlink zones, write their records, then move each touched zone's MX state."""
    applied = Applied()
    for change in plan.changes:
        if change.object != "zone":
            continue
        name = change.key[1]
        if change.action == "delete":
            conn.execute(
                update(DOMAINS)
                .where(DOMAINS.c.client_id == account.client_id, DOMAINS.c.name == name)
                .values(dns_host_account_id=None, dns_zone_id=None)
            )
        else:
            _link(conn, account, name, "dns_host_account_id", {"dns_zone_id": (change.after or {}).get("zone_id")}, now)
    zones = {c.key[1] for c in plan.changes}
    ids = _domain_ids(conn, account.client_id, zones)
    touched: set[uuid.UUID] = set()
    for change in plan.changes:
        domain_id = ids.get(change.key[1])
        if change.object == "record" and domain_id is not None:
            _, _, rtype, rname, content = change.key
            touched.add(domain_id)
            match = (
                (RECORDS.c.domain_id == domain_id)
                & (RECORDS.c.type == rtype)
                & (RECORDS.c.name == rname)
                & (RECORDS.c.content == content)
            )
            if change.action == "delete":
                conn.execute(delete(RECORDS).where(match))
            elif change.action == "update":
                conn.execute(update(RECORDS).where(match).values(**dict(change.after or {}), updated_at=now))
            else:
                conn.execute(
                    insert(RECORDS)
                    .values(
                        id=uuid.uuid4(),
                        domain_id=domain_id,
                        type=rtype,
                        name=rname,
                        content=content,
                        **dict(change.after or {}),
                        created_at=now,
                        updated_at=now,
                    )
                    .on_conflict_do_nothing()
                )
        if len(applied.changes) < MAX_CHANGES_SHOWN:
            applied.changes.append(change_view(change, domain_id))
    applied.drift = _move_mx(conn, account, touched, run_id, now)
    return applied


def _move_mx(conn: Connection, account: Account, domain_ids: set[uuid.UUID], run_id: uuid.UUID, now: datetime) -> int:
    """Recompute each zone's apex MX targets; a change from a known value is drift."""
    if not domain_ids:
        return 0
    domains = {
        row["id"]: dict(row)
        for row in conn.execute(
            select(DOMAINS.c.id, DOMAINS.c.name, DOMAINS.c.mx).where(DOMAINS.c.id.in_(domain_ids)).with_for_update()
        ).mappings()
    }
    mx: dict[uuid.UUID, list[str]] = defaultdict(list)
    for row in conn.execute(
        select(RECORDS.c.domain_id, RECORDS.c.name, RECORDS.c.content, RECORDS.c.priority).where(
            RECORDS.c.domain_id.in_(domain_ids), RECORDS.c.type == "MX"
        )
    ):
        if row.name == domains[row.domain_id]["name"]:
            mx[row.domain_id].append(
                f"{row.priority if row.priority is not None else 0} {row.content.lower().rstrip('.')}"
            )
    drift = []
    for domain_id, domain in domains.items():
        new = sorted(mx.get(domain_id, []), key=lambda v: (int(v.split(" ", 1)[0]), v))
        old = domain["mx"] or []
        if new == old:
            continue
        if old:
            drift.append(_drift(domain, run_id, account, "mx", old, new, now))
        conn.execute(update(DOMAINS).where(DOMAINS.c.id == domain_id).values(mx=new))
    if drift:
        conn.execute(insert(DRIFT), drift)
    return len(drift)


def apply_registrar(
    conn: Connection, account: Account, plan: Plan, run_id: uuid.UUID, now: datetime, settings: Settings
) -> Applied:
    """Link, update and unlink domains; a changed transfer lock or nameservers from a known value is drift,
    and an expiry within the warning window an expiry warning (once per date, shared with RDAP refreshes)."""
    applied = Applied()
    drift = []
    for change in plan.changes:
        name = change.key[1]
        after = dict(change.after or {})
        if change.action == "delete":
            conn.execute(
                update(DOMAINS)
                .where(DOMAINS.c.client_id == account.client_id, DOMAINS.c.name == name)
                .values(registrar_account_id=None)
            )
        else:
            current = (
                conn.execute(
                    select(DOMAINS.c.id, DOMAINS.c.transfer_lock, DOMAINS.c.nameservers)
                    .where(DOMAINS.c.client_id == account.client_id, DOMAINS.c.name == name)
                    .with_for_update()
                )
                .mappings()
                .first()
            )
            values: dict[str, Any] = {"transfer_lock": after.get("transfer_lock")}
            if after.get("nameservers") is not None:
                values["nameservers"] = after["nameservers"]
            if after.get("expires_at") is not None:
                values["expires_at"] = datetime.fromisoformat(after["expires_at"].replace("Z", "+00:00"))
            if current is not None:
                for field_name, old in (
                    ("transfer_lock", current["transfer_lock"]),
                    ("nameservers", current["nameservers"] or None),
                ):
                    new = values.get(field_name)
                    if old is not None and new is not None and old != new:
                        drift.append(_drift(dict(current), run_id, account, field_name, old, new, now))
            _link(conn, account, name, "registrar_account_id", values, now)
            if values.get("expires_at") is not None:
                linked = (
                    conn.execute(
                        select(DOMAINS.c.id, DOMAINS.c.client_id)
                        .where(DOMAINS.c.client_id == account.client_id, DOMAINS.c.name == name)
                        .with_for_update()
                    )
                    .mappings()
                    .one()
                )
                warned = record_expiry_warning(
                    conn,
                    domain=linked,
                    expires_at=values["expires_at"],
                    run_id=run_id,
                    now=now,
                    settings=settings,
                    vendor_account_id=account.id,
                )
                applied.drift += int(warned)
        if len(applied.changes) < MAX_CHANGES_SHOWN:
            applied.changes.append(change_view(change, None))
    ids = _domain_ids(conn, account.client_id, {c["name"] for c in applied.changes})
    for view in applied.changes:
        found = ids.get(view["name"])
        view["id"] = str(found) if found else None
    if drift:
        conn.execute(insert(DRIFT), drift)
    applied.drift += len(drift)
    return applied
