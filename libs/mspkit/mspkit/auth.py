"""JWT identities: JWKS verification with one algorithm, role and service-allowlist dependencies."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

import jwt
from cachetools import TLRUCache
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mspkit.errors import Forbidden, Unauthenticated
from mspkit.jwks import JWKSClient
from mspkit.requestid import note_sub
from mspkit.staff import StaffView

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
    # A technician's staff view, resolved per request after the role check (never cached with the token).
    staff: StaffView | None = field(default=None, compare=False, repr=False)

    @property
    def is_client(self) -> bool:
        """True for client_user and client_admin."""
        return self.role in CLIENT_ROLES


@dataclass(frozen=True)
class ClaimMap:
    """Which claims carry the subject, the role (one value, or an array of roles) and the tenant.

    The defaults are the dev issuer's; a real IdP is plugged in by settings alone (Entra ID, say:
    subject `oid`, roles `roles`, tenant an `extn.` claim). An empty name turns that claim off.
    """

    subject: str = "sub"
    role: str = "role"
    roles: str = "roles"
    tenant: str = "msp_client_id"


# Why a token was refused, in words a caller can act on (never an exception's class name).
_REFUSALS: dict[type[jwt.PyJWTError], str] = {
    jwt.ExpiredSignatureError: "token has expired",
    jwt.ImmatureSignatureError: "token is not valid yet",
    jwt.InvalidAudienceError: "token is not meant for this service",
    jwt.InvalidIssuerError: "token comes from another issuer",
    jwt.MissingRequiredClaimError: "token lacks a required claim",
    jwt.InvalidSignatureError: "token signature does not verify",
    jwt.DecodeError: "token is malformed",
}


# A service token is minted for one target (`aud=[that service]`): one naming several could be replayed
# at each of them, so every verifier refuses it even when its own name is among them.
SHARED_SERVICE_TOKEN = "service token names more than one audience (one token per target service)"


def refusal_of(exc: jwt.PyJWTError) -> str:
    """Plain words for a PyJWT refusal."""
    return next((words for kind, words in _REFUSALS.items() if isinstance(exc, kind)), "token is invalid")


class JWTVerifier:
    """Verifies bearer tokens against one issuer, one audience and exactly one algorithm."""

    def __init__(
        self,
        *,
        issuer: str,
        jwks_url: str,
        audience: str,
        algorithm: str = "EdDSA",
        claim_map: ClaimMap | None = None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.algorithm = algorithm
        self.claim_map = claim_map or ClaimMap()
        self.jwks = JWKSClient(jwks_url)

    def verify(self, token: str) -> Principal:
        """Return the principal for a valid token, or raise Unauthenticated."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("token is malformed") from exc
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
                options={"require": ["exp", "iss", "aud"], "verify_nbf": True},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(refusal_of(exc)) from exc
        return principal_from_claims(claims, self.claim_map)


def _role_of(claims: dict[str, Any], claim_map: ClaimMap) -> str:
    """The one role the token grants: its role claim, else the single known role in its roles array."""
    role = claims.get(claim_map.role) if claim_map.role else None
    if role is None and claim_map.roles:
        listed = claims.get(claim_map.roles)
        known = sorted(set(listed) & ROLES) if isinstance(listed, list) else []
        if len(known) > 1:
            raise Unauthenticated("token grants more than one role")
        role = known[0] if known else None
    if role not in ROLES:
        raise Unauthenticated("token has no valid role")
    return str(role)


