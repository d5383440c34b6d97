"""secrets_broker's FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from mspkit.app import create_app
from mspkit.db import ping
from mspkit.logging import get_logger
from mspkit.staff import StaffView
from secrets_broker.audit.routes import router as audit_router
from secrets_broker.credentials.routes import router as credentials_router
from secrets_broker.db import get_engine
from secrets_broker.ledger.routes import router as ledger_router
from secrets_broker.maintenance import maintenance
from secrets_broker.release.routes import router as release_router
from secrets_broker.reveal.page import router as reveal_page_router
from secrets_broker.reveal.routes import router as reveal_router
from secrets_broker.settings import get_settings
from secrets_broker.staff_views import get_staff_directory
from secrets_broker.unwrap.routes import router as unwrap_router
from secrets_broker.vault.errors import VaultError
from secrets_broker.vault.gateway import get_gateway

log = get_logger("secrets_broker.main")


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Log in to Vault early (the wrapped secret id expires in 60 s), renew, and run maintenance."""
    gateway = get_gateway()
    try:
        await run_in_threadpool(gateway.login)
    except VaultError as exc:
        # Not fatal here: /readyz stays 503 and the first call (or the renewal thread) retries.
        log.warning("vault_login_at_start_failed", error=type(exc).__name__)
    gateway.start_renewal()
    upkeep = maintenance(get_engine(), gateway, get_settings())
    upkeep.start()
    try:
        yield
    finally:
        upkeep.stop()
        gateway.stop_renewal()


def _vault_ready() -> None:
    get_gateway().check_ready()


app = create_app(
    service="secrets_broker",
    settings=get_settings(),
    ready_checks={"database": lambda: ping(get_engine()), "vault": _vault_ready},
    lifespan=lifespan,
)


async def _staff_view(sub: str) -> StaffView | None:
    # Looked up per call (one directory per process, lru_cached): a test may swap it for one whose intake is down.
    return await run_in_threadpool(get_staff_directory().view, sub)


# Need-to-know: the kit's role checks attach each technician's staff view through this (mspkit.auth).
app.state.staff_views = _staff_view
app.include_router(credentials_router)
app.include_router(release_router)
app.include_router(audit_router)
app.include_router(ledger_router)
app.include_router(unwrap_router)
app.include_router(reveal_router)
app.include_router(reveal_page_router)
