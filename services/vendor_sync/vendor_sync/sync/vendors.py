"""Adapters as a sync job builds them: the account's key from the broker, the vendor's base URL from
code (the simulator's in dev), one shared rate limit and breaker per vendor in Redis, one attempt per call.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from redis import Redis

from mspkit.http import BreakerConfig, FetchLimits, RetryPolicy
from vendor_sync.adapters.cloudflare import DEFAULT_BASE_URL as CLOUDFLARE_API
from vendor_sync.adapters.cloudflare import DEFAULT_RATE as CLOUDFLARE_RATE
from vendor_sync.adapters.cloudflare import CloudflareAdapter
from vendor_sync.adapters.godaddy import GODADDY_API, GoDaddyAdapter
from vendor_sync.adapters.mailchannels import DEFAULT_RATE as MAILCHANNELS_RATE
from vendor_sync.adapters.mailchannels import MAILCHANNELS_API, MailChannelsAdapter
from vendor_sync.adapters.namecheap import NAMECHEAP_API, NAMECHEAP_RATE, NamecheapAdapter
from vendor_sync.settings import Settings, get_settings
from vendor_sync.sync.account_apply import Account
from vendor_sync.sync.account_state import VendorSnapshot, dns_vendor_state, registrar_vendor_state
from vendor_sync.sync.adapter import rate_budget
from vendor_sync.sync.plan import Attrs, Key
from vendor_sync.sync.vendor_keys import KeyRefused, KeySource, VendorKey, get_key_source

# Each vendor's published limit for one account's key ("limits" notation), before our headroom.
VENDOR_RATES = {
    "cloudflare": CLOUDFLARE_RATE,
    "godaddy": "60 per 1 minute",
    "namecheap": NAMECHEAP_RATE,
    "mailchannels": MAILCHANNELS_RATE,
}
# Where each vendor lives: code, not configuration (the simulator's paths mirror these in dev).
BASE_URLS = {
    "cloudflare": CLOUDFLARE_API,
    "godaddy": GODADDY_API,
    "namecheap": NAMECHEAP_API,
    "mailchannels": MAILCHANNELS_API,
}
SIM_PATHS = {
    "cloudflare": "/cloudflare/client/v4",
    "godaddy": "/godaddy",
    "namecheap": "/namecheap/xml.response",
    "mailchannels": "/mailchannels/inbound/v1",
}


Builder = Callable[[VendorKey, dict[str, Any]], Any]


def _cloudflare(key: VendorKey, options: dict[str, Any]) -> CloudflareAdapter:
    return CloudflareAdapter(key.secret, **options)


def _godaddy(key: VendorKey, options: dict[str, Any]) -> GoDaddyAdapter:
    if not key.username:
        # GoDaddy's key pair: the credential's username is the key, its secret the secret.
        raise KeyRefused("key_incomplete")
    return GoDaddyAdapter(key.username, key.secret, **options)


def _namecheap(key: VendorKey, options: dict[str, Any]) -> NamecheapAdapter:
    if not key.username:
        # Namecheap's ApiUser is the credential's username, its ApiKey the secret.
        raise KeyRefused("key_incomplete")
    client_ip = options.pop("client_ip")
    return NamecheapAdapter(key.username, key.secret, client_ip=client_ip, **options)


def _mailchannels(key: VendorKey, options: dict[str, Any]) -> MailChannelsAdapter:
    return MailChannelsAdapter(key.secret, **options)


BUILDERS: dict[str, Builder] = {
    "cloudflare": _cloudflare,
    "godaddy": _godaddy,
    "namecheap": _namecheap,
    "mailchannels": _mailchannels,
}


_redis_clients: dict[tuple[int, str], Redis] = {}


def _redis(url: str) -> Redis:
    # One connection pool per process (a forked worker child builds its own): jobs share it.
    key = (os.getpid(), url)
    client = _redis_clients.get(key)
    if client is None:
        client = _redis_clients[key] = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
    return client


def base_url(vendor: str, settings: Settings) -> str:
    """The vendor's base URL: code, or the simulator's in dev when `vendor_sim_url` is set."""
    if settings.vendor_sim_url:
        return settings.vendor_sim_url.rstrip("/") + SIM_PATHS[vendor]
    return BASE_URLS[vendor]


class VendorReader:
    """For one job: the account's adapter with its key, and the vendor's state as plan objects."""

    def __init__(self, adapter: Any, kind: str) -> None:
        self.adapter = adapter
        self.kind = kind

    def snapshot(self, current: dict[Key, Attrs]) -> VendorSnapshot:
        """Read every zone and its records, or every domain, from the vendor."""
        if self.kind == "dns_host":
            return dns_vendor_state((zone, self.adapter.list_records(zone.id)) for zone in self.adapter.list_zones())
        return registrar_vendor_state(self.adapter.list_domains(), current)

    def __enter__(self) -> VendorReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # The adapter holds the key: close it so nothing keeps the key beyond this job.
        self.adapter.close()
        self.adapter = None


def open_reader(
    account: Account,
    adapter: str,
    credential_id: uuid.UUID | None,
    job_id: str,
    *,
    keys: KeySource | None = None,
    settings: Settings | None = None,
    redis: Redis | None = None,
) -> VendorReader:
    """Release the account's key and build its adapter; KeyRefused when it has none or no adapter exists."""
    key = release_key(adapter, vendor_account_id=account.id, credential_id=credential_id, job_id=job_id, keys=keys)
    built = BUILDERS[adapter](key, adapter_options(adapter, settings or get_settings(), redis))
    return VendorReader(built, account.kind)


