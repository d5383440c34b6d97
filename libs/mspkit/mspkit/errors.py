"""One error base with a code and a status, one handler, and the envelope declared in OpenAPI."""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.message import Message
from typing import Any, Final

from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from mspkit.patterns import words_for


class FieldProblem(BaseModel):
    """One problem a validation error found: the field and what is wrong with it, in words."""

    field: str = Field(description="Dotted path of the field, as the client wrote it; `body` for the whole body")
    detail: str = Field(description="What is wrong, in plain words, starting with the field's path")


class ErrorBody(BaseModel):
    """The error envelope every service returns."""

    error: str = Field(description="snake_case code: not_found, validation_error, invalid_transition, ...")
    detail: str = Field(description="What went wrong, in plain words")
    field: str | None = Field(None, description="Dotted path of the field at fault (the first one for a 422)")
    errors: list[FieldProblem] | None = Field(
        None, description="validation_error only: every problem found; the first is `field` and `detail`"
    )
    current_status: str | None = Field(None, description="The object's status, when the status is why")
    allowed: list[str] | None = Field(
        None, description="invalid_transition only: the statuses this caller may move the object to from here"
    )
    rule: str | None = Field(None, description="The rule that refused, when a policy decides (e.g. release_denied)")


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

    def __init__(self, detail: str = "", *, current_status: str, allowed: Iterable[str]) -> None:
        # `allowed` is always present, empty when nothing is reachable: the caller can act on either.
        super().__init__(
            detail or f"transition not allowed from {current_status}",
            current_status=current_status,
            allowed=list(allowed),
        )


class Gone(AppError):
    status_code = 410
    code = "gone"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class ValidationFailed(AppError):
    status_code = 422
    code = "validation_error"

    def __init__(
        self, detail: str = "", *, field: str = "body", errors: list[dict[str, str]] | None = None, **extra: Any
    ) -> None:
        # Like pydantic's 422s, a domain one lists its problems; a single one is its own list.
        super().__init__(detail, field=field, **extra)
        self.extra["errors"] = errors if errors is not None else [{"field": field, "detail": self.detail}]

    @classmethod
    def listing(cls, problems: Iterable[tuple[str, str]]) -> ValidationFailed:
        """A 422 listing every (field, words) problem, worded as the request validator words them."""
        errors = [field_problem(field, words) for field, words in problems]
        return cls(errors[0]["detail"], field=errors[0]["field"], errors=errors)


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
    409: _error_response(409, "Conflict, or invalid_transition with `current_status` and `allowed`"),
    413: _error_response(413, "Body over 1 MiB"),
    422: _error_response(422, "validation_error naming the field; `errors` lists every problem found"),
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


# pydantic messages that name a class, quote a regex or an internal parser state, said in words instead.
_WORDS_BY_TYPE: Final[dict[str, str]] = {
    "extra_forbidden": "unknown field",
    "missing": "is required",
    "uuid_parsing": "must be a UUID such as 3f2504e0-4f89-41d3-9a0c-0305e82c3301",
    "uuid_type": "must be a UUID such as 3f2504e0-4f89-41d3-9a0c-0305e82c3301",
    "uuid_version": "must be a UUID such as 3f2504e0-4f89-41d3-9a0c-0305e82c3301",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "dataclass_type": "must be a JSON object",
    "is_instance_of": "has the wrong type",
    "is_subclass_of": "has the wrong type",
}
_PREFIXES: Final = ("Value error, ", "Assertion failed, ")
# What a detail must never look like: a regex (anchors, classes, escapes, groups, counts) or a class name.
REGEX_LIKE: Final = re.compile(r"\\[xdswuAZbB]|\[[^\]]*(?:\w-\w|\\)[^\]]*\]|\(\?[:=!<]|\{\d+,\d*\}|\][+*?]?\$|\^[\[(]")
CLASS_NAME_LIKE: Final = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:Error|Exception)\b")
_FALLBACK: Final = "is not valid"


def looks_unplain(text: str) -> bool:
    """True when `text` quotes a regex or an exception's class name (the contract forbids both in details)."""
    return bool(REGEX_LIKE.search(text) or CLASS_NAME_LIKE.search(text))


def problem_words(error: Any) -> str:
    """What is wrong with one field, in plain words (never the regex, a class name or parser internals)."""
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        return words_for(str(ctx.get("pattern", "")))
    if kind == "json_invalid":
        reason = str(ctx.get("error", "")).strip()
        return f"is not valid JSON ({reason})" if reason and not looks_unplain(reason) else "is not valid JSON"
    if kind in _WORDS_BY_TYPE:
        return _WORDS_BY_TYPE[kind]
    message = str(error.get("msg", "")) or _FALLBACK
    for prefix in _PREFIXES:
        message = message.removeprefix(prefix)
    # A custom validator's message is ours; pydantic's are words. Either way a regex never gets out.
    return _FALLBACK if looks_unplain(message) else message


def field_problem(field: str, words: str) -> dict[str, str]:
    """One entry of a 422's `errors`: the field, and the words prefixed with its path."""
    return {"field": field, "detail": f"{field}: {words}"}


NOT_JSON_WORDS: Final = "send the body as JSON with the header Content-Type: application/json"


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def _expects_json(request: Request | None) -> bool:
    """Whether the matched route reads a JSON body (FastAPI also allows form bodies; the services use none)."""
    route = request.scope.get("route") if request is not None else None
    body_field = getattr(route, "body_field", None)
    return body_field is None or not isinstance(body_field.field_info, params.Form)


def not_json_problem(content_type: str | None) -> dict[str, str]:
    """The problem of a body that was not sent as `application/json`, naming what was sent."""
    sent = (content_type or "").split(";")[0].strip()[:80]
    shown = f"Content-Type {sent}" if sent.isprintable() and sent else "no Content-Type"
    return field_problem("body", f"{NOT_JSON_WORDS} (this request had {shown})")


def validation_body(
    exc: RequestValidationError,
    *,
    tags: frozenset[str] = frozenset(),
    header_names: dict[str, str] | None = None,
    request: Request | None = None,
) -> dict[str, Any]:
    """Turn pydantic's error list into the envelope: every problem in `errors`, the first one on top.

    A JSON route whose body came without `Content-Type: application/json` gets one problem for the
    body (that is the cause; the body's parse errors would only be noise), ahead of the others.
    """
    problems: list[dict[str, str]] = []
    content_type = request.headers.get("content-type") if request is not None else None
    wrong_media = request is not None and not _is_json(content_type) and _expects_json(request)
    for error in exc.errors():
        loc = error.get("loc") or ()
        if wrong_media and loc and loc[0] == "body":
            found = not_json_problem(content_type)
            if found not in problems:
                problems.insert(0, found)
            continue
        found = field_problem(field_path(error, tags=tags, header_names=header_names), problem_words(error))
        if found not in problems:
            problems.append(found)
    if not problems:
        problems.append(field_problem("body", "invalid input"))
    first = problems[0]
    return {"error": "validation_error", "detail": first["detail"], "field": first["field"], "errors": problems}


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
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        body = validation_body(exc, tags=union_tags, header_names=header_names, request=request)
        return JSONResponse(body, status_code=422)

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
