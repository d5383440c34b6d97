"""secrets_broker settings: `SECRETS_BROKER_` prefix, shared values from `MSP_`."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from pydantic import SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from mspkit.settings import KitSettings

# Used only when MSP_ENV=dev and no key is configured, so dev processes agree on fingerprints.
DEV_FINGERPRINT_KEY = "msp-dev-only-release-fingerprint-key"


class Settings(KitSettings):
    """Settings of the secrets_broker service."""

    model_config = SettingsConfigDict(env_prefix="SECRETS_BROKER_", extra="ignore")
    service_name = "secrets_broker"

    db_pool_size: int = 20

    # Handed over by the launcher (`mspctl run-with-secret-id`); the wrapped secret id is single use.
    vault_role: str = "msp-broker-api"
    vault_role_id: SecretStr | None = None
    vault_wrapped_secret_id: SecretStr | None = None
    vault_timeout_s: float = 2.5
    # Matches the threadpool (40): every worker thread may hold one Vault connection.
    vault_pool_size: int = 40
    # When the Vault token can no longer be renewed and no fresh secret id exists, exit so the
    # supervisor restarts the process through the launcher (which mints a new secret id).
    vault_restart_on_token_loss: bool = True
    vault_renew_check_s: float = 30.0

    # HMAC key for release token fingerprints (the token itself is never stored).
    fingerprint_key: SecretStr = SecretStr("")

    intake_timeout_s: float = 2.0
    release_wrap_ttl_s: int = 120
    service_wrap_ttl_s: int = 120
    release_quota_per_hour: int = 10

    smtp_timeout_s: float = 5.0
    mail_from: str = "MSP secrets broker <no-reply@msp.invalid>"
    # Base of the reveal link mailed to third parties; defaults to MSP_SECRETS_BROKER_URL.
    public_url: str | None = None

    audit_anchor_interval_s: float = 1.0
    audit_anchor_every: int = 100

    pending_credential_grace_s: float = 120.0
    sweep_interval_s: float = 60.0

    # --- third-party reveal (POST /v1/reveal, the mailed link) ---
    # How long a mailed reveal code works (once). Only its HMAC is stored (`fingerprint_key`).
    reveal_code_ttl_s: int = 3600
    # The wrapping token the broker mints and unwraps itself when a code is revealed; it never
    # leaves the process, so it only needs to outlive the two Vault calls.
    reveal_wrap_ttl_s: int = 30
    # POST /v1/reveal takes no bearer token: blunt code guessing per client IP (shared in Redis).
    reveal_rate_limit: str = "20/minute"
    redis_timeout_s: float = 1.0
    # STARTTLS on an smtp:// relay. Unset: on outside dev, off in dev (the mail sink speaks plain
    # SMTP). Outside dev it cannot be turned off; an smtps:// relay uses TLS from the first byte.
    smtp_starttls: bool | None = None

    # The broker worker (revoker role): thread pool size, and the sweep that carries out the
    # revocations still open (API-requested ones, and any whose Vault call failed).
    worker_concurrency: int = 4
    revocation_sweep_interval_s: float = 10.0
    revocation_batch: int = 100
    revocation_backoff_max_s: float = 120.0

    def fingerprint_key_bytes(self) -> bytes:
        """The HMAC key for token fingerprints (a fixed key in dev only)."""
        value = self.fingerprint_key.get_secret_value()
        if not value and self.is_dev:
            value = DEV_FINGERPRINT_KEY
        return value.encode()

    def reveal_base_url(self) -> str:
        """Public base URL of the broker, for links in mail."""
        return (self.public_url or self.secrets_broker_url).rstrip("/")

    @model_validator(mode="after")
    def _require_vault_tls(self) -> Settings:
        # The broker sends its AppRole login and every wrapping token to Vault: never in clear text.
        if not self.is_dev and urlsplit(self.vault_addr).scheme != "https":
            raise ValueError(
                f"{self.env_name('vault_addr')} must be an https:// Vault address outside MSP_ENV=dev"
                " (also read as SECRETS_BROKER_VAULT_ADDR)"
            )
        return self

    @model_validator(mode="after")
    def _require_mail_tls(self) -> Settings:
        if not self.is_dev and self.smtp_starttls is False and urlsplit(self.smtp_url).scheme != "smtps":
            raise ValueError(
                "SECRETS_BROKER_SMTP_STARTTLS=false: outside MSP_ENV=dev the reveal mail must use STARTTLS "
                "(or an smtps:// SECRETS_BROKER_SMTP_URL)"
            )
        return self

    def smtp_uses_starttls(self) -> bool:
        """Whether the mailer must upgrade an smtp:// connection with STARTTLS before sending."""
        if urlsplit(self.smtp_url).scheme == "smtps":
            return False
        return self.smtp_starttls if self.smtp_starttls is not None else not self.is_dev


@lru_cache
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return Settings()
