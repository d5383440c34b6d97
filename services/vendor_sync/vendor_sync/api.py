"""vendor_sync's FastAPI app: `uvicorn vendor_sync.api:app`."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from mspkit.app import create_app
from mspkit.db import ping
from vendor_sync.db import get_engine
from vendor_sync.domains.routes import router as domains_router
from vendor_sync.registry.routes import router as registry_router
from vendor_sync.settings import get_settings

# Readiness is the database only: Redis down must not stop the registry (refreshes wait in the table).
app = create_app(service="vendor_sync", settings=get_settings(), ready_checks={"database": lambda: ping(get_engine())})
app.include_router(registry_router)
app.include_router(domains_router)

_kit_http_handler: Any = app.exception_handlers[StarletteHTTPException]


def _allowed_methods(request: Request) -> str:
    # FastAPI makes one route per method, and Starlette's 405 names only the first route's methods.
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


async def _http_error_keeping_headers(request: Request, exc: Exception) -> Response:
    # The kit's envelope drops the exception's headers; RFC 9110 wants `Allow` on a 405.
    response: Response = await _kit_http_handler(request, exc)
    for name, value in (getattr(exc, "headers", None) or {}).items():
        response.headers[name] = value
    if response.status_code == 405:
        response.headers["Allow"] = _allowed_methods(request)
    return response


app.add_exception_handler(StarletteHTTPException, _http_error_keeping_headers)
