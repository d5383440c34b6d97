"""vendor_sync settings: `VENDOR_SYNC_` prefix, shared values from `MSP_`."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from mspkit.http import parse_origin
from mspkit.settings import KitSettings

IANA_DNS_BOOTSTRAP_URL = "https://data.iana.org/rdap/dns.json"


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class Settings(KitSettings):
    """Settings of the vendor_sync service (API, worker and beat)."""

    model_config = SettingsConfigDict(env_prefix="VENDOR_SYNC_", extra="ignore")
    service_name = "vendor_sync"

    # --- vendor HTTP -------------------------------------------------------------------------
    rdap_bootstrap_url: str = IANA_DNS_BOOTSTRAP_URL
    # Exact origins ("scheme://host[:port]", comma-separated) the worker may contact: bootstrap,
    # registries, registrars. A loopback or private address is reached only when listed as an IP
    # literal (the dev simulator: http://127.0.0.1:PORT). A legacy bare "host:port" means https
    # (http for a loopback host).
    http_allowed_hosts: str = "https://data.iana.org:443,https://rdap.verisign.com:443"
    # Always refused, on top of Vault's address (which is denied whatever this says).
    http_denied_hosts: str = ""
    # The vendor's published limit, in `limits` notation ("100/second", "10 per 1 second"); shared by
    # every worker through Redis.
    rdap_rate_limit: str = "10/second"
    # Share of that limit left unused: the vendor counts arrivals, we count admissions, and the gap
    # between the two (scheduling, GIL, network) would otherwise push a busy window over its limit.
    rate_limit_headroom: float = Field(0.1, ge=0, lt=1)
    # How long a call may wait for a slot in the shared budget before the job is rescheduled.
    rdap_rate_wait_s: float = Field(10.0, gt=0, le=60)
    http_deadline_s: float = Field(20.0, gt=0, le=120)
    # Dev only: the simulator's origin; every adapter's base URL (code) becomes its path there.
    vendor_sim_url: str | None = None
    # A vendor's own published limit overridden ("cloudflare=100/second,godaddy=60/minute"), shared by
    # every worker through Redis; the dev stack sets the simulator's limit here.
    vendor_rate_limits: str = ""
    # Namecheap answers only calls that name the address it has whitelisted for the account (ClientIp):
    # the workers' public egress address.
    namecheap_client_ip: str = "127.0.0.1"
    breaker_failure_threshold: int = Field(5, ge=1)
    breaker_window_s: float = Field(60.0, gt=0)
    breaker_cooldown_s: float = Field(30.0, gt=0)

    # --- jobs --------------------------------------------------------------------------------
    refresh_max_attempts: int = Field(5, ge=1, le=50)
    retry_base_s: float = Field(2.0, gt=0)
    retry_cap_s: float = Field(120.0, gt=0)
    check_interval_s: int = Field(86_400, ge=60)
    # How often each vendor account is synced, per vendor kind (the scheduler spreads accounts over it).
    dns_host_sync_interval_s: int = Field(3_600, ge=60)
    registrar_sync_interval_s: int = Field(86_400, ge=60)
    expiry_warning_days: int = Field(30, ge=1)
    tick_interval_s: float = Field(30.0, gt=0)
    tick_batch_size: int = Field(500, ge=1, le=5_000)
    tick_max_batches: int = Field(10, ge=1, le=1_000)
    # A queued run whose message was published this long ago and never ran is published again.
    requeue_after_s: int = Field(600, ge=30)
    # A running run older than this whose worker holds no lock is handed to a worker again.
    running_stale_s: int = Field(600, ge=30)
    # Dev-only override of the broker's visibility timeout (the kit keeps 300 s everywhere else).
    visibility_timeout_s: int | None = Field(None, ge=5)
    beat_schedule: str | None = None
    # Drift events raised as intake tasks: a refused event (4xx) is tried this many times, then dead-lettered;
    # intake being down never uses an event's last attempt.
    drift_task_max_attempts: int = Field(10, ge=1, le=100)
    # One run of `vendor_sync.drift.raise_tasks` reads at most batch x batches events.
    drift_task_batch_size: int = Field(50, ge=1, le=1_000)
    drift_task_max_batches: int = Field(10, ge=1, le=1_000)
    # Provisioning: deliveries of one run (transient vendor errors, lost workers) before it is dead-lettered
    # and its current step reported failed; intake being down gives its attempt back.
    provisioning_max_attempts: int = Field(8, ge=1, le=50)
    # The MSP's MailChannels Inbound subscription that clients' domains are provisioned under.
    mailchannels_subscription_handle: str = Field("inbound", min_length=1, max_length=256, pattern=r"^[\x21-\x7e]+$")
    # TTL of the MX records provisioning writes at a DNS host.
    provisioning_mx_ttl_s: int = Field(3_600, ge=60, le=86_400)

    @field_validator("http_allowed_hosts")
    @classmethod
    def _check_allowed(cls, value: str) -> str:
        # Refuse a bad entry at start-up, naming the setting, not at the first vendor call.
        for entry in _split(value):
            parse_origin(entry)
        return value

    @model_validator(mode="after")
    def _sim_only_in_dev(self) -> Settings:
        # An adapter's base URL is code; pointing it elsewhere is for the dev simulator alone.
        if self.vendor_sim_url and not self.is_dev:
            raise ValueError("VENDOR_SYNC_VENDOR_SIM_URL is honoured only with MSP_ENV=dev")
        return self

    def vendor_rate(self, vendor: str, default: str) -> str:
        """The vendor's rate limit: the override from `vendor_rate_limits`, else its published one."""
        for entry in _split(self.vendor_rate_limits):
            name, _, rate = entry.partition("=")
            if name.strip() == vendor and rate.strip():
                return rate.strip()
        return default

    @property
    def allowed_hosts(self) -> list[str]:
        """The allowlist as a list of "scheme://host[:port]" origins."""
        return _split(self.http_allowed_hosts)

    @property
    def denied_hosts(self) -> list[str]:
        """Hosts never contacted: Vault's address plus any configured extras."""
        return [self.vault_addr, *_split(self.http_denied_hosts)]

    @property
    def beat_schedule_path(self) -> str:
        """Where beat keeps its schedule: the setting, else the devstack dir."""
        if self.beat_schedule:
            return self.beat_schedule
        root = os.environ.get("MSP_DEVSTACK_DIR") or ".devstack"
        return str(Path(root) / "celerybeat-schedule")


@lru_cache
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return Settings()
