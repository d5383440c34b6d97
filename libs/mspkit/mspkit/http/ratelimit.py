"""A per-vendor rate limit shared by every worker through Redis (limits' moving window)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis import Redis

from mspkit.http.errors import RateLimited


class RedisRateLimiter:
    """Moving-window limiter: never more than `rate` calls per window across all processes."""

    def __init__(
        self,
        redis: Redis,
        rate: str | RateLimitItem,
        *,
        key_prefix: str = "mspkit_rl",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_poll_s: float = 0.25,
    ) -> None:
        self.item = parse(rate) if isinstance(rate, str) else rate
        # Reuse the caller's pool; limits only needs the scheme of the URI to pick redis-py.
        storage = RedisStorage("redis://", connection_pool=redis.connection_pool, key_prefix=key_prefix)
        self._limiter = MovingWindowRateLimiter(storage)
        self._sleep = sleep
        # The wait for room is measured on `clock` (tests pass one that their `sleep` advances).
        self._clock = clock
        self._max_poll_s = max_poll_s

    def try_acquire(self, vendor: str) -> bool:
        """Take one slot now if there is room; never blocks."""
        return self._limiter.hit(self.item, vendor)

    def seconds_until_free(self, vendor: str) -> float:
        """Seconds until the oldest call in the window leaves it (0 when there is room)."""
        stats = self._limiter.get_window_stats(self.item, vendor)
        if stats.remaining > 0:
            return 0.0
        return max(stats.reset_time - time.time(), 0.0)

    def acquire(self, vendor: str, *, timeout_s: float = 10.0) -> None:
        """Block until a slot is taken, or raise RateLimited(local=True) after timeout_s."""
        give_up = self._clock() + timeout_s
        while not self.try_acquire(vendor):
            left = give_up - self._clock()
            wait = self.seconds_until_free(vendor)
            if left <= 0:
                raise RateLimited(
                    f"{vendor}: shared rate limit {self.item} has no room",
                    vendor=vendor,
                    retry_after=max(wait, 0.1),
                    local=True,
                )
            # A little jitter keeps workers that wake together from all losing the same race.
            pause = min(wait, self._max_poll_s) + random.uniform(0.0, 0.01)
            self._sleep(max(min(pause, left), 0.001))

    def reset(self, vendor: str) -> None:
        """Forget the window for a vendor (tests and admin use)."""
        self._limiter.clear(self.item, vendor)
