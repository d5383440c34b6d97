"""Calls between services: one client-credentials token per target service, and an httpx client using it.

A service token names exactly one audience (DESIGN.md § Contract: identities), so a token sent to
one service cannot be replayed at another. The grant names its target in the parameter the IdP
expects (`audience` as RFC 8693 does, `resource` as RFC 8707 does, or `scope` as Entra ID's
`<api>/.default`); which one is the `MSP_SERVICE_TOKEN_TARGET_PARAM` setting.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from mspkit.errors import AppError, Unauthenticated, Unavailable
from mspkit.logging import get_logger
from mspkit.requestid import current_request_id
from mspkit.settings import KitSettings

log = get_logger("mspkit.service_tokens")

TARGET_PARAMS = ("audience", "resource", "scope")
# A peer's answer larger than this is not an answer we asked for.
MAX_PEER_BODY_BYTES = 1024 * 1024


class ServiceTokenSource:
    """Client-credentials grant at the token endpoint: one cached token per target, renewed before expiry."""

    RENEW_BEFORE_S = 60.0

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        timeout_s: float = 3.0,
        target_param: str = "audience",
    ) -> None:
        if target_param not in TARGET_PARAMS:
            raise ValueError(f"target_param must be one of {', '.join(TARGET_PARAMS)}, not {target_param!r}")
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.timeout_s = timeout_s
        self.target_param = target_param
        self._tokens: dict[str, tuple[str, float]] = {}  # audience -> (token, monotonic expiry)
        self._lock = threading.Lock()

    def _target(self, audience: str) -> dict[str, str]:
        value = f"{audience}/.default" if self.target_param == "scope" else audience
        return {self.target_param: value}

    def token(self, audience: str, *, force: bool = False) -> str:
        """A valid token for calls to `audience`, fetched anew when near expiry or when `force`d."""
        with self._lock:
            cached = self._tokens.get(audience)
            if not force and cached is not None and time.monotonic() < cached[1] - self.RENEW_BEFORE_S:
                return cached[0]
            response = httpx.post(
                self.token_url,
                # client_secret_post: a `svc:` client id cannot go in HTTP Basic unencoded.
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self._client_secret,
                    **self._target(audience),
                },
                timeout=self.timeout_s,
            )
            if response.status_code != 200:
                raise Unauthenticated(f"token endpoint refused {self.client_id} for {audience}: {response.status_code}")
            body = response.json()
            token = str(body["access_token"])
            self._tokens[audience] = (token, time.monotonic() + float(body.get("expires_in", 300)))
            return token


def token_source(settings: KitSettings, *, timeout_s: float = 3.0) -> ServiceTokenSource:
    """This service's token source, from its settings (`svc:<name>`, its client secret, the target parameter)."""
    return ServiceTokenSource(
        token_url=settings.token_url,
        client_id=settings.service_client_id,
        client_secret=settings.service_client_secret.get_secret_value(),
        timeout_s=timeout_s,
        target_param=settings.service_token_target_param,
    )


def service_client(settings: KitSettings, *, base_url: str, audience: str, timeout_s: float) -> ServiceClient:
    """A client for calls to `audience` at `base_url`, with this service's token for it and one deadline for both."""
    return ServiceClient(
        base_url=base_url.rstrip("/"),
        audience=audience,
        tokens=token_source(settings, timeout_s=timeout_s),
        timeout_s=timeout_s,
    )


class ServiceClient:
    """httpx client for calls to one other service, authenticated with a token for that service alone."""

    def __init__(self, *, base_url: str, audience: str, tokens: ServiceTokenSource, timeout_s: float = 2.0) -> None:
        self.audience = audience
        self.tokens = tokens
        self.timeout_s = timeout_s
        self.http = httpx.Client(base_url=base_url, timeout=timeout_s, follow_redirects=False)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; on 401 fetch a fresh token once and retry."""
        headers = {"Authorization": f"Bearer {self.tokens.token(self.audience)}", **kwargs.pop("headers", {})}
        rid = current_request_id()
        if rid is not None:
            # The called service logs its access line under the same id (mspkit.requestid).
            headers.setdefault("X-Request-ID", rid)
        response = self.http.request(method, path, headers=headers, **kwargs)
        if response.status_code == 401:
            headers["Authorization"] = f"Bearer {self.tokens.token(self.audience, force=True)}"
            response = self.http.request(method, path, headers=headers, **kwargs)
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET with the service token."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        """POST with the service token."""
        return self.request("POST", path, **kwargs)

    def read_json(
        self, path: str, *, params: dict[str, str] | None = None, unavailable: type[Unavailable] = Unavailable
    ) -> Any | None:
        """The peer's JSON answer at `path`, None on 404; any doubt raises `unavailable` (503), never a guess.

        Doubt: unreachable, a refused or failing token endpoint, slower than the deadline in total,
        another status than 200 or 404, larger than `MAX_PEER_BODY_BYTES`, or not JSON.
        """
        started = time.monotonic()
        try:
            response = self.get(path, params=params)
        except httpx.HTTPError as exc:
            # Words, not the exception's class: the detail reaches the caller.
            why = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
            raise unavailable(f"{self.audience} unreachable ({why})") from None
        except AppError as exc:
            # The token endpoint refused or failed: that is our outage, not the caller's 401.
            raise unavailable(f"service token for {self.audience} unavailable ({exc.code})") from None
        # httpx's timeout is per phase; a slow trickle can exceed it in total, which is still "slow".
        if time.monotonic() - started > self.timeout_s:
            raise unavailable(f"{self.audience} answered too slowly")
        if response.status_code == 404:
            return None
        if response.status_code != 200 or len(response.content) > MAX_PEER_BODY_BYTES:
            log.warning("peer_read_failed", peer=self.audience, status=response.status_code)
            raise unavailable(f"{self.audience} answered {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise unavailable(f"{self.audience}'s answer is not JSON") from None
