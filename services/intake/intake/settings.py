"""intake settings: `INTAKE_` prefix, shared values from `MSP_`."""

from __future__ import annotations

import re
import string
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlsplit

from limits import parse as parse_rate
from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from mspkit.http.urls import is_plain_http_url
from mspkit.settings import PLACEHOLDER_SECRETS, KitSettings
from mspkit.vocabulary import TaskStatus

# --- PSA defaults (the settings themselves are in the PSA block of Settings) ---
SUPPORTED_PSA_PROVIDERS = ("none", "connectwise")
# ConnectWise's own ticket screen ("fv_sr100_request.rails?service_recid=<ticket id>", as PSA
# integrations link to it). Placeholders: {site} = INTAKE_PSA_CONNECTWISE_SITE_URL as configured,
# {site_root} = its scheme://host[:port] only, {ticket_id}, {company} = INTAKE_PSA_CONNECTWISE_COMPANY.
# On ConnectWise's cloud the API host (api-na...) is not the web host (na...): write the web host out.
CONNECTWISE_TICKET_SCREEN = (
    "{site}/v4_6_release/services/system_io/Service/fv_sr100_request.rails"
    "?service_recid={ticket_id}&companyName={company}"
)
TICKET_URL_PLACEHOLDERS = frozenset({"site", "site_root", "ticket_id", "company"})
DEFAULT_PSA_BOARD = "Service Board"
DEFAULT_PSA_STATUS_MAP = {
    "new": "New",
    "awaiting_approval": "Waiting Client",
    "ready": "New",
    "in_progress": "In Progress",
    "on_hold": "Waiting Client",
    "done": "Completed",
    "rejected": "Closed",
    "cancelled": "Closed",
}
DEFAULT_PSA_CLOSED_STATUSES = ["Closed", "Completed"]
# The PSA's API keys are one line of printable ASCII (no spaces: they go into HTTP headers).
_PSA_KEY_SHAPE = re.compile(r"[\x21-\x7e]{1,256}")
_PSA_COMPANY_SHAPE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PSA_KEY_FILE_MAX_BYTES = 4096
PSA_KEY_FILE_SETTINGS = (
    "psa_connectwise_public_key_file",
    "psa_connectwise_private_key_file",
    "psa_connectwise_client_id_file",
)


