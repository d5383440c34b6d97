"""Domain, sync-run and drift-event routes (thin: the service does the work)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, BackgroundTasks, Query

from mspkit.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from mspkit.tenancy import visible
from vendor_sync.db import SessionDep, get_engine
from vendor_sync.deps import DomainReader, Staff
from vendor_sync.domains import service
from vendor_sync.domains.schemas import (
    AccountSyncRequest,
    DomainCreate,
    DomainPublic,
    DriftEventPublic,
    DriftKind,
    RecordList,
    RefreshAccepted,
    SyncRunPublic,
)
from vendor_sync.intake_client import get_intake_clients
from vendor_sync.sync.publish import ACCOUNT_SYNC_TASK, publish_refreshes

router = APIRouter(prefix="/v1", tags=["domains"])


@router.post("/clients/{client_id}/domains", status_code=201, response_model=DomainPublic)
def create_domain(client_id: uuid.UUID, body: DomainCreate, session: SessionDep, user: Staff) -> DomainPublic:
    """Add a client domain, checked at its registry shortly (a refresh checks it now); unknown client: 404."""
    get_intake_clients().ensure_exists(client_id, viewer=user)
    a_label, unicode_name = body.normalized()
    domain = service.create_domain(session, client_id=client_id, a_label=a_label, unicode_name=unicode_name)
    return service.domain_public(domain)


@router.get("/clients/{client_id}/domains", response_model=Page[DomainPublic])
def list_domains(
    client_id: uuid.UUID, session: SessionDep, user: Staff, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[DomainPublic]:
    """List one client's domains, oldest first; an unknown client is 404."""
    get_intake_clients().ensure_exists(client_id, viewer=user)
    items, next_cursor = service.list_domains(
        session, client_id=client_id, visible=visible(user, client_id), limit=limit, cursor=cursor
    )
    return Page[DomainPublic](items=[service.domain_public(d) for d in items], next_cursor=next_cursor)


@router.get("/domains/{domain_id}", response_model=DomainPublic)
def get_domain(domain_id: uuid.UUID, session: SessionDep, user: DomainReader) -> DomainPublic:
    """One domain with its registration data."""
    return service.domain_public(service.get_domain(session, domain_id=domain_id, viewer=user))


@router.post("/domains/{domain_id}/refresh", status_code=202, response_model=RefreshAccepted)
def refresh_domain(
    domain_id: uuid.UUID, session: SessionDep, user: Staff, background: BackgroundTasks
) -> RefreshAccepted:
    """Queue a refresh from the registry; poll the sync run until it is `succeeded` or `failed`."""
    run_id, created = service.request_refresh(session, domain_id=domain_id, viewer=user)
    if created:
        # After the response: a dead Redis (redis-py retries for seconds) must not hold the caller.
        background.add_task(publish_refreshes, get_engine(), [run_id])
    return RefreshAccepted(sync_run_id=run_id)


@router.get("/domains/{domain_id}/records", response_model=RecordList)
def list_records(domain_id: uuid.UUID, session: SessionDep, user: DomainReader) -> RecordList:
    """The zone's records as its DNS host last reported them (empty until an account sync saw the zone)."""
    return RecordList(items=service.list_records(session, domain_id=domain_id, viewer=user))


@router.post("/vendor-accounts/{account_id}/sync", status_code=202, response_model=RefreshAccepted)
def sync_vendor_account(
    account_id: uuid.UUID,
    session: SessionDep,
    user: Staff,
    background: BackgroundTasks,
    body: AccountSyncRequest | None = None,
) -> RefreshAccepted:
    """Queue a sync of a DNS-host or registrar account; poll the run for its plan, changes and status."""
    options = body or AccountSyncRequest()
    run_id = service.request_account_sync(
        session, account_id=account_id, viewer=user, dry_run=options.dry_run, force=options.force
    )
    background.add_task(publish_refreshes, get_engine(), [run_id], task=ACCOUNT_SYNC_TASK)
    return RefreshAccepted(sync_run_id=run_id)


@router.get("/sync-runs/{run_id}", response_model=SyncRunPublic)
def get_sync_run(run_id: uuid.UUID, session: SessionDep, user: Staff) -> SyncRunPublic:
    """One sync run."""
    return service.run_public(service.get_sync_run(session, run_id=run_id, viewer=user))


@router.get("/drift-events", response_model=Page[DriftEventPublic])
def list_drift_events(
    session: SessionDep,
    user: Staff,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    client_id: uuid.UUID | None = Query(None, description="Only this client's events (one you may not see: 404)"),
    domain_id: uuid.UUID | None = Query(None, description="Only this domain's events"),
    kind: DriftKind | None = Query(None, description="change or expiry_warning"),
) -> Page[DriftEventPublic]:
    """List drift events, newest first, of the clients the caller may see."""
    items, next_cursor = service.list_drift_events(
        session, visible=visible(user, client_id), limit=limit, cursor=cursor, domain_id=domain_id, kind=kind
    )
    return Page[DriftEventPublic](
        items=[DriftEventPublic.model_validate(e, from_attributes=True) for e in items], next_cursor=next_cursor
    )
