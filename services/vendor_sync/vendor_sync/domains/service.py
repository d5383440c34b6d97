"""Domain operations: add and read client domains, request a refresh, read runs and drift events."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, col

from mspkit.auth import Principal
from mspkit.errors import Conflict, NotFound
from mspkit.pagination import keyset, page_of
from mspkit.tenancy import Visible, ensure_sees_client
from vendor_sync.db import utcnow
from vendor_sync.domains.models import (
    ACCOUNT_IN_FLIGHT_PREDICATE,
    IN_FLIGHT,
    IN_FLIGHT_PREDICATE,
    DnsRecord,
    Domain,
    DriftEvent,
    SyncRun,
)
from vendor_sync.domains.schemas import AbuseContactPublic, DomainPublic, RecordPublic, SyncRunPublic
from vendor_sync.registry.models import SYNCED_KINDS, Vendor, VendorAccount


def domain_public(domain: Domain) -> DomainPublic:
    """The API shape of a domain."""
    abuse = AbuseContactPublic.model_validate(domain.abuse_contact) if domain.abuse_contact else None
    return DomainPublic(
        id=domain.id,
        client_id=domain.client_id,
        name=domain.name,
        unicode_name=domain.unicode_name,
        registrar=domain.registrar,
        registrar_iana_id=domain.registrar_iana_id,
        created_at=domain.created_at,
        expires_at=domain.expires_at,
        last_changed_at=domain.last_changed_at,
        statuses=list(domain.statuses or []),
        nameservers=list(domain.nameservers or []),
        dnssec=domain.dnssec,
        abuse_contact=abuse,
        last_checked_at=domain.last_checked_at,
        dns_host_account_id=domain.dns_host_account_id,
        registrar_account_id=domain.registrar_account_id,
        mx=list(domain.mx or []),
        transfer_lock=domain.transfer_lock,
    )


def run_public(run: SyncRun) -> SyncRunPublic:
    """The API shape of a sync run."""
    return SyncRunPublic.model_validate(run, from_attributes=True)


def create_domain(session: Session, *, client_id: uuid.UUID, a_label: str, unicode_name: str) -> Domain:
    """Add a domain, due for its first check at once; the same name twice for a client is 409."""
    domain = Domain(client_id=client_id, name=a_label, unicode_name=unicode_name, next_check_at=utcnow())
    inserted = session.execute(
        insert(Domain)
        .values(**domain.model_dump())
        .on_conflict_do_nothing(index_elements=[col(Domain.client_id), col(Domain.name)])
        .returning(col(Domain.id))
    ).first()
    if inserted is None:
        raise Conflict("this client already has this domain", field="name")
    session.commit()
    stored = session.get(Domain, domain.id, populate_existing=True)
    assert stored is not None
    return stored


def get_domain(session: Session, *, domain_id: uuid.UUID, viewer: Principal) -> Domain:
    """One domain; another tenant's domain is 404 like a missing one."""
    domain = session.get(Domain, domain_id, populate_existing=True)
    if domain is None:
        raise NotFound("domain not found")
    ensure_sees_client(viewer, domain.client_id, "domain")
    return domain


def list_domains(
    session: Session, *, client_id: uuid.UUID, visible: Visible, limit: int, cursor: str | None
) -> tuple[list[Domain], str | None]:
    """A page of one client's domains, oldest first, within what the caller may see."""
    stmt = select(Domain).where(col(Domain.client_id) == client_id)
    condition = visible.where(col(Domain.client_id))
    if condition is not None:
        stmt = stmt.where(condition)
    stmt = keyset(
        stmt,
        at=col(Domain.row_created_at),
        id_=col(Domain.id),
        limit=limit,
        cursor=cursor,
    )
    rows = session.execute(stmt).scalars().all()
    return page_of(rows, limit=limit, key=lambda d: (d.row_created_at, d.id))


