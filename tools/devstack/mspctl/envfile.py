"""The `<devstack>/env` dotenv file."""

from __future__ import annotations

from pathlib import Path

from dotenv import dotenv_values

from mspctl.files import write_private

# The keys the mspctl contract lists, in the order they are written.
CONTRACT_KEYS = (
    "MSP_ENV",
    "MSP_INTAKE_URL",
    "MSP_SECRETS_BROKER_URL",
    "MSP_VENDOR_SYNC_URL",
    "MSP_DATABASE_URL",
    "MSP_REDIS_URL",
    "MSP_VAULT_ADDR",
    "MSP_SMTP_URL",
    "MSP_MAIL_UI_URL",
    "MSP_VENDOR_SIM_URL",
    "MSP_JWT_ISSUER",
    "MSP_JWKS_URL",
    "MSP_TOKEN_URL",
)
EXTRA_KEYS = (
    "INTAKE_DATABASE_URL",
    "VENDOR_SYNC_DATABASE_URL",
    "SECRETS_BROKER_DATABASE_URL",
    "PORTAL_DATABASE_URL",
    # Where browsers reach the portal; the dev issuer registers `<MSP_PORTAL_URL>/auth/callback`.
    "MSP_PORTAL_URL",
    # Where intake's worker mails drift-review and renewal tasks (notifications).
    "MSP_OPS_EMAIL",
    "VENDOR_SYNC_RDAP_BOOTSTRAP_URL",
    "VENDOR_SYNC_HTTP_ALLOWED_HOSTS",
    "VENDOR_SYNC_VENDOR_SIM_URL",
    # The dev issuer's token profile: `mspctl token` and the tests' tokens take their shape from it.
    "MSP_DEV_TOKEN_PROFILE",
    # intake's PSA: the simulator's ConnectWise, with the dev integration's key files, and the
    # portal's ticket pod it frames (written by mspctl/psa.py; listed here, not imported, because the
    # production images keep this module and not that one).
    "INTAKE_PSA_PROVIDER",
    "INTAKE_PSA_CONNECTWISE_SITE_URL",
    "INTAKE_PSA_CONNECTWISE_COMPANY",
    "INTAKE_PSA_CONNECTWISE_PUBLIC_KEY_FILE",
    "INTAKE_PSA_CONNECTWISE_PRIVATE_KEY_FILE",
    "INTAKE_PSA_CONNECTWISE_CLIENT_ID_FILE",
    "INTAKE_PSA_CALLBACK_URL",
    "INTAKE_PSA_TICKET_URL_TEMPLATE",
    "PORTAL_PSA_PROVIDER",
    "PORTAL_PSA_ORIGIN",
)
ALL_KEYS = CONTRACT_KEYS + EXTRA_KEYS
# Written when the profile sets them (mspctl.tokens.PROFILE_CLAIM_SETTINGS): the claim mapping the
# services need, also read from here by tests that run a service in-process.
OPTIONAL_KEYS = ("MSP_AUTH_SUBJECT_CLAIM", "MSP_AUTH_ROLE_CLAIM", "MSP_AUTH_ROLES_CLAIM", "MSP_AUTH_TENANT_CLAIM")


def render(values: dict[str, str]) -> str:
    """Render the env file text, in the fixed key order."""
    missing = [k for k in ALL_KEYS if k not in values]
    if missing:
        raise ValueError(f"env file is missing {missing}")
    unknown = sorted(set(values) - set(ALL_KEYS) - set(OPTIONAL_KEYS))
    if unknown:  # a value silently left out of the file would reach supervisor's programs but not the tests
        raise ValueError(f"env file has no place for {unknown}")
    lines = ["# Written by mspctl; regenerated on every `mspctl up`."]
    for key in (*ALL_KEYS, *(k for k in OPTIONAL_KEYS if k in values)):
        value = values[key]
        if any(c in value for c in "\"'\\\n $#`"):
            raise ValueError(f"unsupported character in the value of {key}")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def write_env(path: Path, values: dict[str, str]) -> None:
    """Write the env file with mode 0600 (it holds database passwords)."""
    write_private(path, render(values))


def read_env(path: Path) -> dict[str, str]:
    """Read the env file into a dict ({} when missing)."""
    if not path.exists():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}
