"""The configured PSA adapter (or none), built from intake's settings."""

from __future__ import annotations

from functools import lru_cache

from redis import Redis

from intake.psa.connectwise import ConnectWiseAdapter
from intake.psa.protocol import PsaAdapter
from intake.settings import SUPPORTED_PSA_PROVIDERS, Settings, get_settings


def build_psa_adapter(settings: Settings, redis: Redis | None = None) -> PsaAdapter | None:
    """The adapter for INTAKE_PSA_PROVIDER, or None for `none`.

    With `redis`, calls share one rate limit (INTAKE_PSA_RATE) and one circuit breaker across every
    worker, and key fetches one budget; without it, neither limit nor breaker applies to the API calls.
    """
    provider = settings.psa_provider
    if provider == "none":
        return None
    if provider != "connectwise":
        # Settings refuse this at start; kept here so that a hand-built Settings cannot slip through.
        supported = ", ".join(SUPPORTED_PSA_PROVIDERS)
        raise ValueError(f"INTAKE_PSA_PROVIDER={provider}: no adapter for this PSA yet (supported: {supported})")
    public_key = settings.psa_key("psa_connectwise_public_key")
    private_key = settings.psa_key("psa_connectwise_private_key")
    client_id = settings.psa_key("psa_connectwise_client_id")
    if public_key is None or private_key is None or client_id is None:
        raise ValueError("the ConnectWise key files were not read (INTAKE_PSA_CONNECTWISE_*_FILE)")
    return ConnectWiseAdapter(
        site_url=settings.psa_connectwise_site_url,
        company=settings.psa_connectwise_company,
        public_key=public_key.get_secret_value(),
        private_key=private_key.get_secret_value(),
        client_id=client_id.get_secret_value(),
        board=settings.psa_board,
        status_maps=settings.psa_status_maps,
        closed_statuses=settings.psa_closed_statuses,
        ticket_url_template=settings.psa_ticket_url_template,
        redis=redis,
        rate=settings.psa_rate,
        timeout_s=settings.psa_timeout_s,
        key_fetch_timeout_s=settings.psa_key_fetch_timeout_s,
        key_cache_s=settings.psa_key_cache_s,
        key_fetch_rate=settings.psa_key_fetch_rate,
        # Never Vault, whatever the site URL says.
        denied_hosts=(settings.vault_addr,),
    )


def register_configured_callback(adapter: PsaAdapter | None, settings: Settings) -> bool:
    """At start: make sure the PSA calls INTAKE_PSA_CALLBACK_URL (nothing when it or the adapter is unset)."""
    if adapter is None or not settings.psa_callback_url:
        return False
    adapter.register_callback(settings.psa_callback_url)
    return True


@lru_cache(maxsize=1)
def get_adapter() -> PsaAdapter | None:
    """This process's adapter (built on first use; None for INTAKE_PSA_PROVIDER=none).

    The worker clears it after a fork (`intake.psa.jobs`), so a child never reuses its parent's sockets.
    """
    settings = get_settings()
    if settings.psa_provider == "none":
        return None
    # Redis shares the PSA's rate limit and circuit breaker across every worker and API replica.
    return build_psa_adapter(settings, Redis.from_url(settings.redis_url))
