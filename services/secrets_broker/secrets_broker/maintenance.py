"""Periodic work of the API process: finish pending credentials and anchor a quiet audit tail.

Both need the API's Vault role (the worker holds only the revoker role, which cannot read
credential paths or the anchor), so they run in a daemon thread of the API process, not in Celery.
Several API processes may run it at once: rows are claimed with SKIP LOCKED.
"""

from __future__ import annotations

from sqlalchemy import Engine

from secrets_broker.audit.anchor import maybe_anchor
from secrets_broker.common.periodic import Periodic
from secrets_broker.credentials.service import sweep_pending
from secrets_broker.settings import Settings
from secrets_broker.vault.gateway import VaultGateway


def run_maintenance_once(engine: Engine, gateway: VaultGateway, settings: Settings) -> None:
    """One round: sweep pending credentials, then anchor the chain head if it moved."""
    sweep_pending(engine, gateway=gateway, grace_s=settings.pending_credential_grace_s)
    maybe_anchor(engine, gateway, interval_s=settings.audit_anchor_interval_s, every=settings.audit_anchor_every)


def maintenance(engine: Engine, gateway: VaultGateway, settings: Settings) -> Periodic:
    """The API's maintenance thread (not started): `run_maintenance_once` every `sweep_interval_s`."""
    return Periodic(
        "broker-maintenance",
        lambda: run_maintenance_once(engine, gateway, settings),
        interval_s=settings.sweep_interval_s,
    )
