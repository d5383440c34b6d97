"""One error base with a code and a status, one handler, and the envelope declared in OpenAPI."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match


class ErrorBody(BaseModel):
    """The error envelope every service returns."""

    error: str
    detail: str
    field: str | None = None
    current_status: str | None = None
    rule: str | None = None


class AppError(Exception):
    """Base of every domain error; carries its HTTP status and snake_case code."""

    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str = "", *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.code)
        self.detail = detail or self.code.replace("_", " ")
        self.field = field
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON envelope for this error."""
        out: dict[str, Any] = {"error": self.code, "detail": self.detail}
        if self.field is not None:
            out["field"] = self.field
        out.update({k: v for k, v in self.extra.items() if v is not None})
        return out


class Unauthenticated(AppError):
    status_code = 401
    code = "unauthenticated"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class InvalidTransition(AppError):
    status_code = 409
    code = "invalid_transition"

    def __init__(self, detail: str = "", *, current_status: str) -> None:
        super().__init__(detail or f"transition not allowed from {current_status}", current_status=current_status)


class Gone(AppError):
    status_code = 410
    code = "gone"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class ValidationFailed(AppError):
    status_code = 422
    code = "validation_error"


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"


class Unavailable(AppError):
    status_code = 503
    code = "unavailable"


def _error_response(status: int, description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Declared on every route so schema-conformance checks accept each error the kit can produce.
COMMON_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error_response(400, "Bad request"),
    401: _error_response(401, "Missing or invalid bearer token"),
    403: _error_response(403, "Not allowed"),
    404: _error_response(404, "Not found (also for another tenant's object)"),
    409: _error_response(409, "Conflict or invalid transition"),
    413: _error_response(413, "Body over 1 MiB"),
    422: _error_response(422, "Validation error naming the field"),
    429: _error_response(429, "Rate limited"),
    503: _error_response(503, "A dependency is unavailable"),
}


def field_path(error: Any, *, tags: frozenset[str] = frozenset(), header_names: dict[str, str] | None = None) -> str:
    """The dotted path of the field a pydantic error is about, as the client wrote it.

    Discriminated unions put the tag value in the path (`purchase.items.0`); `tags` lists those
    values so they are dropped. Header names are restored to their canonical spelling.
    """
    loc = list(error.get("loc", ()))
    location = loc.pop(0) if loc and loc[0] in {"body", "query", "path", "header"} else None
    if error.get("type") == "json_invalid":
        return "body"
    parts = [str(p) for p in loc if not (isinstance(p, str) and p in tags)]
    if location == "header" and parts:
        parts = [(header_names or {}).get(parts[0].lower(), parts[0])]
    if error.get("type") in {"union_tag_invalid", "union_tag_not_found"}:
        parts.append(str((error.get("ctx") or {}).get("discriminator", "type")).strip("'\""))
    return ".".join(parts) or "body"


def validation_body(
    exc: RequestValidationError, *, tags: frozenset[str] = frozenset(), header_names: dict[str, str] | None = None
) -> dict[str, Any]:
    """Turn pydantic's error list into the envelope, naming the first failing field."""
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid input", "type": "value_error"}
    field = field_path(first, tags=tags, header_names=header_names)
    msg = "unknown field" if first.get("type") == "extra_forbidden" else str(first.get("msg", "invalid input"))
    return {"error": "validation_error", "detail": f"{field}: {msg}", "field": field}


_HTTP_CODES = {
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


def _allowed_methods(request: Request) -> str:
    # FastAPI makes one route per method, so every route matching the path contributes.
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def install_error_handlers(
    app: FastAPI, *, union_tags: frozenset[str] = frozenset(), header_names: dict[str, str] | None = None
) -> None:
    """Render every error, including framework ones, as the contract's envelope."""

    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_body(exc, tags=union_tags, header_names=header_names), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # RFC 9110 wants `Allow`; Starlette's names only the first matching route's methods.
            headers["Allow"] = _allowed_methods(request)
        return JSONResponse({"error": code, "detail": str(exc.detail)}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def _unhandled(_: Request, exc: Exception) -> JSONResponse:
        # The message is never echoed: it may hold a secret.
        from mspkit.logging import get_logger

        get_logger("mspkit.errors").error("unhandled_error", exc_type=type(exc).__name__)
        return JSONResponse({"error": "internal_error", "detail": "internal error"}, status_code=500)
