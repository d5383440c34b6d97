"""Settings base: one env prefix per service, shared `MSP_` values read through `AliasChoices`."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mspkit.auth import ClaimMap

# Values that mean "nobody configured this": refused outside dev.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "secret", "placeholder", "dev", "xxx", "todo", "replace", "replace-me"}
)
# Shared URLs that carry tokens or keys: outside dev each must be https://.
HTTPS_SETTINGS = ("jwt_issuer", "jwks_url", "token_url")


class KitSettings(BaseSettings):
    """Values every service shares; a subclass sets `env_prefix` and adds its own fields.

    Each shared field is read from `<PREFIX><NAME>` first and `MSP_<NAME>` second, so one
    `<devstack>/env` serves all services while a single service can still be pointed elsewhere.
    """

    # hide_input_in_errors: a refusal must not echo the environment (secrets included) into a log.
    model_config = SettingsConfigDict(extra="ignore", env_file=None, hide_input_in_errors=True)
    service_name: ClassVar[str] = "service"
    # Shared settings this service never uses (the portal has no service identity): the production
    # guards skip them, so a deployment need not invent a value nobody reads.
    unused_settings: ClassVar[frozenset[str]] = frozenset()

    env: str = Field("production", validation_alias=AliasChoices("MSP_ENV"))
    log_level: str = "INFO"
    database_url: str = "postgresql+psycopg://localhost/msp"
    redis_url: str = "redis://127.0.0.1:6379/0"
    jwt_issuer: str = "http://127.0.0.1/"
    jwks_url: str = "http://127.0.0.1/.well-known/jwks.json"
    jwt_algorithm: str = "EdDSA"
    token_url: str = "http://127.0.0.1/oauth/token"
    service_client_secret: SecretStr = SecretStr("")
    intake_url: str = "http://127.0.0.1:8001"
    secrets_broker_url: str = "http://127.0.0.1:8002"
    vendor_sync_url: str = "http://127.0.0.1:8003"
    vault_addr: str = "http://127.0.0.1:8200"
    smtp_url: str = "smtp://127.0.0.1:25"
    db_pool_size: int = 10
    # Which token claims carry the subject, the role (or an array of roles) and the tenant: a real IdP
    # plugs in through these alone (Entra ID: `oid`, `roles`, an `extn.` claim). Empty turns one off.
    auth_subject_claim: str = "sub"
    auth_role_claim: str = "role"
    auth_roles_claim: str = "roles"
    auth_tenant_claim: str = "msp_client_id"
    # How a client-credentials grant names its target service: `audience`, `resource` or `scope`.
    service_token_target_param: str = "audience"

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Give each inherited shared field the aliases `<PREFIX>NAME` and `MSP_NAME`."""
        super().__pydantic_init_subclass__(**kwargs)
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name in KitSettings.model_fields:
            field = cls.__pydantic_fields__.get(name)
            if field is None or name == "env":
                continue
            # Copy: the parent's FieldInfo is shared by every service's subclass.
            field = copy.copy(field)
            upper = name.upper()
            field.validation_alias = AliasChoices(f"{prefix}{upper}", f"MSP_{upper}")
            cls.__pydantic_fields__[name] = field
        cls.model_rebuild(force=True)

    @property
    def is_dev(self) -> bool:
        """True in the dev stack and tests, where placeholder secrets are tolerated."""
        return self.env in {"dev", "test"}

    @property
    def service_client_id(self) -> str:
        """Client id at the token endpoint: the service identity `svc:<name>`."""
        return f"svc:{self.service_name}"

    def env_name(self, name: str) -> str:
        """The environment variable an operator sets for a field (`MSP_<NAME>` for a shared one)."""
        upper = name.upper()
        if name in KitSettings.model_fields:
            return f"MSP_{upper}"
        return f"{self.model_config.get('env_prefix', '')}{upper}"

    def _also(self, name: str) -> str:
        prefix = str(self.model_config.get("env_prefix", ""))
        return f"; also read as {prefix}{name.upper()}" if prefix and name in KitSettings.model_fields else ""

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> KitSettings:
        if self.is_dev:
            return self
        for name, value in self:
            if name in self.unused_settings:
                continue
            if isinstance(value, SecretStr) and value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    f"{self.env_name(name)} holds a placeholder secret; refusing to start outside MSP_ENV=dev"
                    f" ({name}{self._also(name)})"
                )
        for name in HTTPS_SETTINGS:
            if name in self.unused_settings:
                continue
            value = str(getattr(self, name))
            if not value.startswith("https://"):
                # Only the scheme: a URL may carry credentials an operator pasted into it.
                scheme = value.split("://", 1)[0] + "://" if "://" in value else "no scheme"
                what = "issuer" if name == "jwt_issuer" else "URL"
                raise ValueError(
                    f"{self.env_name(name)} must be an https:// {what} outside MSP_ENV=dev"
                    f" (got {scheme}{self._also(name)})"
                )
        return self

    @property
    def claim_map(self) -> ClaimMap:
        """The claim names every verifier of this service reads."""
        return ClaimMap(
            subject=self.auth_subject_claim,
            role=self.auth_role_claim,
            roles=self.auth_roles_claim,
            tenant=self.auth_tenant_claim,
        )

    def secret_values(self) -> list[str]:
        """Every `SecretStr` value, for the log redactor."""
        return [v.get_secret_value() for _, v in self if isinstance(v, SecretStr) and v.get_secret_value()]
