"""The dev issuer's OpenID Connect side: the portal client, code + PKCE, refresh tokens, people's tokens.

Dev only: codes and refresh tokens live in the issuer process's memory (bounded), so restarting the
issuer signs everyone out. Raw codes and refresh tokens are never kept, only their SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from mspctl.layout import Layout
from mspctl.people import Person
from mspctl.tokens import AUDIENCES, claims_for, shape, sign

PORTAL_CLIENT_ID = "portal"
DEFAULT_PORTAL_URL = "http://127.0.0.1:8000"
CALLBACK_PATH = "/auth/callback"
# The OIDC clients and what each may do (service clients `svc:*` only use client_credentials).
CLIENT_GRANTS = {PORTAL_CLIENT_ID: frozenset({"authorization_code", "refresh_token"})}
CODE_TTL = 60
PERSON_TOKEN_TTL = 300  # people's access and id tokens (DESIGN: at most 5 minutes)
REFRESH_TTL = 8 * 3600  # a working day; not sliding, so a session ends at the latest after it
MAX_CODES = 1_000
MAX_REFRESH = 10_000
SCOPES = ("openid", "profile", "email", "offline_access")
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of a SHA-256, unpadded (RFC 7636 §4.2)
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 §4.1


class _Expiring(Protocol):
    expires_at: float


V = TypeVar("V", bound=_Expiring)


class OAuthError(Exception):
    """An OAuth error response: the RFC 6749 code, words saying what is wrong, the HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        """The JSON error body (RFC 6749 §5.2)."""
        return {"error": self.error, "error_description": self.description}


def s256(verifier: str) -> str:
    """The S256 code challenge of a verifier: BASE64URL(SHA256(verifier)), unpadded."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def target_of(form: Mapping[str, Any]) -> str | None:
    """The one API a request names: `audience` (RFC 8693), `resource` (RFC 8707) or a `<api>/.default` scope."""
    for name in ("audience", "resource"):
        if form.get(name):
            return str(form[name])
    defaults = [s for s in str(form.get("scope") or "").split() if s.endswith("/.default")]
    return defaults[0].removesuffix("/.default") if len(defaults) == 1 else None


def _check_target(target: str | None) -> None:
    if target is not None and target not in AUDIENCES:
        raise OAuthError("invalid_target", f"no API {target!r}; name one of {', '.join(AUDIENCES)}")


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked `/authorize` request."""

    client_id: str
    redirect_uri: str
    state: str
    nonce: str
    code_challenge: str
    scope: str
    resource: str | None

    def params(self) -> dict[str, str]:
        """The request as form fields (the sign-in page carries them to its POST, which checks them again)."""
        out = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
            "scope": self.scope,
        }
        if self.resource:
            out["resource"] = self.resource
        return out


def check_authorization(params: Mapping[str, Any], redirect_uris: Callable[[str], list[str]]) -> AuthorizationRequest:
    """Check an authorization request; raise OAuthError saying in words what is missing or wrong."""

    def get(name: str) -> str:
        return str(params.get(name) or "")

    client_id = get("client_id")
    if client_id not in CLIENT_GRANTS:
        raise OAuthError("invalid_client", f"unknown client_id {client_id!r}: this issuer knows only 'portal'")
    redirect_uri = get("redirect_uri")
    registered = redirect_uris(client_id)
    # Exact match only: a prefix or pattern match would let a code be sent elsewhere.
    if redirect_uri not in registered:
        raise OAuthError(
            "invalid_request",
            f"redirect_uri {redirect_uri!r} is not registered for {client_id}; registered: {', '.join(registered)}",
        )
    if get("response_type") != "code":
        raise OAuthError("unsupported_response_type", "response_type must be 'code' (authorization code flow)")
    for name in ("state", "nonce"):
        if not get(name):
            raise OAuthError("invalid_request", f"{name} is required")
    challenge, method = get("code_challenge"), get("code_challenge_method")
    if not challenge:
        raise OAuthError("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256")
    if method != "S256":
        raise OAuthError("invalid_request", f"code_challenge_method must be S256, not {method or 'missing'!r}")
    if not _S256_CHALLENGE.fullmatch(challenge):
        raise OAuthError("invalid_request", "code_challenge must be the unpadded base64url SHA-256 of the verifier")
    scope = get("scope")
    if "openid" not in scope.split():
        raise OAuthError("invalid_scope", "scope must include openid")
    resource = get("resource") or None
    _check_target(resource)
    return AuthorizationRequest(client_id, redirect_uri, get("state"), get("nonce"), challenge, scope, resource)


@dataclass
class _Code:
    request: AuthorizationRequest
    person: Person
    auth_time: int
    expires_at: float


@dataclass
class _Redeemed:
    """A used code, kept as long as tokens issued from it may live, so a replay can revoke them."""

    expires_at: float
    refresh_digests: list[str] = field(default_factory=list)


@dataclass
class _Refresh:
    client_id: str
    person: Person
    expires_at: float


def _put(store: OrderedDict[str, V], key: str, value: V, cap: int, now: float) -> None:
    """Insert, first dropping expired entries and then the oldest beyond `cap` (memory stays bounded)."""
    # Every entry of a store has the same lifetime, so insertion order is expiry order.
    while store and next(iter(store.values())).expires_at <= now:
        store.popitem(last=False)
    store[key] = value
    while len(store) > cap:
        store.popitem(last=False)


