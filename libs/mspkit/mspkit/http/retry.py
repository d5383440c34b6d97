"""Retries for transient vendor errors: capped full-jitter backoff that never undercuts Retry-After."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_random_exponential

from mspkit.http.errors import CircuitOpen, RateLimited, VendorTransientError

T = TypeVar("T")
log = logging.getLogger("mspkit.http")


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, how long to back off, and the longest wait done in-process."""

    max_attempts: int = 4
    base_s: float = 0.5
    cap_s: float = 20.0
    # A longer Retry-After is raised to the caller (Celery countdown or a not_before column).
    max_wait_s: float = 30.0


def is_retryable(exc: BaseException) -> bool:
    """True for errors worth retrying in-process (transient, not an open circuit nor our own limiter)."""
    if not isinstance(exc, VendorTransientError) or isinstance(exc, CircuitOpen):
        return False
    return not (isinstance(exc, RateLimited) and exc.local)


def _retry_after(state: RetryCallState) -> float:
    if state.outcome is None:
        return 0.0
    exc = state.outcome.exception()
    value = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, int | float) else 0.0


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    describe: str = "",
    retryable: Callable[[BaseException], bool] = is_retryable,
) -> T:
    """Call fn, retrying the errors `retryable` accepts per the policy; the last error is re-raised unchanged."""
    rules = policy or RetryPolicy()
    jitter = wait_random_exponential(multiplier=rules.base_s, max=rules.cap_s)

    def wait(state: RetryCallState) -> float:
        return max(jitter(state), _retry_after(state))

    def stop(state: RetryCallState) -> bool:
        # Give up rather than sleep past max_wait_s: the caller reschedules with exc.retry_after.
        return state.attempt_number >= rules.max_attempts or _retry_after(state) > rules.max_wait_s

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "vendor call failed, retrying: %s attempt=%d wait=%.2fs error=%s",
            describe,
            state.attempt_number,
            state.upcoming_sleep,
            type(exc).__name__,
        )

    retrying = Retrying(
        retry=retry_if_exception(retryable),
        wait=wait,
        stop=stop,
        sleep=sleep,
        reraise=True,
        before_sleep=before_sleep,
    )
    return retrying(fn)
