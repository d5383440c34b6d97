"""intake's FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from intake.approvals.routes import router as approvals_router
from intake.clients.routes import router as clients_router
from intake.db import get_engine
from intake.internal.routes import router as internal_router
from intake.requests.routes import create_router as request_create_router
from intake.requests.routes import router as requests_router
from intake.requests.schemas import BODY_TYPES
from intake.settings import get_settings
from intake.store import AsyncpgStore
from intake.tasks.routes import router as tasks_router
from intake.webhooks.routes import router as webhooks_router
from mspkit.app import create_app
from mspkit.db import ping

# Discriminated unions put the tag in the error path (body.purchase.items.0); it names no field.
_TAGS = frozenset(BODY_TYPES) | frozenset(
    {
        "provider_for_msp",
        "provider_for_client",
        "client_legal_representative",
        "msp_professional_adviser",
        "government_legal_process",
    }
)
_HEADERS = {"idempotency-key": "Idempotency-Key", "x-psa-signature": "X-PSA-Signature"}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The hot path's asyncpg pool lives as long as the app (created lazily on first use)."""
    yield
    await app.state.store.close()


settings = get_settings()
app = create_app(
    service="intake",
    settings=settings,
    ready_checks={"database": lambda: ping(get_engine())},
    lifespan=lifespan,
    union_tags=_TAGS,
    header_names=_HEADERS,
)
app.state.store = AsyncpgStore(settings.database_url, max_size=settings.hot_pool_size)
for router in (
    request_create_router,
    clients_router,
    requests_router,
    tasks_router,
    approvals_router,
    internal_router,
    webhooks_router,
):
    app.include_router(router)
