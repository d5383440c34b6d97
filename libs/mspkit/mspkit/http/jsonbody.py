"""Vendor JSON: strict parsing (UTF-8, no NaN, duplicate keys remembered) and the Content-Type check."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from mspkit.http.body import VendorResponse
from mspkit.http.errors import VendorResponseError


@dataclass(frozen=True)
class JsonResponse:
    """A 2xx response whose body was parsed as JSON."""

    status: int
    url: str
    headers: httpx.Headers
    data: Any


class JsonObject(dict[str, Any]):
    """A JSON object that remembers every value of keys that appeared more than once (last one wins)."""

    duplicates: dict[str, list[Any]]

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__()
        self.duplicates = {}
        for key, value in pairs:
            if key in self:
                self.duplicates.setdefault(key, [self[key]]).append(value)
            self[key] = value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def parse_json(body: bytes) -> Any:
    """Parse a body strictly as UTF-8 JSON (no NaN/Infinity); raise VendorResponseError otherwise."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise VendorResponseError("response body is not UTF-8") from None
    try:
        return json.loads(text, object_pairs_hook=JsonObject, parse_constant=_refuse_constant)
    except RecursionError:
        raise VendorResponseError("response JSON is nested too deeply") from None
    except ValueError as exc:
        # The JSON error text holds a position, never the body, so it is safe to keep.
        raise VendorResponseError(f"response is not valid JSON: {exc}") from None


def is_json_media_type(content_type: str | None) -> bool:
    """True for application/json and any +json type (application/rdap+json, problem+json...)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def decode_json_response(response: VendorResponse, *, vendor: str | None = None) -> JsonResponse:
    """Check the Content-Type and parse the body as JSON, refusing HTML and other non-JSON bodies."""
    content_type = response.headers.get("content-type")
    if content_type and not is_json_media_type(content_type):
        media = content_type.split(";", 1)[0].strip()[:64]
        raise VendorResponseError(f"expected JSON from {response.url}, got {media}", vendor=vendor)
    try:
        data = parse_json(response.body)
    except VendorResponseError as exc:
        raise VendorResponseError(f"{exc} ({response.url})", vendor=vendor) from None
    return JsonResponse(status=response.status, url=response.url, headers=response.headers, data=data)