def release_key(
    adapter: str,
    *,
    vendor_account_id: uuid.UUID,
    credential_id: uuid.UUID | None,
    job_id: str,
    task_id: uuid.UUID | None = None,
    keys: KeySource | None = None,
) -> VendorKey:
    """The account's key released for this job (and task); KeyRefused, before any call, without a key or adapter."""
    if adapter not in BUILDERS:
        raise KeyRefused("no_adapter")
    if credential_id is None:
        raise KeyRefused("no_api_key")
    return (keys or get_key_source()).fetch(
        credential_id=credential_id, vendor_account_id=vendor_account_id, job_id=job_id, task_id=task_id
    )


def adapter_options(adapter: str, config: Settings, redis: Redis | None = None) -> dict[str, Any]:
    """What every job's adapter is built with: base URL, the shared rate limit and breaker, one attempt per call."""
    options: dict[str, Any] = {
        "base_url": base_url(adapter, config),
        "redis": redis or _redis(config.redis_url),
        "rate": str(rate_budget(config.vendor_rate(adapter, VENDOR_RATES[adapter]), config.rate_limit_headroom)),
        "breaker": BreakerConfig(
            failure_threshold=config.breaker_failure_threshold,
            window_s=config.breaker_window_s,
            cooldown_s=config.breaker_cooldown_s,
        ),
        # One HTTP attempt per job attempt: retries are the job's, counted in the database.
        "retry": RetryPolicy(max_attempts=1),
        "limits": FetchLimits(deadline_s=config.http_deadline_s),
    }
    if adapter == "namecheap":
        # The address Namecheap has whitelisted for the account: the workers' egress address.
        options["client_ip"] = config.namecheap_client_ip
    if adapter == "mailchannels":
        # The MSP's Inbound subscription, which clients' domains are provisioned under.
        options["subscription_handle"] = config.mailchannels_subscription_handle
    return options


@contextmanager
def open_adapter(
    adapter: str, key: VendorKey, *, settings: Settings | None = None, redis: Redis | None = None
) -> Iterator[Any]:
    """An account's adapter built with its released key, closed (and the key with it) when the block ends."""
    built = BUILDERS[adapter](key, adapter_options(adapter, settings or get_settings(), redis))
    try:
        yield built
    finally:
        built.close()
