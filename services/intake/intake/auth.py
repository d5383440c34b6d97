"""The caller, resolved on the event loop: verified tokens are cached until they expire.

The kit's dependencies are synchronous, so FastAPI runs each in its thread pool; on intake's hot
path that costs more than the check itself. These async versions keep the kit's verifier (one
algorithm, iss/aud/exp/nbf, JWKS) and its errors, and add a small cache of tokens already verified:
the same bearer token is checked once, then served from memory until its `exp` (plus the verifier's
clock skew) or five minutes, whichever is first. A token seen for the first time is verified in the
thread pool, because that may fetch the JWKS over the network.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mspkit.auth import CLOCK_SKEW_S, JWTVerifier, Principal
from mspkit.errors import Forbidden, Unauthenticated

MAX_CACHED_TOKENS = 10_000
MAX_CACHE_AGE_S = 300.0

_bearer = HTTPBearer(auto_error=False, description="JWT from the MSP identity provider")


class VerifiedTokens:
    """An LRU of verified tokens (keyed by their SHA-256) → (principal, monotonic expiry)."""

    def __init__(self, max_size: int = MAX_CACHED_TOKENS, max_age_s: float = MAX_CACHE_AGE_S) -> None:
        self.max_size = max_size
        self.max_age_s = max_age_s
        self._entries: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, token: str) -> Principal | None:
        """The cached principal for this exact token, if still valid."""
        key = self._key(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        principal, expires = entry
        if time.monotonic() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return principal

    def put(self, token: str, principal: Principal) -> None:
        """Remember a token the verifier accepted, until its exp (plus skew) or the cache's max age."""
        exp = principal.claims.get("exp")
        remaining = self.max_age_s
        if isinstance(exp, int | float):
            remaining = min(remaining, float(exp) + CLOCK_SKEW_S - time.time())
        if remaining <= 0:
            return
        self._entries[self._key(token)] = (principal, time.monotonic() + remaining)
        self._entries.move_to_end(self._key(token))
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every token."""
        self._entries.clear()


async def _verified(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthenticated("bearer token required")
    token = credentials.credentials
    cache: VerifiedTokens = request.app.state.verified_tokens
    principal = cache.get(token)
    if principal is None:
        verifier: JWTVerifier = request.app.state.verifier
        principal = await run_in_threadpool(verifier.verify, token)
        cache.put(token, principal)
    return principal


Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def current_user(request: Request, credentials: Bearer) -> Principal:
    """FastAPI dependency: the verified caller, or 401."""
    return await _verified(request, credentials)


CurrentUser = Annotated[Principal, Depends(current_user)]

# The checks below take the bearer credentials themselves rather than `CurrentUser`: one dependency
# level less for FastAPI to solve on every request.


def require_roles(*roles: str) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[Principal]]:
    """Dependency factory: the caller must hold one of `roles` (401 without a valid token, else 403)."""
    allowed = frozenset(roles)

    async def _check(request: Request, credentials: Bearer) -> Principal:
        user = await _verified(request, credentials)
        if user.role not in allowed:
            raise Forbidden("role not allowed")
        return user

    return _check


def require_service(*subs: str) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[Principal]]:
    """Dependency factory for /internal routes: a service token whose `sub` is on the allowlist."""
    allowed = frozenset(subs)

    async def _check(request: Request, credentials: Bearer) -> Principal:
        user = await _verified(request, credentials)
        if user.role != "service" or user.sub not in allowed:
            raise Forbidden("service not allowed on this route")
        return user

    return _check
