"""Security headers on every response; the ticket pod's pages may be framed by the configured PSA only."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP_PARTS = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors {ancestors}; form-action 'self'; base-uri 'none'"
)
CSP = CSP_PARTS.format(ancestors="'none'")
STATIC_PREFIX = "/static/"


def pod_csp(psa_origin: str) -> str:
    """The pod's CSP: the portal's own, except that the PSA's origin (and only it) may frame the page."""
    return CSP_PARTS.format(ancestors=psa_origin)


class SecurityHeadersMiddleware:
    """Adds CSP, nosniff, no-referrer, and `Cache-Control: no-store` on everything but static files.

    Under `pod_prefix` (`/pod/<provider>/`, set only when a PSA is configured) the CSP names the PSA's
    origin in `frame-ancestors` and X-Frame-Options is left out (it cannot name an origin); every other
    path, the pod's sign-in pop-up and `/pod/session` included, keeps `frame-ancestors 'none'`.
    """

    def __init__(self, app: ASGIApp, pod_prefix: str = "", pod_origin: str = "") -> None:
        self.app = app
        self.pod_prefix = pod_prefix if pod_prefix and pod_origin else ""
        self.pod_csp = pod_csp(pod_origin) if self.pod_prefix else ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        static = path.startswith(STATIC_PREFIX)
        pod = bool(self.pod_prefix) and path.startswith(self.pod_prefix)

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if pod:
                    headers["Content-Security-Policy"] = self.pod_csp
                    if "x-frame-options" in headers:
                        del headers["X-Frame-Options"]
                else:
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
