"""An AppRole-authenticated hvac client that keeps its Vault token alive (the gateway's base).

Login. The launcher hands the process a role id and a *wrapped*, single-use secret id. Before
unwrapping, the gateway looks the wrapping token up (no Vault token needed) and checks that it was
minted at exactly `auth/approle/role/<role>/secret-id`: a token minted anywhere else (for example a
wrapped response planted by someone who could set our environment) is refused unopened. It then
unwraps with the wrapping token alone, logs in, and refuses to run if its token carries `root`.

Re-login. A secret id is single use and the launcher's one is spent at the first login, so the
gateway cannot mint a new one by itself (and must not: only the launcher token may). The token is
renewed in a background thread (`start_renewal`), or on demand when a call finds it expired. When
renewal is refused (token revoked or at its max TTL) the gateway logs in again under a lock *if its
`SecretIdSource` can supply a fresh secret id*; the launcher's source cannot, so the gateway then
marks itself lost: `/readyz` fails, every Vault call answers 503, and `on_token_lost` runs (in the
service it sends SIGTERM to the process so supervisor restarts it through `mspctl
run-with-secret-id`, which mints a fresh secret id). Tests plug in a source that mints on demand.

Every call is synchronous and must run in the threadpool, never on the event loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import hvac
import requests
from requests.adapters import HTTPAdapter

from mspkit.logging import get_logger
from secrets_broker.common.periodic import Periodic
from secrets_broker.vault.errors import (
    VaultDenied,
    VaultError,
    VaultLoginRefused,
    VaultNotLoggedIn,
    VaultRejected,
    VaultUnreachable,
    translate,
)

T = TypeVar("T")
log = get_logger("secrets_broker.vault")


def http_session(pool_size: int) -> requests.Session:
    """A pooled session that ignores the environment: proxies and .netrc must not see or redirect Vault traffic."""
    session = requests.Session()
    session.trust_env = False
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def hvac_client(addr: str, token: str, *, timeout_s: float, session: requests.Session) -> hvac.Client:
    """An hvac client over `session` that follows no redirect."""
    # token="" stops hvac from falling back to VAULT_TOKEN or ~/.vault-token.
    return hvac.Client(url=addr, token=token, timeout=timeout_s, session=session, allow_redirects=False)


# --- login material ----------------------------------------------------------------------------


class SecretIdSource(Protocol):
    """Supplies (role_id, wrapping token of a fresh secret id), or None when none is left."""

    def take(self) -> tuple[str, str] | None:
        """Hand out login material; a wrapped secret id is never handed out twice."""
        ...


class LauncherSecretId:
    """The launcher's role id and wrapped secret id: usable exactly once."""

    def __init__(self, role_id: str | None, wrapped_secret_id: str | None) -> None:
        self._value = (role_id, wrapped_secret_id) if role_id and wrapped_secret_id else None
        self._lock = threading.Lock()

    def take(self) -> tuple[str, str] | None:
        """The material on the first call, None afterwards."""
        with self._lock:
            value, self._value = self._value, None
            return value


def check_policies(policies: Any) -> None:
    """Refuse a token that carries the root policy (a misconfigured role must not go unnoticed)."""
    if not isinstance(policies, list) or "root" in policies:
        raise VaultLoginRefused("refusing to run with a root token")


# --- the session ----------------------------------------------------------------------------------


