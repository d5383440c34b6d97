"""Values the contract fixes for every service (DESIGN.md § Contract: secrets_broker, Categories)."""

from __future__ import annotations

from typing import Final, Literal, get_args

CredentialCategory = Literal[
    "isp",
    "registrar",
    "dns_host",
    "hosting",
    "cloud",
    "email",
    "spam_filter",
    "software_license",
    "network_device",
    "workstation",
    "server",
    "other",
]
CREDENTIAL_CATEGORIES: Final[tuple[str, ...]] = get_args(CredentialCategory)
