"""A response as a vendor would send it, before faults are applied."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON_MEDIA = "application/json"


@dataclass(frozen=True)
class Payload:
    """Status, body bytes, media type and extra headers of one answer."""

    status: int
    body: bytes
    media_type: str = JSON_MEDIA
    headers: dict[str, str] = field(default_factory=dict)


def json_payload(status: int, data: Any, headers: dict[str, str] | None = None) -> Payload:
    """A JSON answer."""
    return Payload(status=status, body=json.dumps(data).encode(), headers=dict(headers or {}))


def empty(status: int = 204) -> Payload:
    """An answer without a body (204 No Content)."""
    return Payload(status=status, body=b"")