class VaultSession:
    """Logs in by AppRole, renews, and runs calls with the current token, translating every error."""

    MIN_USEFUL_TTL_S = 90

    def __init__(
        self,
        *,
        addr: str,
        role: str,
        source: SecretIdSource,
        timeout_s: float = 2.5,
        pool_size: int = 40,
        renew_check_s: float = 30.0,
        on_token_lost: Callable[[], None] | None = None,
    ) -> None:
        self.addr = addr.rstrip("/")
        self.role = role
        self._source = source
        self._timeout_s = timeout_s
        self._renew_check_s = renew_check_s
        self._on_token_lost = on_token_lost
        self._session = http_session(pool_size)
        self._client = self._new_client("")
        self._anon = self._new_client("")
        self._lock = threading.Lock()
        self._pending: tuple[str, str] | None = None
        self._generation = 0
        self._logged_in = False
        self._lost = False
        self._ttl_s = 0
        self._expires_at = 0.0
        self._renewal = Periodic("vault-renewal", self._renew_if_due, interval_s=renew_check_s)

    def _new_client(self, token: str) -> hvac.Client:
        return hvac_client(self.addr, token, timeout_s=self._timeout_s, session=self._session)

    # ---- state ----

    @property
    def logged_in(self) -> bool:
        """True while the gateway holds a token it believes valid."""
        return self._logged_in and not self._lost

    @property
    def lost(self) -> bool:
        """True once the token is gone and only a restart can bring a new one."""
        return self._lost

    def use_source(self, source: SecretIdSource) -> None:
        """Swap where fresh login material comes from (tests; a future secret-id agent)."""
        with self._lock:
            self._source = source
            self._lost = False

    def _remaining(self) -> float:
        return self._expires_at - time.monotonic()

    def _set_ttl(self, ttl_s: int) -> None:
        self._ttl_s = ttl_s
        self._expires_at = time.monotonic() + ttl_s

    # ---- login ----

    def login(self) -> None:
        """Log in with fresh material from the source (under the lock)."""
        with self._lock:
            self._login_locked()

    def _login_locked(self) -> None:
        # Material survives a failed lookup (Vault down at start) but not an unwrap attempt.
        material = self._pending or self._source.take()
        if material is None:
            self._mark_lost("no fresh AppRole secret id")
            raise VaultNotLoggedIn("no fresh AppRole secret id; the process must be restarted by the launcher")
        self._pending = material
        role_id, wrapped = material
        try:
            lookup = translate(lambda: self._anon.write_data("sys/wrapping/lookup", data={"token": wrapped}))
        except (VaultRejected, VaultDenied):
            # Expired or already used: it will never become valid, so do not try it again.
            self._pending = None
            raise
        creation_path = ((lookup or {}).get("data") or {}).get("creation_path")
        if creation_path != f"auth/approle/role/{self.role}/secret-id":
            # Not a secret id of our role: unwrapping it could hand us someone else's response.
            self._pending = None
            raise VaultLoginRefused("wrapped secret id was not minted for this role")
        self._pending = None
        unwrapped = translate(lambda: self._new_client(wrapped).write_data("sys/wrapping/unwrap"))
        secret_id = str(unwrapped["data"]["secret_id"])
        # Log in and vet the new token on the side; calls in flight keep the old one until the swap.
        login = translate(
            lambda: self._anon.auth.approle.login(role_id=role_id, secret_id=secret_id, use_token=False)
        )
        new_token = str(login["auth"]["client_token"])
        info = translate(lambda: self._new_client(new_token).auth.token.lookup_self())["data"]
        check_policies(info.get("policies"))
        self._client.token = new_token
        self._generation += 1
        self._set_ttl(int(info.get("ttl") or 0))
        self._logged_in = True
        self._lost = False
        log.info("vault_login", role=self.role, ttl_s=self._ttl_s, renewable=bool(info.get("renewable")))

    def _mark_lost(self, reason: str) -> None:
        already = self._lost
        self._logged_in = False
        self._lost = True
        self._client.token = ""
        if already:
            return
        log.error("vault_token_lost", reason=reason)
        if self._on_token_lost is not None:
            self._on_token_lost()

    def _relogin(self, reason: str, *, seen: int | None = None) -> None:
        with self._lock:
            if seen is not None and seen != self._generation:
                return  # another thread logged in again since this one saw the failure
            try:
                self._login_locked()
            except VaultNotLoggedIn:
                pass
            except VaultError as exc:
                # Vault may just be down: keep trying while the current token has life left.
                log.warning("vault_relogin_failed", reason=reason, error=type(exc).__name__)
                if self._remaining() <= 0:
                    self._mark_lost(reason)

    def _ensure_token(self) -> None:
        if self._lost:
            raise VaultNotLoggedIn("Vault token lost; waiting for a restart")
        if not self._logged_in:
            with self._lock:
                if not self._logged_in and not self._lost:
                    self._login_locked()
            if not self._logged_in:
                raise VaultNotLoggedIn("not logged in to Vault")
        elif self._remaining() <= 0:
            self.renew_once()
            if not self.logged_in:
                raise VaultNotLoggedIn("Vault token expired")

    # ---- renewal ----

    def renew_once(self) -> None:
        """Renew the token; when Vault refuses or cannot extend it, log in again or give up."""
        if self._lost:
            return
        if not self._logged_in:
            try:
                self.login()
            except VaultError as exc:
                log.warning("vault_login_failed", error=type(exc).__name__)
            return
        generation = self._generation
        try:
            resp = translate(lambda: self._client.auth.token.renew_self())
            ttl = int(resp["auth"]["lease_duration"])
            self._set_ttl(ttl)
            if ttl >= self.MIN_USEFUL_TTL_S:
                return
            reason = "token at its max TTL"
        except VaultUnreachable as exc:
            if self._remaining() > 0:
                log.warning("vault_renew_failed", error=type(exc).__name__)
                return
            reason = "token expired while Vault was unreachable"
        except VaultError:
            reason = "renewal refused"
        self._relogin(reason, seen=generation)

    def start_renewal(self) -> None:
        """Start the background renewal thread (idempotent)."""
        self._renewal.start()

    def stop_renewal(self) -> None:
        """Stop the background renewal thread."""
        self._renewal.stop(timeout_s=5)

    def _renew_if_due(self) -> None:
        if not self._logged_in or self._remaining() < max(self._ttl_s / 2, 2 * self._renew_check_s):
            self.renew_once()

    # ---- calls ----

    def _call(self, fn: Callable[[hvac.Client], T]) -> T:
        self._ensure_token()
        generation = self._generation
        try:
            return translate(lambda: fn(self._client))
        except VaultDenied:
            # A revoked or expired token gets the same 403 as a policy denial: tell them apart.
            if not self._token_valid():
                self._relogin("token rejected", seen=generation)
            raise

    def _token_valid(self) -> bool:
        try:
            translate(lambda: self._client.auth.token.lookup_self())
        except VaultDenied:
            return False
        except VaultError:
            return True
        return True
