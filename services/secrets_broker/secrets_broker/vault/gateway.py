"""The only door to Vault/OpenBao: AppRole login, token renewal, wrapped reads, KV v2 writes, anchors.

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

Errors. hvac and requests errors become `VaultError` subclasses of the kit's `Unavailable` (503
`unavailable`); their messages carry no URL, path or Vault error text. Every call is synchronous and
must run in the threadpool, never on the event loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeVar
from uuid import UUID

import hvac
import hvac.exceptions as hvac_errors
import requests
from requests.adapters import HTTPAdapter

from mspkit.errors import Unavailable
from mspkit.logging import get_logger

MOUNT: Final = "msp-kv"
ANCHOR_PATH: Final = "broker/audit-anchor"
MIN_WRAP_TTL_S: Final = 1

T = TypeVar("T")
log = get_logger("secrets_broker.vault")


def credential_path(client_id: UUID, credential_id: UUID) -> str:
    """The KV v2 path (below the mount) of one credential: ids only, never names."""
    return f"clients/{UUID(str(client_id))}/credentials/{UUID(str(credential_id))}"


def data_path(path: str) -> str:
    """The full API path of a KV v2 secret (`msp-kv/data/...`), as wrap creation paths name it."""
    return f"{MOUNT}/data/{path}"


# --- errors -----------------------------------------------------------------------------------


class VaultError(Unavailable):
    """Vault could not serve the broker; the API answers 503 and releases nothing."""


class VaultUnreachable(VaultError):
    """Vault is down, sealed, slow, rate limiting or failing."""


class VaultDenied(VaultError):
    """Vault refused the token or the policy (a revoked token looks the same as a policy denial)."""


class VaultNotFound(VaultError):
    """Nothing is stored at the path."""


class VaultRejected(VaultError):
    """Vault refused the request as invalid."""


class VaultCasMismatch(VaultRejected):
    """A check-and-set write lost: the path changed since it was read (or exists, for cas=0)."""


class VaultNotLoggedIn(VaultError):
    """The gateway holds no usable token and cannot get one without a restart."""


class VaultLoginRefused(VaultError):
    """The login material was not what it claimed to be, or the token is too powerful."""


_UNREACHABLE: Final = (
    hvac_errors.VaultDown,
    hvac_errors.RateLimitExceeded,
    hvac_errors.InternalServerError,
    hvac_errors.BadGateway,
    hvac_errors.VaultNotInitialized,
    hvac_errors.UnexpectedError,
)


def translate(fn: Callable[[], T]) -> T:
    """Run one hvac call and map its failures to broker errors (without Vault's message or the URL)."""
    try:
        return fn()
    except requests.Timeout:
        raise VaultUnreachable("Vault timed out") from None
    except requests.ConnectionError:
        raise VaultUnreachable("Vault unreachable") from None
    except requests.RequestException:
        raise VaultUnreachable("Vault request failed") from None
    except _UNREACHABLE as exc:
        raise VaultUnreachable(f"Vault unavailable ({type(exc).__name__})") from None
    except (hvac_errors.Forbidden, hvac_errors.Unauthorized):
        raise VaultDenied("Vault denied the request") from None
    except hvac_errors.InvalidPath:
        raise VaultNotFound("not found in Vault") from None
    except hvac_errors.InvalidRequest as exc:
        if "check-and-set" in str(exc):
            raise VaultCasMismatch("Vault check-and-set mismatch") from None
        raise VaultRejected("Vault rejected the request") from None
    except hvac_errors.VaultError as exc:
        raise VaultUnreachable(f"Vault error ({type(exc).__name__})") from None
    except (ValueError, KeyError, TypeError):
        # A body that is not the JSON we expect (a proxy's error page, say).
        raise VaultUnreachable("malformed Vault response") from None


# --- login material -----------------------------------------------------------------------------


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


@dataclass(frozen=True)
class WrapInfo:
    """A response-wrapping token as Vault returned it (the token is never logged or stored)."""

    token: str = field(repr=False)
    accessor: str = field(repr=False)
    ttl: int
    creation_path: str


def check_policies(policies: Any) -> None:
    """Refuse a token that carries the root policy (a misconfigured role must not go unnoticed)."""
    if not isinstance(policies, list) or "root" in policies:
        raise VaultLoginRefused("refusing to run with a root token")


# --- the gateway ------------------------------------------------------------------------------


class VaultGateway:
    """hvac behind one class: logs in by AppRole, renews, and translates every error."""

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
        self._session = requests.Session()
        # Proxies and .netrc from the environment must not redirect or decorate Vault traffic.
        self._session.trust_env = False
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        # token="": hvac would otherwise fall back to VAULT_TOKEN and ~/.vault-token.
        self._client = self._new_client("")
        self._anon = self._new_client("")
        self._lock = threading.Lock()
        self._pending: tuple[str, str] | None = None
        self._generation = 0
        self._logged_in = False
        self._lost = False
        self._ttl_s = 0
        self._expires_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _new_client(self, token: str) -> hvac.Client:
        return hvac.Client(
            url=self.addr, token=token, timeout=self._timeout_s, session=self._session, allow_redirects=False
        )

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
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name="vault-renewal", daemon=True)
        self._thread.start()

    def stop_renewal(self) -> None:
        """Stop the background renewal thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _renew_loop(self) -> None:
        while not self._stop.wait(self._renew_check_s):
            try:
                if not self._logged_in or self._remaining() < max(self._ttl_s / 2, 2 * self._renew_check_s):
                    self.renew_once()
            except Exception as exc:  # noqa: BLE001 - the renewal thread must survive anything
                log.warning("vault_renew_loop_error", error=type(exc).__name__)

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

    def check_ready(self) -> None:
        """Raise unless the gateway is logged in and Vault is unsealed and accepts the token."""
        # Through `_call`: a revoked token found here starts the re-login (or restart) at once.
        self._call(lambda c: c.auth.token.lookup_self())

    def wrapped_read(self, path: str, *, ttl_s: int) -> WrapInfo:
        """Read a KV v2 secret as a response-wrapping token; the broker never sees the plaintext."""
        full = data_path(path)
        resp = self._call(lambda c: c.read(full, wrap_ttl=f"{max(MIN_WRAP_TTL_S, int(ttl_s))}s"))
        if resp is None:
            raise VaultNotFound("no secret stored for this credential")
        wrap = resp.get("wrap_info") if isinstance(resp, dict) else None
        if not wrap or not wrap.get("token") or not wrap.get("accessor"):
            raise VaultUnreachable("Vault did not wrap the response")
        info = WrapInfo(
            token=str(wrap["token"]),
            accessor=str(wrap["accessor"]),
            ttl=int(wrap.get("ttl") or 0),
            creation_path=str(wrap.get("creation_path") or ""),
        )
        if info.creation_path != full:
            raise VaultRejected("wrapped response for an unexpected path")
        return info

    def revoke_accessor(self, accessor: str) -> bool:
        """Revoke the token behind an accessor (revoker role only); False when no such token is left."""
        resp = self._call(lambda c: c.auth.token.revoke_accessor(accessor))
        # 204 when revoked; 200 with a warning when the token is already gone (used, expired).
        warnings = resp.get("warnings") if isinstance(resp, dict) else None
        return not warnings

    def exists(self, path: str) -> bool:
        """Whether a secret is stored at the path, learnt through a 1 s wrapped read (no plaintext)."""
        try:
            self.wrapped_read(path, ttl_s=MIN_WRAP_TTL_S)
        except VaultNotFound:
            return False
        return True

    def create_secret(self, path: str, data: dict[str, str]) -> int:
        """Write the first version with cas=0 (never overwrites); returns the version."""
        resp = self._call(
            lambda c: c.secrets.kv.v2.create_or_update_secret(path=path, secret=data, cas=0, mount_point=MOUNT)
        )
        return int(resp["data"]["version"])

    def write_version(self, path: str, data: dict[str, str]) -> int:
        """Write a new version (rotation); returns the version."""
        resp = self._call(lambda c: c.secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point=MOUNT))
        return int(resp["data"]["version"])

    def read_secret(self, path: str) -> dict[str, Any]:
        """Read the latest version in plaintext (rotation keeps the notes); callers must not keep it."""
        resp = self._call(
            lambda c: c.secrets.kv.v2.read_secret_version(
                path=path, mount_point=MOUNT, raise_on_deleted_version=True
            )
        )
        return dict(resp["data"]["data"])

    # ---- audit anchor ----

    def _anchor_current_version(self) -> int:
        try:
            meta = self._call(lambda c: c.secrets.kv.v2.read_secret_metadata(path=ANCHOR_PATH, mount_point=MOUNT))
        except VaultNotFound:
            return 0
        return int(meta["data"].get("current_version") or 0)

    def _anchor_version(self, version: int) -> dict[str, Any] | None:
        try:
            resp = self._call(
                lambda c: c.secrets.kv.v2.read_secret_version(
                    path=ANCHOR_PATH, version=version, mount_point=MOUNT, raise_on_deleted_version=True
                )
            )
        except VaultNotFound:
            return None
        return dict(resp["data"]["data"])

    def read_anchors(self) -> list[dict[str, Any]]:
        """Every anchor version Vault still keeps (KV v2 keeps the last `max_versions`), oldest first."""
        try:
            meta = self._call(lambda c: c.secrets.kv.v2.read_secret_metadata(path=ANCHOR_PATH, mount_point=MOUNT))
        except VaultNotFound:
            return []
        anchors = []
        for key, info in sorted((meta["data"].get("versions") or {}).items(), key=lambda kv: int(kv[0])):
            if info.get("destroyed") or info.get("deletion_time"):
                continue
            data = self._anchor_version(int(key))
            if data is not None:
                anchors.append(data)
        return anchors

    def write_anchor(self, *, index: int, hash_: str, anchored_at: str) -> bool:
        """Anchor the chain head with check-and-set; never moves the anchor backwards. True if written."""
        current = self._anchor_current_version()
        if current:
            latest = self._anchor_version(current)
            if latest is not None and int(latest.get("index", -1)) >= index:
                return False
        try:
            self._call(
                lambda c: c.secrets.kv.v2.create_or_update_secret(
                    path=ANCHOR_PATH,
                    secret={"index": index, "hash": hash_, "anchored_at": anchored_at},
                    cas=current,
                    mount_point=MOUNT,
                )
            )
        except VaultCasMismatch:
            return False
        return True
