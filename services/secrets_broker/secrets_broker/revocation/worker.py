"""The broker worker's process: log in as the revoker at start, renew, and sweep open revocations.

The launcher (`mspctl run-with-secret-id msp-broker-revoker -- celery ... worker`) hands over a
wrapped secret id that expires 60 s after minting, so the worker logs in as soon as it starts, not
at its first task. It runs Celery's thread pool: one process, one Vault token (a secret id is
single use, so forked children could not log in themselves). The sweep is a thread of this process
rather than Celery beat: the contract's parts list has no broker beat, and the sweep needs the
revoker's token, which only this process holds.
"""

from __future__ import annotations

import threading
from typing import Final

from mspkit.logging import get_logger
from secrets_broker.db import get_engine
from secrets_broker.revocation.service import sweep
from secrets_broker.settings import Settings, get_settings
from secrets_broker.vault.gateway import VaultError, VaultGateway

log = get_logger("secrets_broker.worker")
REVOKER_ROLE: Final = "msp-broker-revoker"


class RevocationSweeper:
    """A daemon thread running `sweep` every `revocation_sweep_interval_s`."""

    def __init__(self, gateway: VaultGateway, settings: Settings) -> None:
        self._gateway = gateway
        self._settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="revocation-sweep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait briefly."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def run_once(self) -> int:
        """One sweep; returns how many revocations it finished."""
        return sweep(
            get_engine(),
            self._gateway,
            batch=self._settings.revocation_batch,
            backoff_max_s=self._settings.revocation_backoff_max_s,
        )

    def _run(self) -> None:
        # The first round runs at once: revocations may have waited while no worker ran.
        while True:
            try:
                done = self.run_once()
                if done:
                    log.info("revocation_sweep", done=done)
            except Exception as exc:  # noqa: BLE001 - the sweep must survive any single round
                log.warning("revocation_sweep_failed", error=type(exc).__name__)
            if self._stop.wait(self._settings.revocation_sweep_interval_s):
                return


_sweeper: RevocationSweeper | None = None


def start_worker() -> None:
    """At worker start: refuse any role but the revoker, log in, renew, and start the sweep."""
    from secrets_broker.deps import get_gateway

    global _sweeper
    settings = get_settings()
    if settings.vault_role != REVOKER_ROLE:
        log.error("worker_wrong_vault_role", role=settings.vault_role, expected=REVOKER_ROLE)
        # Fail closed and loudly (SystemExit passes Celery's signal dispatcher, which logs and
        # swallows ordinary exceptions): supervisor marks the program FATAL after its retries.
        raise SystemExit(f"the broker worker runs as {REVOKER_ROLE} only, not {settings.vault_role}")
    gateway = get_gateway()
    try:
        gateway.login()
    except VaultError as exc:
        # Vault may be starting: the renewal thread retries with the same (unspent) secret id.
        log.warning("vault_login_at_start_failed", error=type(exc).__name__)
    gateway.start_renewal()
    _sweeper = RevocationSweeper(gateway, settings)
    _sweeper.start()


def stop_worker() -> None:
    """At worker shutdown: stop the sweep and the renewal thread."""
    from secrets_broker.deps import get_gateway

    if _sweeper is not None:
        _sweeper.stop()
    get_gateway().stop_renewal()
