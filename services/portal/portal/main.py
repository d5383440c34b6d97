"""portal's FastAPI app: sign-in, sessions, security headers, static files, the pages of each role, the ticket pod."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from mspkit.app import create_app
from mspkit.db import ping
from portal.auth.routes import router as auth_router
from portal.db import get_engine
from portal.handlers import install_handlers
from portal.headers import SecurityHeadersMiddleware
from portal.home import router as home_router
from portal.pages import include_pages
from portal.pod.routes import router as pod_router
from portal.runtime import Runtime
from portal.settings import Settings, get_settings

STATIC_DIR = Path(__file__).parent / "static"


def create_portal_app(settings: Settings, runtime_factory: Callable[[], Runtime] | None = None) -> FastAPI:
    """Build the portal app (tests pass their own settings or runtime)."""
    rt = runtime_factory() if runtime_factory else Runtime.build(settings, get_engine())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if rt.http is not None:
                await rt.http.aclose()
                rt.http = None

    app = create_app(
        service="portal", settings=settings, ready_checks={"database": lambda: ping(rt.engine)}, lifespan=lifespan
    )
    app.state.runtime = rt
    install_handlers(app)
    pod_prefix = f"/pod/{settings.psa_provider}/" if settings.pod_enabled else ""
    app.add_middleware(SecurityHeadersMiddleware, pod_prefix=pod_prefix, pod_origin=settings.psa_origin)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.include_router(auth_router)
    app.include_router(home_router)
    include_pages(app, tuple(a.strip() for a in settings.page_areas.split(",") if a.strip()))
    app.include_router(pod_router)
    return app


app = create_portal_app(get_settings())
