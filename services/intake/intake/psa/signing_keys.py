"""ConnectWise callback signing keys: one fixed URL on the configured site, fetched rarely, kept briefly in memory.

A callback names its key (`Metadata.key_url`); that URL is attacker-controlled input until proven to be
exactly `{site}/v4_6_release/apis/3.0/system/callbackkeys/{key id}`. Anything else is refused before any
request is made. A fetch sends none of our credentials, follows no redirect, has a short deadline and a
4 KiB cap, and the fetches themselves are rate-limited (shared through Redis when there is one), so a flood
of callbacks naming made-up key ids cannot make us hammer the PSA. Keys live in this process's memory
only (as the HMAC key derived from them), never in Redis, a database or a log.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from redis import Redis
from redis.exceptions import RedisError

from intake.psa.metrics import KEY_FETCHES
from intake.psa.protocol import CallbackRejected
from mspkit.http import FetchLimits, RedisRateLimiter, RetryPolicy, VendorError, VendorHTTP, origin_of

log = logging.getLogger("intake.psa")

# ConnectWise's key path under the site (the API root's system/callbackkeys/{id}).
KEY_PATH = "/v4_6_release/apis/3.0/system/callbackkeys/"
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_KEY_URL_CHARS = 2048
MAX_KEY_RESPONSE_BYTES = 4096
MAX_SIGNING_KEY_CHARS = 1024
# More distinct keys than this in one cache period means someone is probing; the oldest go first.
MAX_CACHED_KEYS = 256


def key_id_from_url(key_url: Any, site_url: str) -> str | None:
    """The key id when key_url is exactly {site}{KEY_PATH}{id}; None for anything else (decided without a fetch).

    The id allows only letters, digits, '_' and '-', so a query, a fragment, another segment, '..' or a
    percent-encoded trick never passes; another scheme, host, port or userinfo fails the exact prefix.
    """
    if not isinstance(key_url, str) or len(key_url) > MAX_KEY_URL_CHARS:
        return None
    prefix = site_url.rstrip("/") + KEY_PATH
    if not key_url.startswith(prefix):
        return None
    key_id = key_url[len(prefix) :]
    return key_id if _KEY_ID.fullmatch(key_id) else None


class FetchBudget:
    """At most `rate` key fetches: shared by every process through Redis, or per process without (or when it fails)."""

    def __init__(self, rate: str, redis: Redis | None, name: str) -> None:
        self.item = parse(rate)
        self.name = name
        self._memory = MovingWindowRateLimiter(MemoryStorage())
        self._shared = RedisRateLimiter(redis, self.item, key_prefix="msp_psa_key_fetch") if redis is not None else None

    def try_take(self) -> bool:
        """Take one fetch from the budget if there is room; never blocks."""
        if self._shared is not None:
            try:
                return self._shared.try_acquire(self.name)
            except RedisError as exc:
                # Redis down must not stop callbacks whose key is cached, nor open the flood gate: fall
                # back to this process's own window.
                log.warning(
                    "psa key fetch budget: shared limit unavailable (%s), using the local one", type(exc).__name__
                )
        return bool(self._memory.hit(self.item, self.name))

    def reset(self) -> None:
        """Forget the window (tests and admin use)."""
        if self._shared is not None:
            self._shared.reset(self.name)
        self._memory.clear(self.item, self.name)


class _KeyCache:
    """key id -> derived HMAC key, each kept for `ttl_s` seconds; thread-safe, bounded, in memory only."""

    def __init__(self, ttl_s: float, clock: Callable[[], float]) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, bytes]] = {}

    def get(self, key_id: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key_id)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key_id]
                return None
            return entry[1]

    def put(self, key_id: str, key: bytes) -> None:
        if self._ttl_s <= 0:
            return
        with self._lock:
            now = self._clock()
            for stale in [k for k, (expires, _) in self._entries.items() if expires <= now]:
                del self._entries[stale]
            while len(self._entries) >= MAX_CACHED_KEYS:
                del self._entries[next(iter(self._entries))]
            self._entries[key_id] = (now + self._ttl_s, key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __repr__(self) -> str:
        return f"<signing key cache: {len(self._entries)} keys>"


class SigningKeys:
    """Fetches and caches the HMAC keys of callbacks signed by one ConnectWise site."""

    def __init__(
        self,
        site_url: str,
        *,
        provider: str,
        timeout_s: float = 3.0,
        cache_s: float = 300.0,
        rate: str = "10/minute",
        redis: Redis | None = None,
        denied_hosts: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.site_url = site_url.rstrip("/")
        self.provider = provider
        self.budget = FetchBudget(rate, redis, f"{provider}-callback-keys")
        self._cache = _KeyCache(cache_s, clock)
        self.http = VendorHTTP(
            f"{provider}-callback-keys",
            # The site's own origin only: a redirect anywhere would be refused, and none is followed anyway.
            allowed_hosts=[str(origin_of(self.site_url))],
            denied_hosts=denied_hosts,
            limits=FetchLimits(
                deadline_s=timeout_s,
                max_bytes=MAX_KEY_RESPONSE_BYTES,
                max_redirects=0,
                connect_timeout_s=timeout_s,
                read_timeout_s=timeout_s,
            ),
            # One attempt: the PSA retries its callback, and a slow key must not hold the webhook.
            retry=RetryPolicy(max_attempts=1),
            clock=clock,
        )

    def hmac_key(self, key_url: Any) -> bytes:
        """SHA-256 of the signing key key_url names (ConnectWise's HMAC key); CallbackRejected otherwise."""
        key_id = key_id_from_url(key_url, self.site_url)
        if key_id is None:
            raise CallbackRejected("foreign key url")
        cached = self._cache.get(key_id)
        if cached is not None:
            return cached
        if not self.budget.try_take():
            KEY_FETCHES.labels(self.provider, "rate_limited").inc()
            raise CallbackRejected("key fetch rate limited")
        derived = hashlib.sha256(self._fetch(key_id).encode("utf-8")).digest()
        self._cache.put(key_id, derived)
        return derived

    def _fetch(self, key_id: str) -> str:
        """GET the key ({"signing_key": "..."}) with no credentials; any failure is a rejection, never a retry."""
        try:
            # No headers of ours: the key URL needs no auth, and our credentials never go to it.
            response = self.http.get_json(self.site_url + KEY_PATH + key_id)
        except VendorError as exc:
            KEY_FETCHES.labels(self.provider, "failed").inc()
            log.warning("psa callback key fetch failed: %s", type(exc).__name__)
            raise CallbackRejected("key unavailable") from None
        data = response.data
        key = data.get("signing_key") if isinstance(data, dict) else None
        if not isinstance(key, str) or not 0 < len(key) <= MAX_SIGNING_KEY_CHARS:
            KEY_FETCHES.labels(self.provider, "malformed").inc()
            raise CallbackRejected("key unavailable")
        KEY_FETCHES.labels(self.provider, "ok").inc()
        return key

    def forget(self) -> None:
        """Drop every cached key (tests, or after a key rotation)."""
        self._cache.clear()

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    def __repr__(self) -> str:
        return f"SigningKeys(site={self.site_url!r})"
