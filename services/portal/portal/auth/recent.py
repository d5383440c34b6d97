"""The recent-sign-in rule of the reveal page (the clock is a parameter, so tests need not wait)."""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlencode

RECENT_SIGN_IN_S = 15 * 60


class _HasAuthTime(Protocol):
    @property
    def auth_time(self) -> int: ...


def signed_in_recently(viewer: _HasAuthTime, now: float, max_age: int = RECENT_SIGN_IN_S) -> bool:
    """True when the viewer's last real sign-in at the IdP (`auth_time`) is at most `max_age` seconds old."""
    return now - viewer.auth_time <= max_age


def fresh_sign_in_url(return_to: str) -> str:
    """Where to send someone whose sign-in is too old: a forced new sign-in at the IdP, then back to `return_to`."""
    return "/login?" + urlencode({"prompt": "login", "return_to": return_to})
