"""The issuer's signing keys: PyJWT's JWKS client, with a grace period that keeps verification
going while the issuer is slow or down.

PyJWT's client caches the key set, refetches at most once per cooldown for an unknown `kid`, and
follows no redirects. On its own it would make every verification wait behind one fetch (3 s at
worst) once the cached set expires, and fail them all while the issuer is down. Here a known `kid`
is served from the last good set for `grace_s` past its `ttl_s`, and a stale set is refreshed by
one background fetch at a time; only an unknown `kid` (a rotation, or a forgery) waits for a fetch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import jwt
from jwt import PyJWKClient, PyJWKSet
from jwt.exceptions import PyJWKClientConnectionError

from mspkit.errors import Unauthenticated
from mspkit.logging import get_logger

log = get_logger("mspkit.jwks")


class JWKSClient(PyJWKClient):
    """Signing keys by `kid`, fresh for `ttl_s`, then served for `grace_s` more while a refresh runs."""

    def __init__(
        self,
        url: str,
        *,
        ttl_s: float = 300.0,
        grace_s: float = 3600.0,
        min_refetch_s: float = 5.0,
        timeout_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(url, cache_jwk_set=True, lifespan=ttl_s, timeout=timeout_s, cooldown_duration=min_refetch_s)
        self.ttl_s = ttl_s
        self.grace_s = grace_s
        self._clock = clock
        self._last_good: PyJWKSet | None = None
        self._fetched_at = 0.0
        self._refreshing = threading.Lock()

    def get_jwk_set(self, refresh: bool = False) -> PyJWKSet:
        """The cached or freshly fetched set; the last good one, within its grace, when a fetch fails."""
        try:
            jwk_set = super().get_jwk_set(refresh)
        except PyJWKClientConnectionError:
            if self._last_good is None or self._age() > self.ttl_s + self.grace_s:
                raise
            return self._last_good
        if jwk_set is not self._last_good:
            self._last_good, self._fetched_at = jwk_set, self._clock()
        return jwk_set

    def _age(self) -> float:
        return self._clock() - self._fetched_at

    def _known_key(self, kid: str) -> jwt.PyJWK | None:
        """The key for `kid` from the last good set while it is within ttl plus grace, without waiting."""
        jwk_set = self._last_good
        age = self._age()
        if jwk_set is None or age > self.ttl_s + self.grace_s:
            return None
        key = next((k for k in jwk_set.keys if k.key_id == kid and k.public_key_use in ("sig", None)), None)
        if key is not None and age > self.ttl_s:
            self._refresh_in_background()
        return key

    def _refresh_in_background(self) -> None:
        if not self._refreshing.acquire(blocking=False):
            return  # one refresh at a time

        def _run() -> None:
            try:
                self.get_jwk_set(refresh=True)
            except jwt.PyJWTError as exc:
                log.warning("jwks_refresh_failed", error=type(exc).__name__)
            finally:
                self._refreshing.release()

        threading.Thread(target=_run, name="jwks-refresh", daemon=True).start()

    def get(self, kid: str) -> jwt.PyJWK:
        """The key for `kid`, or Unauthenticated (unknown key, or issuer unreachable with no usable set)."""
        key = self._known_key(kid)
        if key is not None:
            return key
        try:
            return self.get_signing_key(kid)
        except PyJWKClientConnectionError as exc:
            raise Unauthenticated("identity provider unreachable") from exc
        except jwt.PyJWTError as exc:  # no such kid, or a set with no usable key
            raise Unauthenticated("unknown signing key") from exc
