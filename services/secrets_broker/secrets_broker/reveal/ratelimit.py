"""Per-IP rate limit of `POST /v1/reveal`, shared by every API process through Redis (`limits`)."""

from __future__ import annotations

import math
import time
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from mspkit.errors import RateLimited, Unavailable
from mspkit.logging import get_logger

log = get_logger("secrets_broker.ratelimit")
KEY_PREFIX = "msp:secrets_broker:reveal"


class RevealRateLimited(RateLimited):
    """429 with `Retry-After` (seconds)."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("too many reveal attempts from this address; try again later")
        self.headers = {"Retry-After": str(max(1, retry_after_s))}


class RevealLimiter:
    """A moving-window limit per client address; Redis down fails closed (503), never open."""

    def __init__(self, *, redis_url: str, limit: str, timeout_s: float = 1.0) -> None:
        self.item: RateLimitItem = parse(limit)
        storage = RedisStorage(
            redis_url, key_prefix=KEY_PREFIX, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._limiter = MovingWindowRateLimiter(storage)

    def hit(self, address: str) -> None:
        """Count one attempt from `address`; raise 429 over the limit, 503 if Redis cannot count."""
        try:
            allowed = self._limiter.hit(self.item, address)
            if allowed:
                return
            reset_at, _remaining = self._limiter.get_window_stats(self.item, address)
        except Exception as exc:  # noqa: BLE001 - redis errors vary by version; all mean "cannot count"
            # Without a shared counter the guessing guard is gone; a reveal can wait, so refuse.
            log.warning("reveal_rate_limit_unavailable", error=type(exc).__name__)
            raise Unavailable("reveal is temporarily unavailable") from None
        raise RevealRateLimited(math.ceil(reset_at - time.time()))


@lru_cache(maxsize=8)
def get_limiter(redis_url: str, limit: str, timeout_s: float) -> RevealLimiter:
    """One limiter per (Redis, limit) in the process (the settings decide both)."""
    return RevealLimiter(redis_url=redis_url, limit=limit, timeout_s=timeout_s)