class Provider:
    """Codes and refresh tokens of one issuer process, and the people's tokens minted from them."""

    def __init__(self, layout: Layout, issuer: str, profile: str, clock: Callable[[], float] = time.time) -> None:
        self.layout = layout
        self.issuer = issuer
        self.profile = profile
        self.clock = clock
        self._lock = threading.Lock()
        self._codes: OrderedDict[str, _Code] = OrderedDict()
        self._redeemed: OrderedDict[str, _Redeemed] = OrderedDict()
        self._refresh: OrderedDict[str, _Refresh] = OrderedDict()

    def issue_code(self, request: AuthorizationRequest, person: Person) -> str:
        """A single-use code for the person, bound to the request's client, redirect_uri and challenge."""
        code = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            _put(self._codes, _digest(code), _Code(request, person, int(now), now + CODE_TTL), MAX_CODES, now)
        return code

    def exchange_code(self, client_id: str, form: Mapping[str, Any]) -> dict[str, Any]:
        """The authorization_code grant: id, access and refresh tokens, or OAuthError."""
        code = str(form.get("code") or "")
        if not code:
            raise OAuthError("invalid_request", "code is required")
        target = target_of(form)
        _check_target(target)
        key = _digest(code)
        now = self.clock()
        with self._lock:
            redeemed = self._redeemed.get(key)
            if redeemed is not None:
                # RFC 6749 §4.1.2: a replayed code is refused and what it gave is revoked.
                for digest in redeemed.refresh_digests:
                    self._refresh.pop(digest, None)
                redeemed.refresh_digests.clear()
                raise OAuthError("invalid_grant", "this code was already used; the tokens it gave are revoked")
            entry = self._codes.pop(key, None)
            if entry is None or entry.expires_at <= now:
                raise OAuthError("invalid_grant", "unknown or expired code")
            # From here the code is spent, whatever follows: a code presented wrongly may be a stolen one.
            used = _Redeemed(now + REFRESH_TTL)
            _put(self._redeemed, key, used, MAX_REFRESH, now)
            request = entry.request
            if client_id != request.client_id:
                raise OAuthError("invalid_grant", "this code was issued to another client")
            if str(form.get("redirect_uri") or "") != request.redirect_uri:
                raise OAuthError("invalid_grant", "redirect_uri differs from the one of the authorization request")
            verifier = str(form.get("code_verifier") or "")
            if not _VERIFIER.fullmatch(verifier):
                raise OAuthError("invalid_grant", "code_verifier is missing or not 43-128 unreserved characters")
            if not hmac.compare_digest(s256(verifier), request.code_challenge):
                raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
            target = target or request.resource
            refresh = secrets.token_urlsafe(32)
            record = _Refresh(client_id, entry.person, now + REFRESH_TTL)
            _put(self._refresh, _digest(refresh), record, MAX_REFRESH, now)
            used.refresh_digests.append(_digest(refresh))
        return {
            **self._access(entry.person, client_id, target),
            "id_token": self._id_token(entry.person, client_id, request.nonce, entry.auth_time),
            "refresh_token": refresh,
            "scope": request.scope,
        }

    def refresh(self, client_id: str, form: Mapping[str, Any]) -> dict[str, Any]:
        """The refresh_token grant: an access token for the one API named, for the same person."""
        token = str(form.get("refresh_token") or "")
        if not token:
            raise OAuthError("invalid_request", "refresh_token is required")
        target = target_of(form)
        _check_target(target)
        with self._lock:
            record = self._refresh.get(_digest(token))
        if record is None or record.expires_at <= self.clock() or record.client_id != client_id:
            raise OAuthError("invalid_grant", "unknown, expired or revoked refresh token")
        # No rotation: the portal's replicas share one refresh token, and a rotated one would race.
        return self._access(record.person, client_id, target)

    def revoke(self, client_id: str, token: str) -> None:
        """RFC 7009: forget a refresh token of this client (anything else is a no-op, as the RFC asks)."""
        key = _digest(token)
        with self._lock:
            record = self._refresh.get(key)
            if record is not None and record.client_id == client_id:
                del self._refresh[key]

    def _person_claims(self, person: Person, aud: list[str]) -> dict[str, Any]:
        claims = claims_for(
            issuer=self.issuer,
            role=person.role,
            sub=person.sub,
            client_id=person.client_id,
            aud=aud,
            ttl=PERSON_TOKEN_TTL,
        )
        if person.name:
            claims["name"] = person.name
        if person.email:
            claims.update(email=person.email, email_verified=True)
        return claims

    def _access(self, person: Person, client_id: str, target: str | None) -> dict[str, Any]:
        # One token per API; without a named API the token is for the client itself (no API accepts it).
        claims = self._person_claims(person, [target or client_id])
        return {
            "access_token": sign(self.layout, shape(claims, self.profile)),
            "token_type": "Bearer",
            "expires_in": PERSON_TOKEN_TTL,
        }

    def _id_token(self, person: Person, client_id: str, nonce: str, auth_time: int) -> str:
        claims = self._person_claims(person, [client_id])
        claims.update(nonce=nonce, auth_time=auth_time)
        return sign(self.layout, shape(claims, self.profile))
