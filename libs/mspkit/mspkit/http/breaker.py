"""A per-vendor circuit breaker whose state lives in Redis, so all workers see the same circuit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from redis import Redis

from mspkit.http.errors import (
    CircuitOpen,
    HostNotAllowed,
    RateLimited,
    VendorResponseError,
    VendorTransientError,
)

State = Literal["closed", "open", "half_open"]

# KEYS: fails, open, tripped. ARGV: threshold, window_ms, cooldown_ms, tripped_ttl_ms.
# One script so that concurrent failures cannot both miss the threshold (Redis 6.2 commands only).
_RECORD_FAILURE = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
  redis.call('DEL', KEYS[1])
end
return n
"""


@dataclass(frozen=True)
class BreakerConfig:
    """Opens after `failure_threshold` failures within `window_s`; stays open `cooldown_s`."""

    failure_threshold: int = 5
    window_s: float = 60.0
    cooldown_s: float = 30.0
    # A half-open trial that never reports back frees the slot after this long.
    trial_timeout_s: float = 60.0


def counts_as_failure(exc: BaseException) -> bool:
    """True when an error says the vendor is unhealthy (not when it is merely busy or says no)."""
    if isinstance(exc, RateLimited | CircuitOpen | HostNotAllowed):
        return False
    return isinstance(exc, VendorTransientError | VendorResponseError)


class CircuitBreaker:
    """closed -> open after N failures -> half-open after the cooldown -> one trial (SET NX) decides."""

    def __init__(
        self, redis: Redis, vendor: str, config: BreakerConfig | None = None, *, key_prefix: str = "mspkit:cb"
    ) -> None:
        self.vendor = vendor
        self.config = config or BreakerConfig()
        self._redis = redis
        base = f"{key_prefix}:{vendor}"
        self._fails, self._open, self._tripped, self._trial = (
            f"{base}:fails",
            f"{base}:open",
            f"{base}:tripped",
            f"{base}:trial",
        )
        self._record_failure = redis.register_script(_RECORD_FAILURE)

    def state(self) -> State:
        """Current state as every worker sees it."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.exists(self._open)
        pipe.exists(self._tripped)
        is_open, tripped = pipe.execute()
        if is_open:
            return "open"
        return "half_open" if tripped else "closed"

    def before_call(self) -> bool:
        """Raise CircuitOpen if no call may be made; return True when this call is the half-open trial."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.pttl(self._open)
        pipe.exists(self._tripped)
        open_ttl_ms, tripped = pipe.execute()
        if open_ttl_ms is not None and (open_ttl_ms > 0 or open_ttl_ms == -1):
            wait = open_ttl_ms / 1000 if open_ttl_ms > 0 else self.config.cooldown_s
            raise CircuitOpen(f"{self.vendor}: circuit open", vendor=self.vendor, retry_after=wait)
        if not tripped:
            return False
        trial_ms = int(self.config.trial_timeout_s * 1000)
        if self._redis.set(self._trial, "1", nx=True, px=trial_ms):
            return True
        trial_ttl_ms = self._redis.pttl(self._trial)
        wait = trial_ttl_ms / 1000 if isinstance(trial_ttl_ms, int) and trial_ttl_ms > 0 else 1.0
        raise CircuitOpen(f"{self.vendor}: circuit half-open, trial in progress", vendor=self.vendor, retry_after=wait)

    def record_success(self, *, trial: bool = False) -> None:
        """A call went through; a successful trial closes the circuit."""
        if trial:
            self._redis.delete(self._fails, self._tripped, self._trial)
        else:
            self._redis.delete(self._fails)

    def record_failure(self, *, trial: bool = False) -> None:
        """A call failed in a way that counts; a failed trial re-opens the circuit for a full cooldown."""
        cooldown_ms = int(self.config.cooldown_s * 1000)
        if trial:
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(self._open, "1", px=cooldown_ms)
            pipe.delete(self._trial)
            pipe.execute()
            return
        self._record_failure(
            keys=[self._fails, self._open, self._tripped],
            args=[
                self.config.failure_threshold,
                int(self.config.window_s * 1000),
                cooldown_ms,
                # tripped outlives open so that the half-open phase exists; it is cleared by a good trial.
                max(cooldown_ms * 10, 86_400_000),
            ],
        )

    def record(self, exc: BaseException | None, *, trial: bool = False) -> None:
        """Record an outcome: None is success; an error counts only if counts_as_failure says so."""
        if exc is not None and counts_as_failure(exc):
            self.record_failure(trial=trial)
        else:
            self.record_success(trial=trial)

    def release_trial(self) -> None:
        """Give the half-open trial slot back without a verdict (the call never happened)."""
        self._redis.delete(self._trial)

    def reset(self) -> None:
        """Force the circuit closed (admin and tests)."""
        self._redis.delete(self._fails, self._open, self._tripped, self._trial)
