"""vendor_contact_update: the contact changes at the registrar (where its adapter writes contacts), then
in the registry; otherwise one step for a person that says exactly what to change.

A registrar holds contacts per domain and per role (registrant, admin, tech, billing): a registry
contact whose role is one of those is set on every domain the account holds. Other roles, and
removals (a registrar keeps a registrant whatever we say), change the registry only.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from vendor_sync.adapters.registrar_types import CONTACTS_WRITE, RegistrarContact
from vendor_sync.db import utcnow
from vendor_sync.domains.models import Domain
from vendor_sync.provisioning.accounts import Account, get_account
from vendor_sync.provisioning.context import StepContext
from vendor_sync.provisioning.failures import StepFailed
from vendor_sync.provisioning.plans import (
    CONTACTS_DISCLOSE,
    VENDOR_CONTACTS,
    HumanStep,
    contact_change_lines,
    contacts_by_hand,
)
from vendor_sync.provisioning.steps import StepResult
from vendor_sync.registry.audit import CONTACT_FIELDS
from vendor_sync.registry.models import AuditEvent, Contact

REGISTRAR_ROLES = ("registrant", "admin", "tech", "billing")
ACTOR = "svc:vendor_sync"
CONTACTS = Contact.__table__
AUDIT = AuditEvent.__table__
DOMAINS = Domain.__table__


def _changes(body: Mapping[str, Any]) -> Mapping[str, Any]:
    changes = body.get("contacts")
    return changes if isinstance(changes, Mapping) else {}


def account_of(conn: Connection, *, client_id: uuid.UUID, body: Mapping[str, Any]) -> Account | None:
    """The request's vendor account, if it is the client's and live."""
    try:
        account_id = uuid.UUID(str(body.get("vendor_account_id")))
    except ValueError:
        return None
    return get_account(conn, account_id=account_id, client_id=client_id)


def writes_contacts(account: Account) -> bool:
    """Whether vendor_sync can make the change at this vendor itself."""
    return account.can(CONTACTS_WRITE)


def current_contacts(conn: Connection, account_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    """The account's registry contacts by id (as text)."""
    rows = conn.execute(select(CONTACTS).where(CONTACTS.c.vendor_account_id == account_id)).mappings()
    return {str(row["id"]): dict(row) for row in rows}


def by_hand(conn: Connection, *, account: Account, body: Mapping[str, Any]) -> HumanStep:
    """The step a person carries out when the vendor's adapter cannot change contacts."""
    lines = contact_change_lines(_changes(body), current_contacts(conn, account.id))
    return contacts_by_hand(account.vendor_name, account.account_number, lines)


def _registrar_contact(contact: Mapping[str, Any]) -> RegistrarContact | None:
    role = str(contact.get("role") or "").strip().casefold()
    if role not in REGISTRAR_ROLES:
        return None
    first, _, last = str(contact.get("name") or "").strip().partition(" ")
    return RegistrarContact(
        role=role,  # type: ignore[arg-type]
        name_first=first or None,
        name_last=last.strip() or None,
        email=contact.get("email") or None,
        phone=contact.get("phone") or None,
    )


def registrar_contacts(changes: Mapping[str, Any], current: Mapping[str, Mapping[str, Any]]) -> list[RegistrarContact]:
    """The added and changed contacts a registrar holds, one per role (the last given wins); pure."""
    merged: list[Mapping[str, Any]] = list(changes.get("add") or [])
    for update in changes.get("update") or []:
        known = current.get(str(update.get("id")))
        if known is not None:
            merged.append({**known, **{k: v for k, v in update.items() if v is not None and k != "id"}})
    by_role: dict[str, RegistrarContact] = {}
    for contact in merged:
        found = _registrar_contact(contact)
        if found is not None:
            by_role[found.role] = found
    return list(by_role.values())


def _account(ctx: StepContext) -> Account:
    account = ctx.read(lambda conn: account_of(conn, client_id=ctx.client_id, body=ctx.body))
    if account is None:
        raise StepFailed("unknown_account", "The request's vendor account is not a live account of this client.")
    return account