def request_refresh(session: Session, *, domain_id: uuid.UUID, viewer: Principal) -> tuple[uuid.UUID, bool]:
    """Queue a refresh run; returns (run id, True if new). A run already in flight is reused, not doubled."""
    domain = get_domain(session, domain_id=domain_id, viewer=viewer)
    for _ in range(3):
        run = SyncRun(domain_id=domain.id, client_id=domain.client_id, trigger="manual", enqueued_at=utcnow())
        # The partial unique index allows one queued-or-running run per domain; a concurrent request loses here.
        inserted = session.execute(
            insert(SyncRun)
            .values(**run.model_dump())
            .on_conflict_do_nothing(index_elements=[col(SyncRun.domain_id)], index_where=IN_FLIGHT_PREDICATE)
            .returning(col(SyncRun.id))
        ).first()
        if inserted is not None:
            session.commit()
            return run.id, True
        existing = session.execute(
            select(col(SyncRun.id)).where(col(SyncRun.domain_id) == domain.id, col(SyncRun.status).in_(IN_FLIGHT))
        ).scalar_one_or_none()
        session.commit()
        if existing is not None:
            return existing, False
        # The in-flight run finished between the two statements: try again.
    raise Conflict("the domain's refresh state kept changing; try again")


def list_records(session: Session, *, domain_id: uuid.UUID, viewer: Principal) -> list[RecordPublic]:
    """Every record of a domain's zone, by name, type and content."""
    get_domain(session, domain_id=domain_id, viewer=viewer)
    rows = session.execute(
        select(DnsRecord)
        .where(col(DnsRecord.domain_id) == domain_id)
        .order_by(col(DnsRecord.name), col(DnsRecord.type), col(DnsRecord.content))
    ).scalars()
    return [RecordPublic.model_validate(row, from_attributes=True) for row in rows]


def request_account_sync(
    session: Session, *, account_id: uuid.UUID, viewer: Principal, dry_run: bool, force: bool
) -> uuid.UUID:
    """Queue a sync of a vendor account; one already in flight is returned instead (whatever its options)."""
    found = session.execute(
        select(VendorAccount, col(Vendor.kind))
        .join(Vendor, col(Vendor.id) == col(VendorAccount.vendor_id))
        .where(col(VendorAccount.id) == account_id)
    ).first()
    if found is None:
        raise NotFound("vendor account not found")
    account, kind = found
    ensure_sees_client(viewer, account.client_id, "vendor account")
    if account.archived_at is not None:
        raise Conflict("this vendor account is archived; it is not synced", field="archived_at")
    if kind not in SYNCED_KINDS:
        raise Conflict(f"accounts of a {kind} vendor are not synced; only DNS hosts and registrars are")
    for _ in range(3):
        run = SyncRun(
            vendor_account_id=account.id,
            client_id=account.client_id,
            trigger="manual",
            dry_run=dry_run,
            force=force,
            enqueued_at=utcnow(),
        )
        inserted = session.execute(
            insert(SyncRun)
            .values(**run.model_dump(exclude={"domain_id", "plan", "changes"}))
            .on_conflict_do_nothing(
                index_elements=[col(SyncRun.vendor_account_id)], index_where=ACCOUNT_IN_FLIGHT_PREDICATE
            )
            .returning(col(SyncRun.id))
        ).first()
        if inserted is not None:
            session.commit()
            return run.id
        existing = session.execute(
            select(col(SyncRun.id)).where(
                col(SyncRun.vendor_account_id) == account.id, col(SyncRun.status).in_(IN_FLIGHT)
            )
        ).scalar_one_or_none()
        session.commit()
        if existing is not None:
            return existing
    raise Conflict("the account's sync state kept changing; try again")


def get_sync_run(session: Session, *, run_id: uuid.UUID, viewer: Principal) -> SyncRun:
    """One sync run; a run of a client the viewer may not see is 404 like a missing one."""
    run = session.get(SyncRun, run_id, populate_existing=True)
    if run is None:
        raise NotFound("sync run not found")
    ensure_sees_client(viewer, run.client_id, "sync run")
    return run


def list_drift_events(
    session: Session,
    *,
    visible: Visible,
    limit: int,
    cursor: str | None,
    domain_id: uuid.UUID | None = None,
    kind: str | None = None,
) -> tuple[list[DriftEvent], str | None]:
    """A page of drift events, newest first, of the clients `visible` allows, filtered by domain or kind."""
    stmt = select(DriftEvent)
    condition = visible.where(col(DriftEvent.client_id))
    if condition is not None:
        stmt = stmt.where(condition)
    if domain_id is not None:
        stmt = stmt.where(col(DriftEvent.domain_id) == domain_id)
    if kind is not None:
        stmt = stmt.where(col(DriftEvent.kind) == kind)
    stmt = keyset(
        stmt, at=col(DriftEvent.detected_at), id_=col(DriftEvent.id), limit=limit, cursor=cursor, descending=True
    )
    rows = session.execute(stmt).scalars().all()
    return page_of(rows, limit=limit, key=lambda e: (e.detected_at, e.id))
