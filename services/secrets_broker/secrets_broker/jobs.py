"""Periodic work of the API process: finish pending credentials and anchor a quiet audit tail.

Both need the API's Vault role (the worker holds only the revoker role, which cannot read
credential paths or the anchor), so they run in a daemon thread of the API process, not in Celery.
Several API processes may run it at once: rows are claimed with SKIP LOCKED.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine

from mspkit.logging import get_logger
from secrets_broker.audit.service import maybe_anchor
from secrets_broker.credentials.service import sweep_pending
from secrets_broker.settings import Settings
from secrets_broker.vault.gateway import VaultGateway

log = get_logger("secrets_broker.jobs")


def run_maintenance_once(engine: Engine, gateway: VaultGateway, settings: Settings) -> None:
    """One round: sweep pending credentials, then anchor the chain head if it moved."""
    sweep_pending(engine, gateway, grace_s=settings.pending_credential_grace_s)
    maybe_anchor(engine, gateway, interval_s=settings.audit_anchor_interval_s, every=settings.audit_anchor_every)


class Maintenance:
    """A daemon thread running `run_maintenance_once` every `sweep_interval_s`."""

    def __init__(self, engine: Engine, gateway: VaultGateway, settings: Settings) -> None:
        self._engine = engine
        self._gateway = gateway
        self._settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._run, name="broker-maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait briefly."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._settings.sweep_interval_s):
            try:
                run_maintenance_once(self._engine, self._gateway, self._settings)
            except Exception as exc:  # noqa: BLE001 - the thread must survive any single round
                log.warning("maintenance_failed", error=type(exc).__name__)
