"""VendorHTTP: guarded reads and writes plus circuit breaker, shared rate limit and retries, for one vendor."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx
from limits import RateLimitItem
from redis import Redis

from mspkit.http.addresses import AddressGuard, Resolver
from mspkit.http.body import VendorResponse
from mspkit.http.breaker import BreakerConfig, CircuitBreaker
from mspkit.http.client import DEFAULT_USER_AGENT, WRITE_METHODS, Exchange, FetchLimits, fetch, make_client
from mspkit.http.errors import RateLimited
from mspkit.http.jsonbody import JsonResponse, decode_json_response
from mspkit.http.policy import HostPolicy
from mspkit.http.ratelimit import RedisRateLimiter
from mspkit.http.retry import RetryPolicy, call_with_retries, is_retryable
from mspkit.http.urls import redact_url

T = TypeVar("T")


class VendorHTTP:
    """Everything a vendor adapter needs to call one vendor safely; thread-safe like httpx.Client.

    `allowed_hosts` are "scheme://host[:port]" origins; an address in a loopback or private range is
    connected to only when an entry names that IP literal. `credential_headers` adds the adapter's own
    key headers to those dropped when a redirect leaves the first origin. A `client` or `transport`
    passed in (tests) bypasses the address guard. `rate_limit_statuses` are the statuses the vendor
    uses to say "slow down" besides 429; `idempotency_header` is the header the vendor dedupes
    writes on, when it has one.
    """

    def __init__(
        self,
        vendor: str,
        *,
        allowed_hosts: Iterable[str],
        denied_hosts: Iterable[str] = (),
        redis: Redis | None = None,
        rate: str | RateLimitItem | None = None,
        rate_wait_s: float = 10.0,
        breaker: BreakerConfig | None = None,
        retry: RetryPolicy | None = None,
        limits: FetchLimits | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        resolver: Resolver | None = None,
        credential_headers: Iterable[str] = (),
        ssl_context: ssl.SSLContext | None = None,
        rate_limit_statuses: Iterable[int] = (),
        idempotency_header: str | None = None,
    ) -> None:
        if (rate is not None or breaker is not None) and redis is None:
            raise ValueError("a shared rate limit or circuit breaker needs a Redis client")
        self.vendor = vendor
        self.policy = HostPolicy.build(allowed_hosts, denied_hosts)
        self.limits = limits or FetchLimits()
        self.retry = retry or RetryPolicy()
        self.rate_wait_s = rate_wait_s
        self.limiter = RedisRateLimiter(redis, rate, sleep=sleep, clock=clock) if redis is not None and rate else None
        self.breaker = CircuitBreaker(redis, vendor, breaker) if redis is not None and breaker else None
        self.credential_headers = tuple(credential_headers)
        self.rate_limit_statuses = frozenset({429, *rate_limit_statuses})
        self.idempotency_header = idempotency_header
        self._sleep = sleep
        # Deadlines and the wait for a rate slot are measured on `clock` (tests inject one).
        self._clock = clock
        self._owns_client = client is None
        self.client = client or make_client(
            user_agent=user_agent,
            limits=self.limits,
            transport=transport,
            guard=AddressGuard.for_policy(self.policy, resolver),
            ssl_context=ssl_context,
        )

    def is_allowed(self, url: str) -> bool:
        """True when the URL's origin is allowlisted (its addresses are checked only when connecting)."""
        return self.policy.is_allowed(url)

    def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> VendorResponse:
        """GET raw bytes with breaker, rate limit and retries."""
        return self._call(url, lambda: self._fetch(url, headers))

    def get_json(
        self, url: str, *, headers: Mapping[str, str] | None = None, accept: str = "application/json"
    ) -> JsonResponse:
        """GET and parse JSON (Content-Type checked, HTML refused), with breaker, rate limit and retries."""
        merged = {"Accept": accept, **(headers or {})}
        return self._call(url, lambda: decode_json_response(self._fetch(url, merged), vendor=self.vendor))

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        idempotency_key: str | None = None,
    ) -> VendorResponse:
        """POST, PUT, PATCH or DELETE with the same guards as a read; retried only when that is safe.

        PUT and DELETE are idempotent and retried like reads; POST and PATCH are retried on a
        transient error only with an idempotency key the vendor dedupes on, and otherwise only when
        the vendor refused the call for its rate limit (then nothing was done).
        """
        verb = method.upper()
        if verb not in WRITE_METHODS:
            raise ValueError(f"send() is for writes ({', '.join(sorted(WRITE_METHODS))}), not {verb}")
        merged = dict(headers or {})
        content = None
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":"), ensure_ascii=False).encode()
            merged.setdefault("Content-Type", "application/json")
        deduped = False
        if idempotency_key is not None and self.idempotency_header is not None:
            merged[self.idempotency_header] = idempotency_key
            deduped = True
        exchange = Exchange(method=verb, headers=merged, content=content, rate_limit_statuses=self.rate_limit_statuses)
        safe = verb in {"PUT", "DELETE"} or deduped
        retryable = is_retryable if safe else _refused_for_rate
        return self._call(url, lambda: self._fetch(url, exchange), verb=verb, retryable=retryable)

    def send_json(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        idempotency_key: str | None = None,
        accept: str = "application/json",
    ) -> JsonResponse | None:
        """A write whose answer is JSON (Content-Type checked, HTML refused); None for an empty answer (204)."""
        merged = {"Accept": accept, **(headers or {})}
        response = self.send(method, url, headers=merged, json_body=json_body, idempotency_key=idempotency_key)
        if not response.body.strip():
            return None
        return decode_json_response(response, vendor=self.vendor)

    def _fetch(self, url: str, sent: Mapping[str, str] | Exchange | None) -> VendorResponse:
        exchange = (
            sent if isinstance(sent, Exchange) else Exchange(headers=sent, rate_limit_statuses=self.rate_limit_statuses)
        )
        return fetch(
            self.client,
            url,
            policy=self.policy,
            limits=self.limits,
            vendor=self.vendor,
            credential_headers=self.credential_headers,
            clock=self._clock,
            exchange=exchange,
        )

    def _call(
        self,
        url: str,
        once: Callable[[], T],
        *,
        verb: str = "GET",
        retryable: Callable[[BaseException], bool] = is_retryable,
    ) -> T:
        # Fail fast on a refused URL: it is permanent and must not use a rate slot or a trial.
        self.policy.check(url)

        def attempt() -> T:
            trial = self.breaker.before_call() if self.breaker else False
            if self.limiter is not None:
                try:
                    self.limiter.acquire(self.vendor, timeout_s=self.rate_wait_s)
                except BaseException:
                    if trial and self.breaker is not None:
                        self.breaker.release_trial()
                    raise
            try:
                result = once()
            except BaseException as exc:
                if self.breaker is not None:
                    self.breaker.record(exc, trial=trial)
                raise
            if self.breaker is not None:
                self.breaker.record(None, trial=trial)
            return result

        return call_with_retries(
            attempt,
            self.retry,
            sleep=self._sleep,
            describe=f"{self.vendor} {verb} {redact_url(url)}",
            retryable=retryable,
        )

    def close(self) -> None:
        """Close the underlying client if this object created it."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> VendorHTTP:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _refused_for_rate(exc: BaseException) -> bool:
    """A non-idempotent write is retried only when the vendor refused it for its rate limit."""
    return isinstance(exc, RateLimited) and is_retryable(exc)