def principal_from_claims(claims: dict[str, Any], claim_map: ClaimMap | None = None) -> Principal:
    """Validate the subject, role and tenant claims (named by `claim_map`) and build the principal."""
    claim_map = claim_map or ClaimMap()
    role = _role_of(claims, claim_map)
    sub = claims.get(claim_map.subject)
    if not isinstance(sub, str) or not sub or len(sub) > 200:
        raise Unauthenticated("token has no valid subject")
    client_id = None
    if role in CLIENT_ROLES:
        try:
            client_id = uuid.UUID(str(claims.get(claim_map.tenant)))
        except ValueError as exc:
            raise Unauthenticated(f"client token without a valid {claim_map.tenant}") from exc
    if role == "service":
        if not sub.startswith("svc:"):
            raise Unauthenticated("service token without a svc: subject")
        # PyJWT has already checked that `aud` names this service; a list naming others too is refused.
        aud = claims.get("aud")
        if isinstance(aud, list) and len(aud) != 1:
            raise Unauthenticated(SHARED_SERVICE_TOKEN)
    return Principal(sub=sub, role=role, client_id=client_id, claims=claims)


MAX_CACHED_TOKENS = 10_000
MAX_CACHE_AGE_S = 300.0


class VerifiedTokens:
    """Tokens the verifier accepted, keyed by their SHA-256, each kept until its own expiry.

    The same bearer token is checked once (signature, iss, aud, exp, nbf), then served from memory
    until its `exp` plus the clock skew, or `max_age_s`, whichever comes first (cachetools' TLRU
    cache, bounded LRU). Keyed by the exact token, so a changed byte is verified afresh.
    """

    def __init__(
        self,
        max_size: int = MAX_CACHED_TOKENS,
        max_age_s: float = MAX_CACHE_AGE_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_age_s = max_age_s
        self._wall_clock = wall_clock
        # Each entry's value is (principal, its deadline on `clock`): the deadline is the time to use.
        self._entries: TLRUCache[bytes, tuple[Principal, float]] = TLRUCache(
            maxsize=max_size, ttu=lambda _key, value, _now: value[1], timer=clock
        )

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, token: str) -> Principal | None:
        """The cached principal for this exact token, if still valid."""
        entry = self._entries.get(self._key(token))
        return entry[0] if entry is not None else None

    def put(self, token: str, principal: Principal) -> None:
        """Remember a token the verifier accepted, until its exp (plus skew) or the cache's max age."""
        remaining = self.max_age_s
        try:  # PyJWT accepts any `exp` that int() takes (a numeric string too): read it the same way
            remaining = min(remaining, int(principal.claims["exp"]) + CLOCK_SKEW_S - self._wall_clock())
        except (KeyError, TypeError, ValueError):
            pass
        if remaining <= 0:
            return
        self._entries[self._key(token)] = (principal, self._entries.timer() + remaining)

    def clear(self) -> None:
        """Forget every token."""
        self._entries.clear()


_bearer = HTTPBearer(auto_error=False, description="JWT from the MSP identity provider")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _verified(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthenticated("bearer token required")
    token = credentials.credentials
    cache: VerifiedTokens = request.app.state.verified_tokens
    principal = cache.get(token)
    if principal is None:
        # An unseen token is verified in the threadpool: that may fetch the JWKS over the network.
        verifier: JWTVerifier = request.app.state.verifier
        principal = await run_in_threadpool(verifier.verify, token)
        cache.put(token, principal)
    # The access-log line names the caller; every check below passes through here.
    note_sub(principal.sub)
    return principal


# How a technician's staff view is found: `lookup(sub)`, None for no staff row (and so: reads nothing).
StaffViews = Callable[[str], Awaitable[StaffView | None]]


async def with_staff(user: Principal, lookup: StaffViews | None) -> Principal:
    """`user` with their staff view attached if a technician (no `lookup`: no view, so they see nothing)."""
    if user.role != "technician":
        return user
    return replace(user, staff=await lookup(user.sub) if lookup is not None else None)


async def _with_staff(request: Request, user: Principal) -> Principal:
    # vendor_sync and the broker install `app.state.staff_views` (intake attaches its own, see intake.deps).
    return await with_staff(user, getattr(request.app.state, "staff_views", None))


async def current_user(request: Request, credentials: Bearer) -> Principal:
    """FastAPI dependency: the verified caller, or 401 (async: a cached token costs no threadpool hand-off)."""
    return await _with_staff(request, await _verified(request, credentials))


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
        return await _with_staff(request, user)

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
