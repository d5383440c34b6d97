"""What every simulated vendor shares: key fingerprints (never the raw key) and a rate limit per vendor."""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable

# The one credential every vendor path refuses, each in its own vendor's words.
BAD_KEY = "bad-key"
VENDORS = ("rdap", "cloudflare", "godaddy", "namecheap", "mailchannels", "connectwise")


def fingerprint(key: str) -> str:
    """The first 12 hex digits of the key's SHA-256: enough to tell keys apart, useless to call with."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def refused(key: str | None) -> bool:
    """True for a missing or empty key and for the literal `bad-key`."""
    return not key or key == BAD_KEY


class RateLimits:
    """A token bucket per vendor: `per_second` tokens a second, bursts up to max(1, per_second); 0 is off."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._rates: dict[str, float] = {}
        self._buckets: dict[str, tuple[float, float]] = {}  # vendor -> (tokens, last refill)

    def set(self, vendor: str, per_second: float) -> None:
        """Set (or with 0 switch off) a vendor's limit; the bucket starts full."""
        with self._lock:
            self._buckets.pop(vendor, None)
            if per_second > 0:
                self._rates[vendor] = per_second
            else:
                self._rates.pop(vendor, None)

    def settings(self) -> dict[str, float]:
        """Every vendor's limit (0 when off)."""
        with self._lock:
            return {vendor: self._rates.get(vendor, 0.0) for vendor in VENDORS}

    def take(self, vendor: str) -> int | None:
        """None when the call is allowed; otherwise whole seconds until a token is back (for Retry-After)."""
        with self._lock:
            rate = self._rates.get(vendor)
            if rate is None:
                return None
            capacity = max(1.0, rate)
            now = self._clock()
            tokens, last = self._buckets.get(vendor, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens >= 1:
                self._buckets[vendor] = (tokens - 1, now)
                return None
            self._buckets[vendor] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / rate))

    def reset(self) -> None:
        """No limits."""
        with self._lock:
            self._rates.clear()
            self._buckets.clear()
