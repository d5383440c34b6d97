"""The broker worker's process: log in as the revoker at start, renew, and sweep open revocations.

The launcher (`mspctl run-with-secret-id msp-broker-revoker -- celery ... worker`) hands over a
wrapped secret id that expires 60 s after minting, so the worker logs in as soon as it starts, not
at its first task. It runs Celery's thread pool: one process, one Vault token (a secret id is
single use, so forked children could not log in themselves). The sweep is a thread of this process
rather than Celery beat: the contract's parts list has no broker beat, and the sweep needs the
revoker's token, which only this process holds.
"""

from __future__ import annotations

from typing import Final

from mspkit.logging import get_logger
from secrets_broker.common.periodic import Periodic
from secrets_broker.db import get_engine
from secrets_broker.revocation.service import sweep
from secrets_broker.settings import Settings, get_settings
from secrets_broker.vault.errors import VaultError
from secrets_broker.vault.gateway import VaultGateway, get_gateway

log = get_logger("secrets_broker.worker")
REVOKER_ROLE: Final = "msp-broker-revoker"


def sweep_once(gateway: VaultGateway, settings: Settings) -> int:
    """One sweep over the open revocations; returns how many it finished."""
    done = sweep(
        get_engine(), gateway=gateway, batch=settings.revocation_batch, backoff_max_s=settings.revocation_backoff_max_s
    )
    if done:
        log.info("revocation_sweep", done=done)
    return done


_sweeper: Periodic | None = None


def start_worker() -> None:
    """At worker start: refuse any role but the revoker, log in, renew, and start the sweep."""
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
    # The first round runs at once: revocations may have waited while no worker ran.
    _sweeper = Periodic(
        "revocation-sweep",
        lambda: sweep_once(gateway, settings),
        interval_s=settings.revocation_sweep_interval_s,
        run_first=True,
    )
    _sweeper.start()


def stop_worker() -> None:
    """At worker shutdown: stop the sweep and the renewal thread."""
    if _sweeper is not None:
        _sweeper.stop()
    get_gateway().stop_renewal()
