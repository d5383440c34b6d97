"""intake settings: `INTAKE_` prefix, shared values from `MSP_`."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from mspkit.settings import PLACEHOLDER_SECRETS, KitSettings


class Settings(KitSettings):
    """Settings of the intake service."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")
    service_name = "intake"

    idempotency_ttl_s: int = 24 * 3600
    approval_ttl_s: int = 14 * 24 * 3600
    # Per-provider HMAC-SHA256 secrets of the PSA webhooks, e.g. {"connectwise": "..."} (JSON in the env).
    psa_webhook_secrets: dict[str, SecretStr] = {}
    vendor_sync_timeout_s: float = 3.0
    # Reads of credential metadata at the broker (a task's scope is checked there).
    secrets_broker_timeout_s: float = Field(3.0, gt=0)
    # intake-beat runs the purge of expired Idempotency-Keys this often; each run deletes batches of
    # this size, each in its own short transaction, up to the cap (the next run takes the rest).
    idempotency_purge_interval_s: float = Field(600.0, gt=0)
    idempotency_purge_batch_size: int = Field(1000, ge=1, le=100_000)
    idempotency_purge_max_batches: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _refuse_placeholder_webhook_secrets(self) -> Settings:
        if self.is_dev:
            return self
        for provider, secret in self.psa_webhook_secrets.items():
            if secret.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(f"psa_webhook_secrets[{provider}] is a placeholder; refusing to start outside dev")
        return self

    def secret_values(self) -> list[str]:
        """Every secret value, the PSA webhook secrets included, for the log redactor."""
        values = super().secret_values()
        values.extend(v.get_secret_value() for v in self.psa_webhook_secrets.values() if v.get_secret_value())
        return values


@lru_cache
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return Settings()
