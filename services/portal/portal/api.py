"""Calls to the intake, secrets_broker and vendor_sync APIs as the signed-in person, with their own token per API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, cast, get_args

import httpx
from fastapi.concurrency import run_in_threadpool

from mspkit.logging import get_logger
from mspkit.requestid import current_request_id
from portal.auth.oidc import IdPUnavailable, TokenRefused
from portal.auth.store import SessionRecord, delete_session, save_tokens
from portal.errors import ApiUnavailable, SessionExpired

if TYPE_CHECKING:
    from portal.runtime import Runtime

Api = Literal["intake", "secrets_broker", "vendor_sync"]
APIS: tuple[str, ...] = get_args(Api)
log = get_logger("portal.api")


class ApiClient:
    """Created per request for the signed-in person; tokens come from (and go back to) their session row."""

    def __init__(self, rt: Runtime, session: SessionRecord, *, return_to: str = "/") -> None:
        self._rt = rt
        self._session = session
        self._return_to = return_to

    async def get(
        self, api: Api, path: str, *, params: Any = None, json: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """GET `path` on `api`."""
        return await self.request("GET", api, path, params=params, json=json, headers=headers)

    async def post(
        self, api: Api, path: str, *, params: Any = None, json: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """POST `path` on `api`."""
        return await self.request("POST", api, path, params=params, json=json, headers=headers)

    async def patch(
        self, api: Api, path: str, *, params: Any = None, json: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """PATCH `path` on `api`."""
        return await self.request("PATCH", api, path, params=params, json=json, headers=headers)

    async def put(
        self, api: Api, path: str, *, params: Any = None, json: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """PUT `path` on `api`."""
        return await self.request("PUT", api, path, params=params, json=json, headers=headers)

    async def delete(
        self, api: Api, path: str, *, params: Any = None, json: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """DELETE `path` on `api`."""
        return await self.request("DELETE", api, path, params=params, json=json, headers=headers)

    async def request(
        self,
        method: str,
        api: Api,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request; SessionExpired when the IdP refuses the session, ApiUnavailable when the API is down.

        Any other status (4xx, 5xx but 503) is returned for the page to read.
        """
        if api not in APIS:
            raise ValueError(f"unknown API {api!r}")
        if not path.startswith("/") or path.startswith("//"):
            raise ValueError("path must be absolute on the API (start with one /)")
        url = self._rt.settings.api_urls()[api] + path
        response = await self._send(method, api, url, params, json, headers, fresh=False)
        if response.status_code == 401:
            # The cached token may have been refused early (key rotation, clock): one retry with a new one.
            response = await self._send(method, api, url, params, json, headers, fresh=True)
        if response.status_code == 503:
            raise ApiUnavailable(api)
        return response

    async def _send(
        self, method: str, api: str, url: str, params: Any, json: Any, headers: dict[str, str] | None, *, fresh: bool
    ) -> httpx.Response:
        sent = {**(headers or {}), "Authorization": f"Bearer {await self._token(api, fresh=fresh)}"}
        request_id = current_request_id()
        if request_id:
            sent["X-Request-ID"] = request_id
        try:
            return await self._rt.api_http().request(method, url, params=params, json=json, headers=sent)
        except httpx.TransportError as exc:  # connect errors and timeouts
            log.warning("api_unavailable", api=api, error=type(exc).__name__)
            raise ApiUnavailable(api) from exc

    async def _token(self, api: str, *, fresh: bool) -> str:
        """The person's access token for `api`: cached in the session until shortly before expiry."""
        tokens = self._session.tokens
        access = cast(dict[str, dict[str, Any]], tokens.setdefault("access", {}))
        now = self._rt.clock()
        cached = access.get(api)
        if cached and not fresh and float(cached["expires_at"]) - self._rt.settings.token_renew_margin_s > now:
            return str(cached["token"])
        try:
            got = await self._rt.oidc.refresh(str(tokens["refresh_token"]), api)
        except TokenRefused as exc:
            log.info("session_refresh_refused", api=api, reason=str(exc))
            await run_in_threadpool(delete_session, self._rt.engine, self._rt.box, self._session.id_hash)
            raise SessionExpired(self._return_to) from exc
        except IdPUnavailable as exc:
            raise ApiUnavailable("the sign-in service") from exc
        expires_in = float(got.get("expires_in") or 60)
        access[api] = {"token": got["access_token"], "expires_at": now + expires_in}
        if got.get("refresh_token"):
            tokens["refresh_token"] = got["refresh_token"]  # the IdP rotated it: keep the new one
        await run_in_threadpool(save_tokens, self._rt.engine, self._rt.box, self._session.id_hash, tokens)
        return str(got["access_token"])
