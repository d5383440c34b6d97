"""Credential kinds and categories in words (the broker's codes, DESIGN.md § Contract: secrets_broker)."""

from __future__ import annotations

from typing import Any, Final

KIND_WORDS: Final[dict[str, str]] = {"password": "Password", "api_key": "API key"}
CATEGORY_WORDS: Final[dict[str, str]] = {
    "isp": "Internet provider",
    "registrar": "Domain registrar",
    "dns_host": "DNS host",
    "hosting": "Hosting",
    "cloud": "Cloud service",
    "email": "Email",
    "spam_filter": "Spam filter",
    "software_license": "Software licence",
    "network_device": "Network device",
    "workstation": "Workstation",
    "server": "Server",
    "other": "Other",
}


def _readable(code: Any) -> str:
    # A code newer than this table still reads as words rather than breaking the page.
    return str(code or "").replace("_", " ").capitalize()


def kind_words(kind: Any) -> str:
    """A credential kind in words (`api_key` → `API key`)."""
    return KIND_WORDS.get(str(kind), _readable(kind))


def category_words(category: Any) -> str:
    """A credential category in words (`isp` → `Internet provider`)."""
    return CATEGORY_WORDS.get(str(category), _readable(category))
