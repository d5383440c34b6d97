"""Values the contract fixes for every service: one definition each, imported by all three services.

Each vocabulary is a `Literal` (for schemas and type checks) and a tuple of its values (for checks
and tests), both from the same definition.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

# DESIGN.md § Contract: secrets_broker, Categories.
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
CredentialKind = Literal["password", "api_key"]
CredentialOwner = Literal["client", "msp"]

# DESIGN.md § Contract: intake (task statuses and transitions).
TaskStatus = Literal["new", "awaiting_approval", "ready", "in_progress", "on_hold", "done", "rejected", "cancelled"]
TASK_STATUSES: Final[tuple[str, ...]] = get_args(TaskStatus)
OPEN_TASK_STATUSES: Final[tuple[str, ...]] = ("new", "awaiting_approval", "ready", "in_progress", "on_hold")
CLOSED_TASK_STATUSES: Final[tuple[str, ...]] = ("done", "rejected", "cancelled")

ClientStatus = Literal["active", "inactive", "closed"]
CLIENT_STATUSES: Final[tuple[str, ...]] = get_args(ClientStatus)

# DESIGN.md § Contract: intake (approvals).
ApprovalStatus = Literal["pending", "approved", "rejected", "expired"]
APPROVAL_STATUSES: Final[tuple[str, ...]] = get_args(ApprovalStatus)
PartyCategory = Literal[
    "provider_for_msp",
    "provider_for_client",
    "client_legal_representative",
    "msp_professional_adviser",
    "government_legal_process",
]
PARTY_CATEGORIES: Final[tuple[str, ...]] = get_args(PartyCategory)
# Every party category but the one that needs a legal reference.
OrdinaryPartyCategory = Literal[
    "provider_for_msp", "provider_for_client", "client_legal_representative", "msp_professional_adviser"
]
InformationCategory = Literal["contact_info", "service_address", "billing", "domain", "mail_routing", "credentials"]
INFORMATION_CATEGORIES: Final[tuple[str, ...]] = get_args(InformationCategory)

# DESIGN.md § Contract: vendor_sync (vendor kinds) and the credential category each one's accounts use.
VendorKind = Literal["isp", "registrar", "dns_host", "hosting", "cloud", "email", "spam_filter", "software"]
VENDOR_KINDS: Final[tuple[str, ...]] = get_args(VendorKind)
KIND_TO_CATEGORY: Final[dict[str, str]] = {
    kind: ("software_license" if kind == "software" else kind) for kind in VENDOR_KINDS
}

# DESIGN.md § PSA (`INTAKE_PSA_PROVIDER` without `none`): the keys of `psa_member_ids` and `psa_company_ids`.
PsaProvider = Literal["connectwise", "autotask", "halo"]
PSA_PROVIDERS: Final[tuple[str, ...]] = get_args(PsaProvider)
# DESIGN.md § Contract: staff directory.
StaffRole = Literal["technician", "admin"]
STAFF_ROLES: Final[tuple[str, ...]] = get_args(StaffRole)
