"""Security headers on every response (a route may set its own CSP, as the ticket pod will)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
STATIC_PREFIX = "/static/"


class SecurityHeadersMiddleware:
    """Adds CSP, nosniff, no-referrer, and `Cache-Control: no-store` on everything but static files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith(STATIC_PREFIX)

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                own_csp = "content-security-policy" in headers
                headers.setdefault("Content-Security-Policy", CSP)
                if not own_csp:
                    headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                # Pages show a person's data: no cache (browser or proxy) may keep them.
                headers.setdefault("Cache-Control", "public, max-age=300" if static else "no-store")
            await send(message)

        await self.app(scope, receive, _send)