class Settings(KitSettings):
    """Settings of the intake service."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")
    service_name = "intake"

    idempotency_ttl_s: int = 24 * 3600
    approval_ttl_s: int = 14 * 24 * 3600
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

    # --- PSA (intake's worker pushes tasks out as tickets; the webhook takes callbacks in) ---
    # `autotask` and `halo` are refused at start until their adapters exist.
    psa_provider: Literal["none", "connectwise", "autotask", "halo"] = "none"
    # ConnectWise's site, e.g. https://api-na.myconnectwise.net (dev: http://127.0.0.1:<port>/connectwise,
    # the simulator); the API root is {site}/v4_6_release/apis/3.0. Required for connectwise; https outside dev.
    psa_connectwise_site_url: str = ""
    # The login company id (the `company` of `company+publicKey`), not a secret.
    psa_connectwise_company: str = ""
    # Files holding the API member's keys and the integration's clientId, read once at start
    # (whitespace stripped): never the broker, which holds clients' credentials, not ours.
    psa_connectwise_public_key_file: Path | None = None
    psa_connectwise_private_key_file: Path | None = None
    psa_connectwise_client_id_file: Path | None = None
    # The board tickets are made on; board -> task status -> the PSA's status name, for each board.
    psa_board: str = DEFAULT_PSA_BOARD
    psa_status_maps: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {DEFAULT_PSA_BOARD: dict(DEFAULT_PSA_STATUS_MAP)}
    )
    # Inbound, only these statuses (per board) are acted on: they close the ticket's task.
    psa_closed_statuses: dict[str, list[str]] = Field(
        default_factory=lambda: {DEFAULT_PSA_BOARD: list(DEFAULT_PSA_CLOSED_STATUSES)}
    )
    # The URL the PSA calls: intake's public URL + /v1/webhooks/psa/connectwise; empty: no registration.
    psa_callback_url: str = ""
    # A ticket's link shown on its task; placeholders {site}, {site_root}, {ticket_id}, {company}
    # (see CONNECTWISE_TICKET_SCREEN). Dev: {site_root}/_sim/psa/connectwise/tickets/{ticket_id}/screen.
    psa_ticket_url_template: str = CONNECTWISE_TICKET_SCREEN
    # Calls to the PSA: a limit shared by every worker (Redis), and each call's whole deadline.
    psa_rate: str = "10/second"
    psa_timeout_s: float = Field(10.0, gt=0, le=60)
    # The callbacks' signing keys: fetched with this deadline, kept in process memory this long, and
    # fetched at most this often (a flood of callbacks naming made-up keys cannot hammer the PSA).
    psa_key_fetch_timeout_s: float = Field(3.0, gt=0, le=10)
    psa_key_cache_s: float = Field(300.0, ge=0, le=86_400)
    psa_key_fetch_rate: str = "10/minute"
    # What the key files held (filled at start); in secret_values(), never in a dump or an env var.
    _psa_keys: dict[str, SecretStr] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check_psa(self) -> Settings:
        refusal = (
            self._psa_provider_refusal()
            or self._psa_format_refusal()
            or self._psa_site_refusal()
            or self._read_psa_keys()
            or self._psa_status_map_refusal()
        )
        if refusal:
            raise ValueError(refusal)
        return self

    def _psa_provider_refusal(self) -> str | None:
        if self.psa_provider in SUPPORTED_PSA_PROVIDERS:
            return None
        supported = ", ".join(SUPPORTED_PSA_PROVIDERS)
        setting = f"{self.env_name('psa_provider')}={self.psa_provider}"
        return f"{setting}: no adapter for this PSA yet (supported: {supported})"

    def _psa_format_refusal(self) -> str | None:
        for name in ("psa_rate", "psa_key_fetch_rate"):
            try:
                parse_rate(getattr(self, name))
            except ValueError:
                return f"{self.env_name(name)} must be a rate such as 10/second"
        if not _is_ticket_url_template(self.psa_ticket_url_template):
            allowed = ", ".join("{" + name + "}" for name in sorted(TICKET_URL_PLACEHOLDERS))
            setting = self.env_name("psa_ticket_url_template")
            return f"{setting} must hold {{ticket_id}} and no placeholder but {allowed}"
        if self.psa_callback_url and not is_plain_http_url(self.psa_callback_url, https_only=not self.is_dev):
            return f"{self.env_name('psa_callback_url')} must be an https:// URL (http:// only in MSP_ENV=dev)"
        return None

    def _psa_site_refusal(self) -> str | None:
        if self.psa_provider != "connectwise":
            return None
        site = self.env_name("psa_connectwise_site_url")
        if not self.psa_connectwise_site_url:
            return f"{site} is required when {self.env_name('psa_provider')}=connectwise"
        if not is_plain_http_url(self.psa_connectwise_site_url):
            return f"{site} must be scheme://host[:port][/path], without query, fragment or userinfo"
        if not self.is_dev and urlsplit(self.psa_connectwise_site_url).scheme != "https":
            return f"{site} must be an https:// URL outside MSP_ENV=dev"
        if not _PSA_COMPANY_SHAPE.fullmatch(self.psa_connectwise_company):
            company = self.env_name("psa_connectwise_company")
            return f"{company} is required for connectwise: 1-64 letters, digits, '.', '_' or '-'"
        return None

    def _read_psa_keys(self) -> str | None:
        """Read each configured key file (required for connectwise); refuse a missing, empty or placeholder one."""
        keys: dict[str, SecretStr] = {}
        for name in PSA_KEY_FILE_SETTINGS:
            path: Path | None = getattr(self, name)
            setting = self.env_name(name)
            if path is None:
                if self.psa_provider == "connectwise":
                    return f"{setting} is required when {self.env_name('psa_provider')}=connectwise"
                continue
            value, refusal = _read_key_file(path, setting)
            if refusal:
                return refusal
            if not _PSA_KEY_SHAPE.fullmatch(value) or (name == "psa_connectwise_public_key_file" and ":" in value):
                return f"{setting}: the file must hold one line of printable ASCII without spaces"
            if not self.is_dev and value.lower() in PLACEHOLDER_SECRETS:
                return f"{setting} holds a placeholder; refusing to start outside MSP_ENV=dev"
            keys[name.removesuffix("_file")] = SecretStr(value)
        self._psa_keys = keys
        return None

    def _psa_status_map_refusal(self) -> str | None:
        if self.psa_provider == "none":
            return None
        board = self.psa_board
        if not board.strip() or any(ch in board for ch in '"\\') or not board.isprintable():
            return f"{self.env_name('psa_board')} must be a printable board name without quotes or backslashes"
        mapping = self.psa_status_maps.get(board, {})
        missing = [status for status in get_args(TaskStatus) if not mapping.get(status, "").strip()]
        if missing:
            return (
                f"{self.env_name('psa_status_maps')} has no PSA status for board {board!r} "
                f"for task status {', '.join(missing)}"
            )
        return None

    def psa_key(self, name: str) -> SecretStr | None:
        """A key read from its INTAKE_PSA_*_FILE at start, by setting name without `_file`."""
        return self._psa_keys.get(name)

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
        """Every secret value, the PSA's API keys included, for the log redactor."""
        values = super().secret_values()
        values.extend(v.get_secret_value() for v in self._psa_keys.values() if v.get_secret_value())
        return values


def _is_ticket_url_template(template: str) -> bool:
    """True when every placeholder is a known bare name ({site!r}, {site.x}, {0} are not) and {ticket_id} is one."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return False
    names = [(field, spec, conversion) for _, field, spec, conversion in parsed if field is not None]
    if any(spec or conversion or field not in TICKET_URL_PLACEHOLDERS for field, spec, conversion in names):
        return False
    return any(field == "ticket_id" for field, _, _ in names)


def _read_key_file(path: Path, setting: str) -> tuple[str, str | None]:
    """The file's stripped text, or a refusal naming the setting (never the file's content)."""
    try:
        if path.stat().st_size > _PSA_KEY_FILE_MAX_BYTES:
            return "", f"{setting}: {path} is larger than {_PSA_KEY_FILE_MAX_BYTES} bytes"
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return "", f"{setting}: no file at {path}"
    except (OSError, UnicodeDecodeError) as exc:
        return "", f"{setting}: cannot read {path} ({type(exc).__name__})"
    if not value:
        return "", f"{setting}: {path} is empty"
    return value, None


@lru_cache
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return Settings()
