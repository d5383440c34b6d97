"""The portal as an OIDC client through Authlib: authorize URL, code exchange, id_token checks, refresh, revoke."""

from __future__ import annotations

import asyncio
import time
import warnings
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError, SecurityWarning
from joserfc.jwk import KeySet

from portal.settings import Settings

# The identity contract fixes EdDSA (Ed25519); joserfc flags the `EdDSA` name as superseded by RFC 9864.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)

CLOCK_SKEW_S = 30
METADATA_TTL_S = 300.0


class IdPUnavailable(RuntimeError):
    """The IdP did not answer (connection error, timeout, 5xx)."""


class SignInRefused(RuntimeError):
    """The IdP or the id_token said no; the words are safe to show (no token in them)."""


class TokenRefused(RuntimeError):
    """The refresh_token grant was refused: the IdP no longer honours this session."""


@dataclass
class _Cached:
    value: dict[str, Any]
    fetched_at: float


class OIDCClient:
    """One per process: discovery and JWKS are cached; each token call uses a short-lived Authlib client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._metadata: _Cached | None = None
        self._jwks: _Cached | None = None
        self._lock = asyncio.Lock()

    def _client(self, **kwargs: Any) -> AsyncOAuth2Client:
        s = self.settings
        return AsyncOAuth2Client(
            client_id=s.client_id,
            client_secret=s.client_secret.get_secret_value(),
            token_endpoint_auth_method="client_secret_basic",
            timeout=s.idp_timeout_s,
            follow_redirects=False,
            **kwargs,
        )

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self.settings.idp_timeout_s, follow_redirects=False) as http:
                resp = await http.get(url)
        except httpx.HTTPError as exc:
            raise IdPUnavailable("the sign-in service is not answering") from exc
        if resp.status_code != 200:
            raise IdPUnavailable(f"the sign-in service answered {resp.status_code}")
        return dict(resp.json())

    async def metadata(self) -> dict[str, Any]:
        """The issuer's discovery document (cached); outside dev a dev issuer is refused."""
        cached = self._metadata
        if cached is not None and time.monotonic() - cached.fetched_at < METADATA_TTL_S:
            return cached.value
        doc = await self._get_json(self.settings.discovery_url)
        if doc.get("issuer", "").rstrip("/") != self.settings.jwt_issuer.rstrip("/"):
            raise SignInRefused("the sign-in service names another issuer than MSP_JWT_ISSUER")
        if doc.get("mspctl_dev") and not self.settings.is_dev:
            raise SignInRefused("MSP_JWT_ISSUER is the dev issuer (mspctl_dev), refused outside MSP_ENV=dev")
        self._metadata = _Cached(doc, time.monotonic())
        return doc

    async def _key_set(self, force: bool = False) -> KeySet:
        cached = self._jwks
        if force or cached is None or time.monotonic() - cached.fetched_at >= METADATA_TTL_S:
            meta = await self.metadata()
            keys = await self._get_json(str(meta.get("jwks_uri") or self.settings.jwks_url))
            cached = _Cached(keys, time.monotonic())
            self._jwks = cached
        return KeySet.import_key_set(cached.value)  # type: ignore[arg-type]

    async def authorization_url(
        self, *, state: str, nonce: str, code_verifier: str, prompt: str | None = None, max_age: int | None = None
    ) -> str:
        """The IdP's /authorize URL for a code + PKCE (S256) request carrying state and nonce."""
        meta = await self.metadata()
        extra: dict[str, Any] = {"nonce": nonce}
        if prompt:
            extra["prompt"] = prompt
        if max_age is not None:
            extra["max_age"] = str(max_age)
        async with self._client(
            redirect_uri=self.settings.redirect_uri, scope=self.settings.oidc_scope, code_challenge_method="S256"
        ) as client:
            url, _ = client.create_authorization_url(
                meta["authorization_endpoint"], state=state, code_verifier=code_verifier, **extra
            )
        return str(url)

    async def exchange_code(self, code: str, code_verifier: str) -> dict[str, Any]:
        """The authorization_code grant (with the PKCE verifier); raises SignInRefused or IdPUnavailable."""
        meta = await self.metadata()
        try:
            async with self._client(redirect_uri=self.settings.redirect_uri) as client:
                token = await client.fetch_token(
                    meta["token_endpoint"],
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                    redirect_uri=self.settings.redirect_uri,
                )
        except OAuthError as exc:
            raise SignInRefused(f"the sign-in service refused the code ({exc.error})") from exc
        except httpx.HTTPError as exc:
            raise IdPUnavailable("the sign-in service is not answering") from exc
        return dict(token)

    async def verify_id_token(self, id_token: str, *, nonce: str, access_token: str | None = None) -> dict[str, Any]:
        """The id_token's claims once its signature (JWKS), iss, aud (this client), exp and nonce check out."""
        algorithms = [self.settings.jwt_algorithm]
        try:
            try:
                decoded = jwt.decode(id_token, await self._key_set(), algorithms=algorithms)
            except InvalidKeyIdError:
                # The IdP may have rotated its key since the JWKS was cached.
                decoded = jwt.decode(id_token, await self._key_set(force=True), algorithms=algorithms)
            options: dict[str, Any] = {
                "iss": {"essential": True, "value": self.settings.jwt_issuer.rstrip("/")},
                "aud": {"essential": True, "value": self.settings.client_id},
                "exp": {"essential": True},
                "nonce": {"essential": True},
            }
            params = {"nonce": nonce, "client_id": self.settings.client_id}
            if access_token:
                params["access_token"] = access_token
            claims = CodeIDToken(decoded.claims, decoded.header, options, params)
            claims.validate(now=int(time.time()), leeway=CLOCK_SKEW_S)
        except JoseError as exc:
            raise SignInRefused(f"the identity token was not accepted ({exc.error})") from exc
        except ValueError as exc:  # a token that is not a JWS at all
            raise SignInRefused("the identity token was not accepted (malformed)") from exc
        return dict(claims)

    async def refresh(self, refresh_token: str, api: str) -> dict[str, Any]:
        """An access token for one API (refresh_token grant naming it); TokenRefused or IdPUnavailable."""
        meta = await self.metadata()
        try:
            async with self._client() as client:
                token = await client.refresh_token(
                    meta["token_endpoint"], refresh_token=refresh_token, **self.settings.target_params(api)
                )
        except OAuthError as exc:
            raise TokenRefused(exc.error or "refused") from exc
        except httpx.HTTPError as exc:
            raise IdPUnavailable("the sign-in service is not answering") from exc
        return dict(token)

    async def revoke(self, refresh_token: str) -> None:
        """RFC 7009 revocation of the refresh token; failures are left to its expiry (logged by the caller)."""
        meta = await self.metadata()
        url = meta.get("revocation_endpoint")
        if not url:
            return
        try:
            async with self._client() as client:
                resp = await client.revoke_token(url, token=refresh_token, token_type_hint="refresh_token")
        except httpx.HTTPError as exc:
            raise IdPUnavailable("the sign-in service is not answering") from exc
        if resp.status_code != 200:
            raise IdPUnavailable(f"revocation answered {resp.status_code}")
