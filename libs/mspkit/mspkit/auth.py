"""JWT identities: JWKS verification with one algorithm, role and service-allowlist dependencies."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mspkit.errors import Forbidden, Unauthenticated

ROLES = frozenset({"client_user", "client_admin", "technician", "admin", "service"})
CLIENT_ROLES = frozenset({"client_user", "client_admin"})
CLOCK_SKEW_S = 30


@dataclass(frozen=True)
class Principal:
    """The verified caller."""

    sub: str
    role: str
    client_id: uuid.UUID | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_client(self) -> bool:
        """True for client_user and client_admin."""
        return self.role in CLIENT_ROLES


class JWKSCache:
    """Fetches the issuer's JWKS, caches it, and refetches (rate-limited) on an unknown `kid`."""

    def __init__(self, url: str, *, ttl_s: float = 300.0, min_refetch_s: float = 5.0, timeout_s: float = 3.0):
        self.url = url
        self.ttl_s = ttl_s
        self.min_refetch_s = min_refetch_s
        self.timeout_s = timeout_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _fetch(self) -> None:
        response = httpx.get(self.url, timeout=self.timeout_s, follow_redirects=False)
        response.raise_for_status()
        keys: dict[str, jwt.PyJWK] = {}
        for jwk in response.json().get("keys", []):
            try:
                key = jwt.PyJWK(jwk)
            except (jwt.PyJWTError, ValueError, KeyError):
                continue  # an unusable key in the set must not block the others
            keys[str(jwk.get("kid", ""))] = key
        self._keys = keys
        self._fetched_at = time.monotonic()

    def get(self, kid: str) -> jwt.PyJWK:
        """The key for `kid`; a rotation is picked up by refetching when the kid is unknown."""
        with self._lock:
            age = time.monotonic() - self._fetched_at
            if age > self.ttl_s or (kid not in self._keys and age > self.min_refetch_s):
                try:
                    self._fetch()
                except (httpx.HTTPError, ValueError) as exc:
                    if not self._keys:
                        raise Unauthenticated("identity provider unreachable") from exc
            key = self._keys.get(kid)
        if key is None:
            raise Unauthenticated("unknown signing key")
        return key


class JWTVerifier:
    """Verifies bearer tokens against one issuer, one audience and exactly one algorithm."""

    def __init__(self, *, issuer: str, jwks_url: str, audience: str, algorithm: str = "EdDSA") -> None:
        self.issuer = issuer
        self.audience = audience
        self.algorithm = algorithm
        self.jwks = JWKSCache(jwks_url)

    def verify(self, token: str) -> Principal:
        """Return the principal for a valid token, or raise Unauthenticated."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("malformed token") from exc
        if header.get("alg") != self.algorithm:
            raise Unauthenticated("token algorithm not accepted")
        key = self.jwks.get(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=CLOCK_SKEW_S,
                options={"require": ["exp", "iss", "aud", "sub"], "verify_nbf": True},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {type(exc).__name__}") from exc
        return principal_from_claims(claims)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """Validate the role and client_id claims and build the principal."""
    role = claims.get("role")
    if role not in ROLES:
        raise Unauthenticated("token has no valid role")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 200:
        raise Unauthenticated("token has no valid sub")
    client_id = None
    if role in CLIENT_ROLES:
        try:
            client_id = uuid.UUID(str(claims.get("client_id")))
        except ValueError as exc:
            raise Unauthenticated("client token without a valid client_id") from exc
    if role == "service" and not sub.startswith("svc:"):
        raise Unauthenticated("service token without a svc: subject")
    return Principal(sub=sub, role=role, client_id=client_id, claims=claims)


_bearer = HTTPBearer(auto_error=False, description="JWT from the MSP identity provider")


def current_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """FastAPI dependency: the verified caller, or 401."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthenticated("bearer token required")
    verifier: JWTVerifier = request.app.state.verifier
    return verifier.verify(credentials.credentials)


CurrentUser = Annotated[Principal, Depends(current_user)]


def require_roles(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency factory: the caller must hold one of `roles`.

    The check is `async` (it does no I/O) so FastAPI runs it on the event loop instead of handing
    it to the threadpool on every request; `current_user` stays sync (a JWKS refresh may fetch).
    """
    allowed = frozenset(roles)

    async def _check(user: CurrentUser) -> Principal:
        if user.role not in allowed:
            raise Forbidden("role not allowed")
        return user

    return _check


def require_service(*subs: str) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency factory for /internal routes: a service token whose `sub` is on the allowlist (async: no I/O)."""
    allowed = frozenset(subs)

    async def _check(user: CurrentUser) -> Principal:
        if user.role != "service" or user.sub not in allowed:
            raise Forbidden("service not allowed on this route")
        return user

    return _check


class ServiceTokenSource:
    """Client-credentials grant at the token endpoint, cached and renewed before expiry."""

    RENEW_BEFORE_S = 60.0

    def __init__(self, *, token_url: str, client_id: str, client_secret: str, timeout_s: float = 3.0) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.timeout_s = timeout_s
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def token(self, *, force: bool = False) -> str:
        """A valid service token, fetching a new one when near expiry."""
        with self._lock:
            if force or self._token is None or time.monotonic() > self._expires_at - self.RENEW_BEFORE_S:
                response = httpx.post(
                    self.token_url,
                    # client_secret_post: a `svc:` client id cannot go in HTTP Basic unencoded.
                    data={
                        "grant_type": "client_credentials",
                        "client_id": self.client_id,
                        "client_secret": self._client_secret,
                    },
                    timeout=self.timeout_s,
                )
                if response.status_code != 200:
                    raise Unauthenticated(f"token endpoint refused {self.client_id}: {response.status_code}")
                body = response.json()
                self._token = str(body["access_token"])
                self._expires_at = time.monotonic() + float(body.get("expires_in", 300))
            return self._token


class ServiceClient:
    """httpx client for calls to another service, authenticated with this service's token."""

    def __init__(self, *, base_url: str, tokens: ServiceTokenSource, timeout_s: float = 2.0) -> None:
        self.tokens = tokens
        self.http = httpx.Client(base_url=base_url, timeout=timeout_s, follow_redirects=False)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; on 401 fetch a fresh token once and retry."""
        headers = {"Authorization": f"Bearer {self.tokens.token()}", **kwargs.pop("headers", {})}
        response = self.http.request(method, path, headers=headers, **kwargs)
        if response.status_code == 401:
            headers["Authorization"] = f"Bearer {self.tokens.token(force=True)}"
            response = self.http.request(method, path, headers=headers, **kwargs)
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET with the service token."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        """POST with the service token."""
        return self.request("POST", path, **kwargs)
