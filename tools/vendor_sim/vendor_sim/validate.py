"""Checks shared by the /_sim state bodies: collect every bad field, then answer 400 naming each one."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

_LABEL = re.compile(r"^(?:\*|[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{12}$")


class Problems:
    """Every bad field of one body, as {field: dotted path, detail: plain words}."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, field: str, detail: str) -> None:
        """Record one bad field."""
        self.items.append({"field": field, "detail": detail})

    def __bool__(self) -> bool:
        return bool(self.items)

    def response(self, status: int = 400) -> JSONResponse:
        """The contract's validation error: the first problem on top, all of them in `errors`."""
        first = self.items[0]
        body = {"error": "validation_error", "detail": first["detail"], "field": first["field"], "errors": self.items}
        return JSONResponse(body, status_code=status)


async def json_body(request: Request) -> tuple[Any, Problems]:
    """The parsed JSON body, or a problem naming `body` when it is not JSON."""
    problems = Problems()
    try:
        return json.loads(await request.body() or b"null"), problems
    except ValueError:
        problems.add("body", "the body is not valid JSON")
        return None, problems


def fields(problems: Problems, path: str, value: Any, *, required: tuple[str, ...], optional: tuple[str, ...]) -> bool:
    """True when value is an object holding every required field; unknown fields are added as problems either way."""
    if not isinstance(value, dict):
        problems.add(path or "body", "must be a JSON object")
        return False
    prefix = f"{path}." if path else ""
    missing = [name for name in required if name not in value]
    for name in missing:
        problems.add(f"{prefix}{name}", "is required")
    for name in sorted(set(value) - set(required) - set(optional)):
        problems.add(f"{prefix}{name}", "is not a known field")
    return not missing


def hostname(value: Any, *, min_labels: int = 2) -> str | None:
    """A DNS name in lower-case LDH form without the final dot (IDNs as A-labels), or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().rstrip(".")
    try:
        text = text.encode("idna").decode("ascii") if not text.isascii() else text.lower()
    except UnicodeError:
        return None
    labels = text.split(".")
    if len(text) > 253 or len(labels) < min_labels or not all(_LABEL.match(label) for label in labels):
        return None
    return text


def timestamp(value: Any) -> str | None:
    """An RFC 3339 time with an offset, normalised to UTC `YYYY-MM-DDTHH:MM:SSZ`, or None."""
    if not isinstance(value, str) or "T" not in value.upper():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return format_time(parsed)


def format_time(when: datetime) -> str:
    """UTC `YYYY-MM-DDTHH:MM:SSZ`."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """The datetime of a `format_time` string."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def now() -> str:
    """The current time as `format_time` writes it."""
    return format_time(datetime.now(UTC))


def is_int(value: Any, low: int, high: int) -> bool:
    """An integer (not a boolean) in [low, high]."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def text(value: Any, limit: int = 255) -> bool:
    """A non-empty string of at most `limit` characters."""
    return isinstance(value, str) and 0 < len(value.strip()) and len(value) <= limit


def fingerprint_field(problems: Problems, path: str, value: Any) -> str | None:
    """An optional key fingerprint (12 lower-case hex digits, as GET shows it) or null."""
    if value is None:
        return None
    if isinstance(value, str) and _FINGERPRINT.match(value):
        return value
    problems.add(path, "must be null or 12 lower-case hex digits (a key fingerprint, never a key)")
    return None


def query_int(raw: str | None, default: int) -> int | None:
    """A query parameter as an integer (the default when absent), or None when it is not one."""
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        return None
