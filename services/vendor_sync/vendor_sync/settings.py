"""vendor_sync settings: `VENDOR_SYNC_` prefix, shared values from `MSP_`."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
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
    breaker_failure_threshold: int = Field(5, ge=1)
    breaker_window_s: float = Field(60.0, gt=0)
    breaker_cooldown_s: float = Field(30.0, gt=0)

    # --- jobs --------------------------------------------------------------------------------
    refresh_max_attempts: int = Field(5, ge=1, le=50)
    retry_base_s: float = Field(2.0, gt=0)
    retry_cap_s: float = Field(120.0, gt=0)
    check_interval_s: int = Field(86_400, ge=60)
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

    @field_validator("http_allowed_hosts")
    @classmethod
    def _check_allowed(cls, value: str) -> str:
        # Refuse a bad entry at start-up, naming the setting, not at the first vendor call.
        for entry in _split(value):
            parse_origin(entry)
        return value

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
