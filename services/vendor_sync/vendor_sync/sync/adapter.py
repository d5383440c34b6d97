"""The RDAP adapter as each worker process builds it: allowlist, shared rate limit, breaker, no in-process retry."""

from __future__ import annotations

import math
import os
import threading

from limits import RateLimitItem, parse
from redis import Redis

from mspkit.http import BreakerConfig, FetchLimits, RetryPolicy, VendorHTTP
from vendor_sync.adapters.rdap import RdapClient
from vendor_sync.settings import Settings, get_settings

RDAP_VENDOR = "rdap"
_lock = threading.Lock()
_clients: dict[int, RdapClient] = {}


def rate_budget(limit: str, headroom: float) -> RateLimitItem:
    """The vendor's limit minus the headroom: what our shared limiter admits per window."""
    item = parse(limit)
    amount = max(1, math.floor(item.amount * (1 - headroom)))
    return type(item)(amount, item.multiples, item.namespace)


def build_rdap_client(settings: Settings) -> RdapClient:
    """An RDAP client for this process, configured from settings."""
    redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=3)
    http = VendorHTTP(
        RDAP_VENDOR,
        allowed_hosts=settings.allowed_hosts,
        denied_hosts=settings.denied_hosts,
        redis=redis,
        rate=rate_budget(settings.rdap_rate_limit, settings.rate_limit_headroom),
        rate_wait_s=settings.rdap_rate_wait_s,
        breaker=BreakerConfig(
            failure_threshold=settings.breaker_failure_threshold,
            window_s=settings.breaker_window_s,
            cooldown_s=settings.breaker_cooldown_s,
        ),
        # One HTTP attempt per job attempt: retries are Celery countdowns counted in the database,
        # so a worker slot never sleeps through a backoff and every attempt is visible on the run.
        retry=RetryPolicy(max_attempts=1),
        limits=FetchLimits(deadline_s=settings.http_deadline_s),
    )
    return RdapClient(http, bootstrap_url=settings.rdap_bootstrap_url)


def get_rdap_client() -> RdapClient:
    """This process's RDAP client (built on first use, after any fork)."""
    pid = os.getpid()
    with _lock:
        client = _clients.get(pid)
        if client is None:
            _clients.clear()
            client = _clients[pid] = build_rdap_client(get_settings())
        return client


def reset_clients() -> None:
    """Forget clients built before a fork (their sockets belong to the parent)."""
    with _lock:
        _clients.clear()
