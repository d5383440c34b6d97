"""intake settings: `INTAKE_` prefix, shared values from `MSP_`."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, model_validator
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

    # --- notifications (intake-worker) ---
    # Where people open the links in mail (`{portal}/approvals/{id}`, ...).
    portal_url: str = Field(
        "http://127.0.0.1:8000", validation_alias=AliasChoices("INTAKE_PORTAL_URL", "MSP_PORTAL_URL")
    )
    # Who reads `drift_review` and `renewal` tasks; empty: no such mail.
    ops_email: str = Field("", validation_alias=AliasChoices("INTAKE_OPS_EMAIL", "MSP_OPS_EMAIL"))
    mail_from: str = "MSP notifications <no-reply@msp.invalid>"
    smtp_timeout_s: float = Field(10.0, gt=0)
    # STARTTLS on an smtp:// relay. Unset: on outside dev, off in dev (the mail sink speaks plain
    # SMTP). Outside dev it cannot be turned off; an smtps:// relay uses TLS from the first byte.
    smtp_starttls: bool | None = None
    # Transient SMTP (or broker) failures are retried with capped, jittered backoff, attempts counted
    # in the database, dead-lettered after this many.
    notify_max_attempts: int = Field(30, ge=1)
    notify_retry_max_s: float = Field(60.0, gt=0, le=290)

    @model_validator(mode="after")
    def _refuse_placeholder_webhook_secrets(self) -> Settings:
        if self.is_dev:
            return self
        for provider, secret in self.psa_webhook_secrets.items():
            if secret.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(f"psa_webhook_secrets[{provider}] is a placeholder; refusing to start outside dev")
        return self

    @model_validator(mode="after")
    def _require_mail_tls(self) -> Settings:
        if not self.is_dev and self.smtp_starttls is False and urlsplit(self.smtp_url).scheme != "smtps":
            raise ValueError(
                "INTAKE_SMTP_STARTTLS=false: outside MSP_ENV=dev notifications must use STARTTLS "
                "(or an smtps:// MSP_SMTP_URL)"
            )
        return self

    def smtp_uses_starttls(self) -> bool:
        """Whether the mailer must upgrade an smtp:// connection with STARTTLS before sending."""
        if urlsplit(self.smtp_url).scheme == "smtps":
            return False
        return self.smtp_starttls if self.smtp_starttls is not None else not self.is_dev

    def secret_values(self) -> list[str]:
        """Every secret value, the PSA webhook secrets included, for the log redactor."""
        values = super().secret_values()
        values.extend(v.get_secret_value() for v in self.psa_webhook_secrets.values() if v.get_secret_value())
        return values


@lru_cache
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return Settings()