def vendor_contacts(ctx: StepContext) -> StepResult:
    """Ledger the disclosure, then set the changed registrar contacts on every domain the account holds."""
    account = _account(ctx)
    current = ctx.read(lambda conn: current_contacts(conn, account.id))
    wanted = registrar_contacts(_changes(ctx.body), current)
    domains = ctx.read(
        lambda conn: list(
            conn.execute(
                select(DOMAINS.c.name).where(DOMAINS.c.registrar_account_id == account.id).order_by(DOMAINS.c.name)
            ).scalars()
        )
    )
    if not wanted or not domains:
        why = "no registrant, admin, tech or billing contact changes" if not wanted else "the account holds no domains"
        return StepResult("succeeded", account.adapter, f"Nothing to change at {account.vendor_name}: {why}.")
    disclosure_id = ctx.disclose(account, CONTACTS_DISCLOSE, VENDOR_CONTACTS)
    with ctx.adapter(account) as registrar:
        for name in domains:
            registrar.set_contacts(name, wanted)
    roles = ", ".join(c.role for c in wanted)
    return StepResult(
        status="succeeded",
        vendor=account.adapter,
        summary=f"{roles} contacts set at {account.vendor_name} on {', '.join(domains)}.",
        detail={"roles": [c.role for c in wanted], "domains": domains, "disclosure_id": disclosure_id},
    )


def registry_contacts(ctx: StepContext) -> StepResult:
    """Apply the changes to the registry's contacts (audited), in the transaction that records the step."""
    account = _account(ctx)
    changes = _changes(ctx.body)
    current = ctx.read(lambda conn: current_contacts(conn, account.id))
    lines = contact_change_lines(changes, current)

    def apply(conn: Connection) -> None:
        _apply_contacts(conn, account=account, changes=changes)

    return StepResult(
        status="succeeded",
        vendor=None,
        summary=f"Registry contacts of {account.vendor_name} account {account.account_number}: " + " ".join(lines),
        detail={"account_id": str(account.id)},
        apply=apply,
    )


def _snapshot(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: str(row[k]) if isinstance(row[k], uuid.UUID) else row[k] for k in CONTACT_FIELDS}


def _audit(conn: Connection, account: Account, action: str, contact_id: Any, before: Any, after: Any) -> None:
    conn.execute(
        AUDIT.insert().values(
            id=uuid.uuid4(),
            at=utcnow(),
            actor=ACTOR,
            action=action,
            object_type="contact",
            object_id=contact_id,
            client_id=account.client_id,
            before=before,
            after=after,
        )
    )


def _apply_contacts(conn: Connection, *, account: Account, changes: Mapping[str, Any]) -> None:
    current = {
        str(row["id"]): dict(row)
        for row in conn.execute(
            select(CONTACTS).where(CONTACTS.c.vendor_account_id == account.id).with_for_update()
        ).mappings()
    }
    for added in changes.get("add") or []:
        row = {
            "id": uuid.uuid4(),
            "vendor_account_id": account.id,
            "name": added.get("name"),
            "role": added.get("role"),
            "email": added.get("email"),
            "phone": added.get("phone"),
            "created_at": utcnow(),
        }
        conn.execute(CONTACTS.insert().values(**row))
        _audit(conn, account, "contact.created", row["id"], None, _snapshot(row))
    for update in changes.get("update") or []:
        before = current.get(str(update.get("id")))
        if before is None:
            continue
        fields = {k: update[k] for k in ("name", "role", "email", "phone") if update.get(k) is not None}
        after = {**before, **fields}
        if _snapshot(after) != _snapshot(before):
            conn.execute(CONTACTS.update().where(CONTACTS.c.id == before["id"]).values(**fields))
            _audit(conn, account, "contact.updated", before["id"], _snapshot(before), _snapshot(after))
    for removed in changes.get("remove") or []:
        before = current.get(str(removed))
        if before is not None:
            conn.execute(CONTACTS.delete().where(CONTACTS.c.id == before["id"]))
            _audit(conn, account, "contact.deleted", before["id"], _snapshot(before), None)
