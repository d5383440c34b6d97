"""Request dependencies: the session, callers by role, and the process's clients (Vault, intake, mail).

The clients are the process-wide singletons their modules build (`get_gateway`, `get_wraps`,
`get_intake`, `get_mailer`); tests override the `*_dep` providers below to point one app at a
throwaway Vault or a fake intake. Workers never import this module.

The session and the singleton providers are `async` although they do no I/O: FastAPI runs a sync
dependency in the threadpool, one hand-off each, six on a release. docs/benchmarks.md,
secrets_broker: FastAPI's share of the broker's CPU per release is 3.3-4.6 ms with sync providers,
1.6-2.6 ms with these.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Response
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from mspkit.auth import Principal, require_roles, require_service
from mspkit.errors import Forbidden
from mspkit.tenancy import visible
from secrets_broker.db import get_engine
from secrets_broker.intake_client import IntakeClient, get_intake
from secrets_broker.mail import Mailer, get_mailer
from secrets_broker.settings import Settings, get_settings
from secrets_broker.vault.gateway import VaultGateway, get_gateway
from secrets_broker.vault.wrapping import WrapClient, get_wraps
from secrets_broker.vendor_sync_client import VendorRegistry, get_vendor_registry


async def get_session() -> AsyncIterator[Session]:
    """Request-scoped session; the use case in `service.py` commits, anything unhandled rolls back."""
    # Making a `Session` does no I/O (it connects on first use, in the route's thread), and after the
    # use case committed its connection is back in the pool; only a session still in a transaction
    # (an error before COMMIT, a read-only route) needs its rollback, a round trip, off the loop.
    session = Session(get_engine(), expire_on_commit=False)
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


async def settings_dep() -> Settings:
    """The settings (tests override single values)."""
    return get_settings()


async def gateway_dep() -> VaultGateway:
    """The process's Vault gateway."""
    return get_gateway()


async def intake_dep() -> IntakeClient:
    """The process's intake client."""
    return get_intake()


async def vendor_registry_dep() -> VendorRegistry:
    """The process's vendor_sync registry client."""
    return get_vendor_registry()


async def wraps_dep() -> WrapClient:
    """The process's wrapping-token client."""
    return get_wraps()


async def mailer_dep() -> Mailer:
    """The process's mailer."""
    return get_mailer()


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(settings_dep)]
Gateway = Annotated[VaultGateway, Depends(gateway_dep)]
Intake = Annotated[IntakeClient, Depends(intake_dep)]
Registry = Annotated[VendorRegistry, Depends(vendor_registry_dep)]
Wraps = Annotated[WrapClient, Depends(wraps_dep)]
MailerDep = Annotated[Mailer, Depends(mailer_dep)]

Technician = Annotated[Principal, Depends(require_roles("technician"))]
TechnicianOrAdmin = Annotated[Principal, Depends(require_roles("technician", "admin"))]
StaffOrClientAdmin = Annotated[Principal, Depends(require_roles("admin", "technician", "client_admin"))]
CredentialWriter = Annotated[Principal, Depends(require_roles("admin", "technician", "client_admin", "service"))]
AuditReader = Annotated[Principal, Depends(require_roles("admin", "client_admin"))]
VendorSyncService = Annotated[Principal, Depends(require_service("svc:vendor_sync"))]
# Credential metadata (never a secret): intake checks a task's scope, vendor_sync an account's api key.
CredentialReaderService = Annotated[Principal, Depends(require_service("svc:intake", "svc:vendor_sync"))]
IntakeService = Annotated[Principal, Depends(require_service("svc:intake"))]


def audit_client(user: AuditReader, client_id: uuid.UUID | None = None) -> uuid.UUID | None:
    """The client an audit, ledger or release-list read is limited to: a client_admin's own (another's id: 404)."""
    clients = visible(user, client_id).client_ids
    if clients is None:
        return None
    # Audit readers see every client (admins) or one (the one asked for, a client_admin's own).
    if len(clients) != 1:
        raise Forbidden("role not allowed")
    (only,) = clients
    return only


# The `client_id` query filter of the audit, the ledger and the release list, for their readers only.
AuditClient = Annotated[uuid.UUID | None, Depends(audit_client)]


async def no_store(response: Response) -> None:
    """Keep the answer out of every cache: it holds a secret, or a token that opens one."""
    # async: it only sets headers, so it has no reason to leave the event loop.
    response.headers.update({"Cache-Control": "no-store", "Pragma": "no-cache"})


NoStore = Depends(no_store)
