"""The portal's cookies: `__Host-` prefixed, so always Secure, Path=/ and no Domain (loopback http accepts them)."""

from __future__ import annotations

from starlette.responses import Response

SESSION_COOKIE = "__Host-msp_session"
# Binds a sign-in in progress to the browser that started it (login CSRF); holds only a random id.
LOGIN_COOKIE = "__Host-msp_login"
# The ticket pod's own session, read only on /pod/* paths (DESIGN § Contract: PSA, "Ticket pod").
POD_COOKIE = "__Host-msp_pod"


def set_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    """Set a `__Host-` cookie: Secure, HttpOnly, SameSite=Lax, Path=/."""
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="lax")


def clear_cookie(response: Response, name: str) -> None:
    """Expire a cookie (with the same attributes, or the browser keeps it)."""
    response.delete_cookie(name, path="/", secure=True, httponly=True, samesite="lax")


def set_pod_cookie(response: Response, value: str, max_age: int) -> None:
    """Set the pod's cookie: Secure, HttpOnly, SameSite=None and Partitioned, so a PSA's frame may keep it.

    Written by hand: Python before 3.14 has no `Partitioned` cookie attribute (Starlette refuses it).
    CHIPS keys the cookie to the PSA's site, so it is worth nothing in any other site's frame.
    """
    response.headers.append(
        "set-cookie",
        f"{POD_COOKIE}={value}; Max-Age={max_age}; Path=/; Secure; HttpOnly; SameSite=None; Partitioned",
    )
