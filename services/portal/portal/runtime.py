"""What the portal's requests share in one process: settings, the session box, the OIDC client, the engine."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from sqlalchemy import Engine
from starlette.requests import Request

from portal.auth.crypto import Box, box_for
from portal.auth.oidc import OIDCClient
from portal.settings import Settings


@dataclass
class Runtime:
    """Held in `app.state.runtime`; tests build one with their own settings, engine or clock."""

    settings: Settings
    engine: Engine
    box: Box
    oidc: OIDCClient
    clock: Callable[[], float] = time.time
    # Pooled connections to the APIs, opened in the app's lifespan (or on first use).
    http: httpx.AsyncClient | None = field(default=None, repr=False)

    @classmethod
    def build(cls, settings: Settings, engine: Engine) -> Runtime:
        """A runtime from settings (refuses a missing or malformed session key outside dev)."""
        return cls(settings=settings, engine=engine, box=box_for(settings), oidc=OIDCClient(settings))

    def api_http(self) -> httpx.AsyncClient:
        """The shared HTTP client for API calls (no redirects followed: an API never redirects a person)."""
        if self.http is None:
            self.http = httpx.AsyncClient(timeout=self.settings.api_timeout_s, follow_redirects=False)
        return self.http


def runtime(request: Request) -> Runtime:
    """The runtime of the app serving this request."""
    return request.app.state.runtime  # type: ignore[no-any-return]
