"""vendor_sync's FastAPI app: `uvicorn vendor_sync.api:app`."""

from __future__ import annotations

from fastapi.concurrency import run_in_threadpool

from mspkit.app import create_app
from mspkit.db import ping
from mspkit.staff import StaffView
from vendor_sync.db import get_engine
from vendor_sync.domains.routes import router as domains_router
from vendor_sync.intake_client import get_staff_directory
from vendor_sync.registry.routes import router as registry_router
from vendor_sync.settings import get_settings

# Readiness is the database only: Redis down must not stop the registry (refreshes wait in the table).
app = create_app(service="vendor_sync", settings=get_settings(), ready_checks={"database": lambda: ping(get_engine())})
app.include_router(registry_router)
app.include_router(domains_router)


async def _staff_view(sub: str) -> StaffView | None:
    # The directory is looked up per call (one per process, lru_cached) so a moved intake is seen.
    return await run_in_threadpool(get_staff_directory().view, sub)


# Need-to-know: the kit's role checks attach each technician's staff view through this (mspkit.auth).
app.state.staff_views = _staff_view
