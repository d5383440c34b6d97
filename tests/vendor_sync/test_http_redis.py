"""mspkit.http shared state in a real Redis: the per-vendor rate limit and circuit breaker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis
import respx

from mspkit.http import (
    BreakerConfig,
    CircuitBreaker,
    CircuitOpen,
    RateLimited,
    RedisRateLimiter,
    RetryPolicy,
    VendorHTTP,
    VendorNotFound,
    VendorTransientError,
)

API = "https://api.vendor.example"

_WORKER = """
import json, sys, time
import redis
from mspkit.http import RedisRateLimiter
url, vendor, rate, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
limiter = RedisRateLimiter(redis.Redis.from_url(url), rate)
stamps = []
for _ in range(n):
    limiter.acquire(vendor, timeout_s=30)
    stamps.append(time.time())
print(json.dumps(stamps))
"""


@pytest.fixture
def rds(kit_redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(kit_redis_url)
    yield client
    client.close()


def _max_in_window(stamps: list[float], window: float) -> int:
    stamps = sorted(stamps)
    best, start = 0, 0
    for end, t in enumerate(stamps):
        while t - stamps[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_rate_limit_is_shared_across_processes(kit_redis_url: str) -> None:
    vendor = f"rl-{uuid.uuid4().hex}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, kit_redis_url, vendor, "10/second", "15"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    stamps: list[float] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        stamps.extend(json.loads(out))
    assert len(stamps) == 30
    # Stamps are taken just after each acquire, so allow a few ms of slack on the 1 s window.
    assert _max_in_window(stamps, 0.95) <= 10
    # The limiter waits for room instead of failing: 30 calls at 10/s need at least ~2 s.
    assert max(stamps) - min(stamps) >= 1.9


def test_acquire_times_out_with_a_local_rate_limited(rds: redis.Redis) -> None:
    vendor = f"rl-{uuid.uuid4().hex}"
    limiter = RedisRateLimiter(rds, "2/minute")
    limiter.acquire(vendor, timeout_s=1)
    limiter.acquire(vendor, timeout_s=1)
    started = time.monotonic()
    with pytest.raises(RateLimited) as info:
        limiter.acquire(vendor, timeout_s=0.3)
    assert info.value.local and info.value.retry_after is not None and info.value.retry_after > 50
    assert time.monotonic() - started < 5


def _http(rds: redis.Redis, vendor: str, **kwargs: object) -> VendorHTTP:
    options: dict[str, object] = {
        "allowed_hosts": ["api.vendor.example:443"],
        "redis": rds,
        "breaker": BreakerConfig(failure_threshold=3, window_s=60, cooldown_s=1, trial_timeout_s=5),
        "retry": RetryPolicy(max_attempts=1),
    }
    options.update(kwargs)
    return VendorHTTP(vendor, **options)  # type: ignore[arg-type]


@respx.mock
def test_circuit_opens_after_n_failures_then_makes_no_call_then_half_opens(rds: redis.Redis) -> None:
    vendor = f"cb-{uuid.uuid4().hex}"
    route = respx.get(f"{API}/x").respond(503)
    http = _http(rds, vendor)
    breaker = CircuitBreaker(rds, vendor, http.breaker.config if http.breaker else None)
    for _ in range(3):
        with pytest.raises(VendorTransientError):
            http.get_json(f"{API}/x")
    assert route.call_count == 3
    assert breaker.state() == "open"
    with pytest.raises(CircuitOpen) as info:
        http.get_json(f"{API}/x")
    assert route.call_count == 3  # no call while open
    assert info.value.retry_after is not None and 0 < info.value.retry_after <= 1

    time.sleep(1.1)
    assert breaker.state() == "half_open"
    route.side_effect = [httpx.Response(200, json={"ok": 1})]
    assert http.get_json(f"{API}/x").data == {"ok": 1}
    assert route.call_count == 4
    assert breaker.state() == "closed"


@respx.mock
def test_failed_trial_reopens_and_only_one_trial_runs(rds: redis.Redis) -> None:
    vendor = f"cb-{uuid.uuid4().hex}"
    config = BreakerConfig(failure_threshold=2, window_s=60, cooldown_s=0.5, trial_timeout_s=5)
    breaker = CircuitBreaker(rds, vendor, config)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state() == "open"
    time.sleep(0.6)
    assert breaker.before_call() is True  # this caller holds the single trial
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # everyone else waits
    breaker.record_failure(trial=True)
    assert breaker.state() == "open"
    time.sleep(0.6)
    assert breaker.before_call() is True
    breaker.record_success(trial=True)
    assert breaker.state() == "closed"
    assert breaker.before_call() is False


@respx.mock
def test_permanent_errors_and_429_do_not_open_the_circuit(rds: redis.Redis) -> None:
    vendor = f"cb-{uuid.uuid4().hex}"
    respx.get(f"{API}/missing").respond(404)
    respx.get(f"{API}/busy").respond(429, headers={"Retry-After": "100"})
    http = _http(rds, vendor)
    for _ in range(5):
        with pytest.raises(VendorNotFound):
            http.get_json(f"{API}/missing")
        with pytest.raises(RateLimited):
            http.get_json(f"{API}/busy")
    assert CircuitBreaker(rds, vendor).state() == "closed"


@respx.mock
def test_success_resets_the_failure_count(rds: redis.Redis) -> None:
    vendor = f"cb-{uuid.uuid4().hex}"
    route = respx.get(f"{API}/x")
    route.side_effect = [
        httpx.Response(503),
        httpx.Response(503),
        httpx.Response(200, json={}),
        httpx.Response(503),
        httpx.Response(503),
    ]
    http = _http(rds, vendor)
    for _ in range(5):
        try:
            http.get_json(f"{API}/x")
        except VendorTransientError:
            pass
    assert CircuitBreaker(rds, vendor).state() == "closed"


@respx.mock
def test_vendor_http_uses_the_shared_rate_limit(rds: redis.Redis) -> None:
    vendor = f"rl-{uuid.uuid4().hex}"
    respx.get(f"{API}/x").respond(200, json={})
    http = _http(rds, vendor, rate="2/minute", rate_wait_s=0.2)
    http.get_json(f"{API}/x")
    http.get_json(f"{API}/x")
    with pytest.raises(RateLimited) as info:
        http.get_json(f"{API}/x")
    assert info.value.local
    assert respx.calls.call_count == 2
