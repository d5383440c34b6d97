"""App factory: error envelope, 1 MiB body cap, request ids and access log, metrics, health and readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mspkit import gctune
from mspkit.accesslog import AccessLogMiddleware
from mspkit.apidocs import install_api_docs
from mspkit.auth import JWTVerifier, VerifiedTokens
from mspkit.errors import COMMON_ERROR_RESPONSES, install_error_handlers
from mspkit.issuer_guard import IssuerGuard
from mspkit.logging import configure_logging, get_logger
from mspkit.metrics import MetricsMiddleware, metrics_response
from mspkit.settings import KitSettings

MAX_BODY_BYTES = 1024 * 1024
Check = Callable[[], Any]


class BodyLimitMiddleware:
    """Answers 413 for a body over the cap, before anything parses it (chunked bodies included)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = True
                if too_big:
                    await _reject(send)
                    return
        received = 0

        async def _receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, _receive, send)
        except _TooLarge:
            await _reject(send)


class _TooLarge(BaseException):
    """Raised from receive(); a BaseException so that FastAPI's body parser cannot turn it into a 400."""


async def _reject(send: Send) -> None:
    response = JSONResponse({"error": "payload_too_large", "detail": "request body over 1 MiB"}, status_code=413)
    await response(scope={"type": "http"}, receive=_no_receive, send=send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


class _KitApp(FastAPI):
    """FastAPI with the access log as its outermost layer, outside even the 500 handler."""

    def build_middleware_stack(self) -> ASGIApp:
        # User middleware sits inside Starlette's ServerErrorMiddleware, whose 500 would then miss
        # the request id header and the access line; this wraps the whole stack instead.
        return AccessLogMiddleware(super().build_middleware_stack())


def _run_checks(checks: Mapping[str, Check]) -> tuple[bool, dict[str, str]]:
    results: dict[str, str] = {}
    ok = True
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - a check's failure is the answer, not an error
            ok = False
            # Only the type: an exception message could carry a connection string.
            results[name] = f"failed: {type(exc).__name__}"
    return ok, results


def _with_gc_tuning(
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None,
    guard: IssuerGuard | None = None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan, preceded by `gctune.tune()`: at start-up everything the process needs is imported.

    Outside dev it first reads the issuer's discovery document once: a dev issuer stops the start-up.
    """

    @asynccontextmanager
    async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
        if guard is not None:
            await run_in_threadpool(guard.check_at_startup)
        gctune.tune()
        if lifespan is None:
            yield
            return
        async with lifespan(app):
            yield

    return _lifespan


def create_app(
    *,
    service: str,
    settings: KitSettings,
    ready_checks: Mapping[str, Check] | None = None,
    health_checks: Mapping[str, Check] | None = None,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    version: str = "0.1.0",
    union_tags: frozenset[str] = frozenset(),
    header_names: dict[str, str] | None = None,
) -> FastAPI:
    """Build a FastAPI app with the kit's rules wired in."""
    configure_logging(service, settings.log_level, secrets=settings.secret_values())
    # Outside dev the issuer must not be mspctl's dev issuer: checked at start-up and by /readyz.
    guard = None if settings.is_dev else IssuerGuard(settings.jwt_issuer)
    # docs_url/redoc_url off: FastAPI's pages load their assets from a CDN; apidocs serves its own.
    app = _KitApp(
        title=service,
        version=version,
        responses=COMMON_ERROR_RESPONSES,
        lifespan=_with_gc_tuning(lifespan, guard),
        docs_url=None,
        redoc_url=None,
    )
    install_api_docs(app)
    app.state.settings = settings
    app.state.verifier = JWTVerifier(
        issuer=settings.jwt_issuer,
        jwks_url=settings.jwks_url,
        audience=service,
        algorithm=settings.jwt_algorithm,
        claim_map=settings.claim_map,
    )
    app.state.verified_tokens = VerifiedTokens()
    install_error_handlers(app, union_tags=union_tags, header_names=header_names)
    ready = dict(ready_checks or {})
    if guard is not None:
        ready["issuer"] = guard.check
    app.state.issuer_guard = guard
    health = dict(health_checks or {})

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        # Liveness never fails on a dependency; dependencies are reported as details.
        _, details = await run_in_threadpool(_run_checks, {**ready, **health})
        return JSONResponse({"status": "ok", "service": service, "checks": details})

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        ok, details = await run_in_threadpool(_run_checks, ready)
        return JSONResponse({"status": "ready" if ok else "unready", "checks": details}, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return metrics_response()

    app.add_middleware(MetricsMiddleware, service=service)
    app.add_middleware(BodyLimitMiddleware)
    get_logger("mspkit.app").debug("app_created", service=service)
    return app
