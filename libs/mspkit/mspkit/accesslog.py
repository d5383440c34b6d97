"""Request ids on every response and one JSON access-log line per request (pure ASGI: it costs little).

`create_app` puts this outside every other layer, FastAPI's 500 handler included, so the 413 of the
body cap, a 401, a 422 and a 500 all carry `X-Request-ID` and are logged like any other answer.

The line holds the method, the route template (never the raw path: ids and query strings stay out,
and a query may hold a cursor or an e-mail address), the status, the duration to the last body byte,
the verified caller's `sub` (None when the request did not authenticate) and the request id. Never a
header, the body, the query or path parameters. Probes (`/healthz`, `/readyz`, `/metrics`) are
logged at DEBUG only: an orchestrator calls them every few seconds and would drown the log.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mspkit import requestid
from mspkit.logging import get_logger

QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
UNMATCHED = "unmatched"
log = get_logger("mspkit.access")


class AccessLogMiddleware:
    """Accept or make the request id, bind it for the request, echo it, and log the access line."""

    def __init__(self, app: ASGIApp, *, quiet_paths: frozenset[str] = QUIET_PATHS) -> None:
        self.app = app
        self.quiet_paths = quiet_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = None
        for name, value in scope["headers"]:
            if name == requestid.HEADER:
                request_id = requestid.accepted_id(value)
                break
        if request_id is None:
            request_id = requestid.new_request_id()
        id_header = (requestid.HEADER, request_id.encode("ascii"))
        status = 500
        end = 0.0

        async def _send(message: Message) -> None:
            nonlocal status, end
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                # A new list: the response object may be sent again and must not collect copies.
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            elif kind == "http.response.body" and not message.get("more_body", False):
                end = time.perf_counter()
            await send(message)

        binding = requestid.enter(request_id)
        try:
            await self.app(scope, receive, _send)
        finally:
            route: Any = scope.get("route")
            emit = log.debug if scope["path"] in self.quiet_paths else log.info
            emit(
                "http_access",
                method=scope["method"],
                route=getattr(route, "path", None) or UNMATCHED,
                status=status,
                duration_ms=round(((end or time.perf_counter()) - start) * 1000, 2),
                sub=binding.context.sub,
            )
            binding.leave()
