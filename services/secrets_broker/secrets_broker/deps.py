"""Dependencies: the session, callers by role, and the process-wide gateway, intake client and mailer.

Each singleton is a dependency so tests can point one app at a throwaway Vault or a fake intake.
"""

from __future__ import annotations

import os
import signal
from functools import lru_cache
from typing import Annotated

from fastapi import Depends

from mspkit.auth import CurrentUser, Principal, ServiceTokenSource, require_roles, require_service
from secrets_broker.db import SessionDep
from secrets_broker.intake_client import IntakeClient
from secrets_broker.mail import Mailer
from secrets_broker.settings import Settings, get_settings
from secrets_broker.vault.gateway import LauncherSecretId, VaultGateway
from secrets_broker.vault.wrapping import WrapClient

__all__ = [
    "AuditReader",
    "CredentialWriter",
    "CurrentUser",
    "Gateway",
    "Intake",
    "MailerDep",
    "SessionDep",
    "SettingsDep",
    "StaffOrClientAdmin",
    "Technician",
    "TechnicianOrAdmin",
    "VendorSyncService",
    "Wraps",
]


def _restart_process() -> None:
    # supervisor restarts us through the launcher, which mints a fresh wrapped secret id.
    os.kill(os.getpid(), signal.SIGTERM)


@lru_cache
def get_gateway() -> VaultGateway:
    """The process's Vault gateway (logs in lazily with the launcher's wrapped secret id)."""
    settings = get_settings()
    role_id = settings.vault_role_id.get_secret_value() if settings.vault_role_id else None
    wrapped = settings.vault_wrapped_secret_id.get_secret_value() if settings.vault_wrapped_secret_id else None
    return VaultGateway(
        addr=settings.vault_addr,
        role=settings.vault_role,
        source=LauncherSecretId(role_id, wrapped),
        timeout_s=settings.vault_timeout_s,
        pool_size=settings.vault_pool_size,
        renew_check_s=settings.vault_renew_check_s,
        # Only a process the launcher started can be restarted into a fresh secret id.
        on_token_lost=_restart_process if settings.vault_restart_on_token_loss and wrapped else None,
    )


@lru_cache
def get_wraps() -> WrapClient:
    """The process's wrapping-token client (lookup and unwrap need no broker token)."""
    settings = get_settings()
    return WrapClient(addr=settings.vault_addr, timeout_s=settings.vault_timeout_s, pool_size=settings.vault_pool_size)


@lru_cache
def get_intake() -> IntakeClient:
    """The process's intake client, authenticated as `svc:secrets_broker`."""
    settings = get_settings()
    tokens = ServiceTokenSource(
        token_url=settings.token_url,
        client_id=settings.service_client_id,
        client_secret=settings.service_client_secret.get_secret_value(),
    )
    return IntakeClient(base_url=settings.intake_url, tokens=tokens, timeout_s=settings.intake_timeout_s)


@lru_cache
def get_mailer() -> Mailer:
    """The process's SMTP mailer."""
    settings = get_settings()
    return Mailer(smtp_url=settings.smtp_url, sender=settings.mail_from, timeout_s=settings.smtp_timeout_s)


async def settings_dep() -> Settings:
    """The settings, as a dependency (tests override single values).

    `async` only so FastAPI calls it on the event loop instead of handing a cached lookup to the
    threadpool on every request; it does no I/O.
    """
    return get_settings()


# The singletons as dependencies. `async` for the same reason as `settings_dep`: each returns a
# cached object (built once, without I/O: the gateway logs in lazily), and a sync dependency costs a
# threadpool hand-off per request. Tests override these (not the `get_*` builders).


async def gateway_dep() -> VaultGateway:
    """The process's Vault gateway, as a dependency."""
    return get_gateway()


async def intake_dep() -> IntakeClient:
    """The process's intake client, as a dependency."""
    return get_intake()


async def wraps_dep() -> WrapClient:
    """The process's wrapping-token client, as a dependency."""
    return get_wraps()


async def mailer_dep() -> Mailer:
    """The process's mailer, as a dependency."""
    return get_mailer()


Gateway = Annotated[VaultGateway, Depends(gateway_dep)]
Intake = Annotated[IntakeClient, Depends(intake_dep)]
Wraps = Annotated[WrapClient, Depends(wraps_dep)]
MailerDep = Annotated[Mailer, Depends(mailer_dep)]
SettingsDep = Annotated[Settings, Depends(settings_dep)]

Technician = Annotated[Principal, Depends(require_roles("technician"))]
TechnicianOrAdmin = Annotated[Principal, Depends(require_roles("technician", "admin"))]
StaffOrClientAdmin = Annotated[Principal, Depends(require_roles("admin", "technician", "client_admin"))]
CredentialWriter = Annotated[Principal, Depends(require_roles("admin", "technician", "client_admin", "service"))]
AuditReader = Annotated[Principal, Depends(require_roles("admin", "client_admin"))]
VendorSyncService = Annotated[Principal, Depends(require_service("svc:vendor_sync"))]
