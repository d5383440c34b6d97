"""intake's FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from intake.approvals.routes import router as approvals_router
from intake.auth import VerifiedTokens
from intake.clients.routes import router as clients_router
from intake.db import get_engine
from intake.internal.routes import router as internal_router
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


def field_of(error: dict[str, Any]) -> str:
    """The dotted path of the field an error is about, as the client wrote it."""
    loc = list(error.get("loc", ()))
    location = loc.pop(0) if loc and loc[0] in {"body", "query", "path", "header"} else None
    if error.get("type") == "json_invalid":
        return "body"
    parts = [str(p) for p in loc if not (isinstance(p, str) and p in _TAGS)]
    if location == "header" and parts:
        parts = [_HEADERS.get(parts[0].lower(), parts[0])]
    if error.get("type") in {"union_tag_invalid", "union_tag_not_found"}:
        discriminator = str((error.get("ctx") or {}).get("discriminator", "type")).strip("'\"")
        parts.append(discriminator)
    return ".".join(parts) or "body"


async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming the first failing field (tags of discriminated unions left out)."""
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid input", "type": "value_error"}
    field = field_of(first)
    message = "unknown field" if first.get("type") == "extra_forbidden" else str(first.get("msg", "invalid input"))
    return JSONResponse({"error": "validation_error", "detail": f"{field}: {message}", "field": field}, 422)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Framework errors (404 route, 405 method) in the envelope, keeping their headers (`Allow` on a 405)."""
    codes = {
        401: "unauthenticated",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        413: "payload_too_large",
        422: "validation_error",
        429: "rate_limited",
        503: "unavailable",
    }
    body = {"error": codes.get(exc.status_code, "http_error"), "detail": str(exc.detail)}
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return JSONResponse(body, status_code=exc.status_code, headers=headers or None)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The hot path's asyncpg pool lives as long as the app (created lazily on first use)."""
    yield
    await app.state.store.close()


settings = get_settings()
app = create_app(
    service="intake", settings=settings, ready_checks={"database": lambda: ping(get_engine())}, lifespan=lifespan
)
app.state.verified_tokens = VerifiedTokens()
app.state.store = AsyncpgStore(settings.database_url, max_size=settings.hot_pool_size)
app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
for router in (clients_router, requests_router, tasks_router, approvals_router, internal_router, webhooks_router):
    app.include_router(router)
