"""Encryption at rest of what a session row holds (Fernet: AES-128-CBC with HMAC-SHA256)."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from mspkit.logging import get_logger
from portal.settings import Settings

log = get_logger("portal.auth.crypto")


class SessionKeyError(RuntimeError):
    """The session key setting is missing or malformed."""


class Box:
    """Encrypts and decrypts JSON values with the portal's session key."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except (ValueError, TypeError) as exc:
            raise SessionKeyError(
                "PORTAL_SESSION_KEY must be a Fernet key (urlsafe base64 of 32 bytes; "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
            ) from exc

    def seal(self, value: Any) -> bytes:
        """Encrypt a JSON-serialisable value."""
        return self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode())

    def open(self, blob: bytes) -> Any:
        """Decrypt what `seal` made; raises InvalidToken for anything else (another key, tampering)."""
        return json.loads(self._fernet.decrypt(bytes(blob)))


_dev_key: str | None = None


def box_for(settings: Settings) -> Box:
    """The box for the configured key (in dev without one: a per-process key, so sessions do not survive a restart)."""
    global _dev_key
    key = settings.session_key.get_secret_value()
    if not key:
        if not settings.is_dev:
            raise SessionKeyError("PORTAL_SESSION_KEY is not set")
        if _dev_key is None:
            log.warning("portal_session_key_missing", detail="using a per-process key; sessions end at restart")
            _dev_key = Fernet.generate_key().decode()
        key = _dev_key
    return Box(key)


def digest(value: str) -> str:
    """SHA-256 hex of an opaque id (what the database keeps instead of the id)."""
    return hashlib.sha256(value.encode()).hexdigest()


def new_id() -> str:
    """A fresh opaque id (256 bits)."""
    return secrets.token_urlsafe(32)


__all__ = ["Box", "InvalidToken", "SessionKeyError", "box_for", "digest", "new_id"]
