"""portal settings: `PORTAL_` prefix, shared values from `MSP_` (the portal's own secrets accept `MSP_PORTAL_*` too)."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from mspkit.settings import KitSettings

TARGET_PARAMS = ("resource", "audience", "scope")
# The PSAs of DESIGN § Contract: PSA; `none` turns the ticket pod off (every /pod path is a 404).
PSA_PROVIDERS = ("none", "connectwise", "autotask", "halo")


class Settings(KitSettings):
    """Settings of the portal."""

    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore")
    service_name = "portal"
    # The portal acts for people only: no service identity (client credentials, MSP_TOKEN_URL), and it
    # takes the key set's address from the discovery document it reads from the https:// issuer.
    unused_settings = frozenset({"service_client_secret", "token_url", "jwks_url"})

    db_pool_size: int = 10
    # Where browsers reach the portal; the OIDC redirect URI is `<public_url>/auth/callback`.
    public_url: str = Field(
        "http://127.0.0.1:8000", validation_alias=AliasChoices("PORTAL_PUBLIC_URL", "MSP_PORTAL_URL")
    )
    client_id: str = Field("portal", validation_alias=AliasChoices("PORTAL_CLIENT_ID", "MSP_PORTAL_CLIENT_ID"))
    client_secret: SecretStr = Field(
        SecretStr(""), validation_alias=AliasChoices("PORTAL_CLIENT_SECRET", "MSP_PORTAL_CLIENT_SECRET")
    )
    # Fernet key (urlsafe base64 of 32 bytes) encrypting the tokens and CSRF secrets kept in `portal.sessions`.
    session_key: SecretStr = Field(
        SecretStr(""), validation_alias=AliasChoices("PORTAL_SESSION_KEY", "MSP_PORTAL_SESSION_KEY")
    )
    # Idle and absolute session lifetimes; the absolute one matches the IdP's refresh-token lifetime.
    session_idle_s: int = 30 * 60
    session_absolute_s: int = 8 * 3600
    # How long a started sign-in (state, nonce, PKCE verifier) may take to come back.
    login_ttl_s: int = 10 * 60
    oidc_scope: str = "openid profile email offline_access"
    # How the refresh_token grant names the API: `resource` (RFC 8707, dev), `audience`, or `scope`
    # (`scope_template` then gives the scope, e.g. Entra ID's `api://<id>/.default`).
    token_target_param: str = "resource"
    token_scope_template: str = "{api}/.default"
    # A cached API token is renewed this long before it expires.
    token_renew_margin_s: int = 30
    idp_timeout_s: float = 5.0
    # Which page areas this process serves (comma-separated; all by default).
    page_areas: str = "admin,client,technician"
    api_timeout_s: float = 10.0
    # The ticket pod: the PSA whose ticket screen frames it, and that PSA's origin (`frame-ancestors`).
    psa_provider: str = "none"
    psa_origin: str = ""
    # A pod session ends after this long without a request (its own cookie, DESIGN § Contract: PSA).
    pod_idle_s: int = 15 * 60

    @model_validator(mode="after")
    def _check_portal(self) -> Settings:
        if self.token_target_param not in TARGET_PARAMS:
            raise ValueError(f"PORTAL_TOKEN_TARGET_PARAM must be one of {', '.join(TARGET_PARAMS)}")
        if not self.is_dev and not self.jwt_issuer.startswith("https://"):
            raise ValueError("MSP_JWT_ISSUER must be an https:// issuer outside MSP_ENV=dev")
        if not self.is_dev and not self.public_url.startswith("https://"):
            raise ValueError("MSP_PORTAL_URL must be https:// outside MSP_ENV=dev")
        self._check_psa()
        return self

    def _check_psa(self) -> None:
        if self.psa_provider not in PSA_PROVIDERS:
            raise ValueError(f"PORTAL_PSA_PROVIDER must be one of {', '.join(PSA_PROVIDERS)}")
        if self.psa_provider == "none":
            return
        if not self.psa_origin:
            raise ValueError("PORTAL_PSA_ORIGIN is required when PORTAL_PSA_PROVIDER is set")
        if not is_origin(self.psa_origin):
            raise ValueError("PORTAL_PSA_ORIGIN must be an origin: scheme://host[:port], nothing after it")
        if not self.is_dev and not self.psa_origin.startswith("https://"):
            raise ValueError("PORTAL_PSA_ORIGIN must be https:// outside MSP_ENV=dev")

    @property
    def pod_enabled(self) -> bool:
        """Whether a PSA frames the ticket pod."""
        return self.psa_provider != "none"

    @property
    def portal_origin(self) -> str:
        """The portal's own origin (scheme://host[:port]), as browsers send it in `Origin`."""
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}".lower()

    @property
    def redirect_uri(self) -> str:
        """The OIDC redirect URI registered at the IdP."""
        return self.public_url.rstrip("/") + "/auth/callback"

    @property
    def discovery_url(self) -> str:
        """The issuer's OpenID discovery document."""
        return self.jwt_issuer.rstrip("/") + "/.well-known/openid-configuration"

    def api_urls(self) -> dict[str, str]:
        """Base URL of each API the portal calls."""
        return {
            "intake": self.intake_url.rstrip("/"),
            "secrets_broker": self.secrets_broker_url.rstrip("/"),
            "vendor_sync": self.vendor_sync_url.rstrip("/"),
        }

    def target_params(self, api: str) -> dict[str, str]:
        """The form field(s) naming `api` in a refresh_token grant."""
        if self.token_target_param == "scope":
            return {"scope": self.token_scope_template.format(api=api)}
        return {self.token_target_param: api}


def is_origin(value: str) -> bool:
    """True for `http(s)://host[:port]` exactly (no path, query, fragment or user info; lower case)."""
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and "@" not in parts.netloc
        and not (parts.path or parts.query or parts.fragment)
        and value == value.lower()
        and value == f"{parts.scheme}://{parts.netloc}"
    )


@lru_cache
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return Settings()
