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

# Each process asks for 15 slots of a 10-per-hour limit, blocking up to 1 s for each. Its clock is a
# counter its own sleep advances, so a refused slot costs no real time; the window itself is Redis's.
_WORKER = """
import json, sys
import redis
from mspkit.http import RateLimited, RedisRateLimiter
url, vendor, rate, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
now = [0.0]
def sleep(seconds):
    now[0] += seconds
limiter = RedisRateLimiter(redis.Redis.from_url(url), rate, sleep=sleep, clock=lambda: now[0])
taken = refused = 0
for _ in range(n):
    try:
        limiter.acquire(vendor, timeout_s=1)
        taken += 1
    except RateLimited as exc:
        assert exc.local
        refused += 1
print(json.dumps({"taken": taken, "refused": refused, "waited": now[0]}))
"""


class FakeTime:
    """A clock that only the limiter's own sleep moves (no real waiting)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        assert self.now < 60, "the limiter kept waiting long past its timeout"


@pytest.fixture
def rds(kit_redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(kit_redis_url)
    yield client
    client.close()


def test_rate_limit_is_shared_across_processes(kit_redis_url: str) -> None:
    vendor = f"rl-{uuid.uuid4().hex}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, kit_redis_url, vendor, "10/hour", "15"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        results.append(json.loads(out))
    # One window for both: 10 slots in all, not 10 each; every other call waited its 1 s, then gave up.
    assert sum(r["taken"] for r in results) == 10
    assert sum(r["refused"] for r in results) == 20
    assert all(r["waited"] == pytest.approx(r["refused"] * 1.0, abs=0.01 * r["refused"] + 1e-9) for r in results)


def test_acquire_waits_for_room_instead_of_failing(rds: redis.Redis) -> None:
    vendor = f"rl-{uuid.uuid4().hex}"
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        time.sleep(seconds)  # the window is Redis's real one: room comes back only in real time

    limiter = RedisRateLimiter(rds, "2/second", sleep=sleep)
    limiter.acquire(vendor, timeout_s=5)
    limiter.acquire(vendor, timeout_s=5)
    assert pauses == []
    limiter.acquire(vendor, timeout_s=5)  # no RateLimited: it waited for the oldest call to leave
    assert pauses, "the third call found room without waiting: the window is not being applied"
    assert all(p <= 0.25 + 0.01 for p in pauses)  # it polls in short steps, not one long sleep


def test_acquire_times_out_with_a_local_rate_limited(rds: redis.Redis) -> None:
    vendor = f"rl-{uuid.uuid4().hex}"
    fake = FakeTime()
    limiter = RedisRateLimiter(rds, "2/minute", sleep=fake.sleep, clock=fake.clock)
    limiter.acquire(vendor, timeout_s=1)
    limiter.acquire(vendor, timeout_s=1)
    assert fake.sleeps == []
    with pytest.raises(RateLimited) as info:
        limiter.acquire(vendor, timeout_s=0.3)
    assert info.value.local and info.value.retry_after is not None and info.value.retry_after > 50
    # It waited exactly its 0.3 s timeout on its clock, in short polls, and then gave up.
    assert sum(fake.sleeps) == pytest.approx(0.3, abs=0.002)
    assert len(fake.sleeps) >= 2 and all(s <= 0.25 + 0.01 for s in fake.sleeps)


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
