"""Canary forms for leak sweeps: a secret must not appear in any common encoding."""

from __future__ import annotations

import base64
import json
import urllib.parse


def canary_forms(canary: str) -> dict[str, str]:
    """The canary as plain, base64 (std and url-safe), JSON-escaped, URL-encoded and hex text."""
    raw = canary.encode()
    forms = {
        "plain": canary,
        "base64": base64.b64encode(raw).decode().rstrip("="),
        "base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "json": json.dumps(canary)[1:-1],
        "url": urllib.parse.quote(canary, safe=""),
        "url_plus": urllib.parse.quote_plus(canary),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
    }
    return forms


def find_leaks(haystack: str | bytes, canary: str) -> list[str]:
    """Names of the canary forms found in `haystack` (empty when clean)."""
    text = haystack.decode("utf-8", "replace") if isinstance(haystack, bytes) else haystack
    return [name for name, form in canary_forms(canary).items() if form and form in text]
