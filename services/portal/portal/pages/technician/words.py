"""Plain words for the technician pages: statuses, task types, transitions and the broker's refusals."""

from __future__ import annotations

from typing import Final

# The broker's release rules (DESIGN.md § Contract: secrets_broker), each in words a technician can act on.
RULE_WORDS: Final[dict[str, str]] = {
    "caller_not_assignee": "You are not assigned to this task.",
    "task_not_in_progress": "This task is not in progress; start it first.",
    "client_mismatch": "This credential belongs to another client than the task's.",
    "client_not_active": "This client is not active.",
    "out_of_scope": "This credential is not in the task's scope; ask an admin to add it.",
    "reason_too_short": "Give a reason of at least 10 characters.",
    "third_party_not_approved": "The client has not approved sharing this credential with that recipient.",
    "quota_exceeded": "Too many reveals for this task in the last hour.",
}
UNKNOWN_RULE: Final = "The reveal was refused by the release rules."

NEED_REASON: Final = "Give a reason."
ALREADY_USED: Final = "This reveal was already used; reload the page to reveal again."
NONCE_INVALID: Final = "This reveal form has expired; reload the page to reveal again."
SIGN_IN_AGAIN: Final = "Revealing a secret needs a sign-in within the last 15 minutes."
TOKEN_GONE: Final = "The released secret expired before it could be shown; try again."
NOT_AVAILABLE: Final = "This credential is not available to you for this task."
TOO_MANY: Final = "Too many attempts; wait a minute and try again."

STATUS_WORDS: Final[dict[str, str]] = {
    "new": "New",
    "awaiting_approval": "Awaiting approval",
    "ready": "Ready",
    "in_progress": "In progress",
    "on_hold": "On hold",
    "done": "Done",
    "rejected": "Rejected",
    "cancelled": "Cancelled",
}

TYPE_WORDS: Final[dict[str, str]] = {
    "purchase": "Purchase",
    "isp_account_setup": "ISP account setup",
    "spam_filter_setup": "Spam filter setup",
    "vendor_contact_update": "Vendor contact update",
    "drift_review": "Drift review",
    "provisioning": "Provisioning",
    "renewal": "Renewal",
    "sync_failure": "Sync failure",
}

# The contract's transition table, the edges the assignee may take (approval-only edges and the
# admin's reopening are not offered here). Only which buttons to show: intake decides every move.
WORK_TRANSITIONS: Final[dict[str, tuple[str, ...]]] = {
    "new": ("awaiting_approval", "ready", "cancelled"),
    "awaiting_approval": ("cancelled",),
    "ready": ("in_progress", "cancelled"),
    "in_progress": ("on_hold", "done", "cancelled"),
    "on_hold": ("in_progress", "cancelled"),
}

# What each button says: the action, not the status name.
TRANSITION_WORDS: Final[dict[str, str]] = {
    "awaiting_approval": "Ask for approval",
    "ready": "Mark ready",
    "in_progress": "Start work",
    "on_hold": "Put on hold",
    "done": "Mark done",
    "cancelled": "Cancel task",
}

PARTY_WORDS: Final[dict[str, str]] = {
    "provider_for_msp": "a provider working for us",
    "provider_for_client": "a provider working for the client",
    "client_legal_representative": "the client's legal representative",
    "msp_professional_adviser": "our attorney, accountant or auditor",
    "government_legal_process": "a government body under legal process",
}

APPROVAL_WORDS: Final[dict[str, str]] = {
    "pending": "Waiting for the client",
    "approved": "Approved",
    "rejected": "Rejected",
    "expired": "Expired",
}

# After a successful form, the task page says what happened (a fixed key in the URL, never free text).
DONE_WORDS: Final[dict[str, str]] = {
    "taken": "You took this task.",
    "assigned": "The task was assigned.",
    "moved": "The task's status changed.",
    "noted": "Your note was added.",
    "step": "The step was recorded.",
    "retried": "Provisioning re-queued: the unfinished steps will run again.",
}

# Intake's refusals of `POST /v1/tasks/{id}/provisioning/retry`, each with what to do about it.
RETRY_FORBIDDEN: Final = (
    "Provisioning was not retried: only the task's assignee or an admin may retry it, and this task is "
    "assigned to someone else. Ask an admin to retry it."
)
RETRY_NOT_ON_HOLD: Final = (
    "Provisioning was not retried: only a task on hold can be retried, and this one is {status}. "
    "Reload the page to see where it stands."
)
RETRY_NOT_PROVISIONED: Final = (
    "Provisioning was not retried: this kind of task is not carried out at vendors. Work its steps by hand."
)
RETRY_CLIENT_INACTIVE: Final = (
    "Provisioning was not retried: the client is not active. An admin must make the client active first."
)


# Provisioning's step names (vendor_sync/provisioning/plans.py) in words; an unknown one reads as its name.
STEP_WORDS: Final[dict[str, str]] = {
    "provision_spam_filter_domain": "Set up the domain at the spam filter",
    "set_mx_records": "Point the domain's mail (MX records) at the spam filter",
    "update_vendor_contacts": "Change the contacts at the vendor",
    "update_registry_contacts": "Record the new contacts in our registry",
    "change_contacts_by_hand": "Change the contacts by hand",
    "isp_place_order": "Place the order with the ISP",
    "isp_give_service_address": "Give the ISP the service address",
    "isp_arrange_site_visit": "Arrange the ISP's site visit",
    "isp_record_account": "Record the new ISP account",
}


def step_words(name: object) -> str:
    """A task step's name in words."""
    return STEP_WORDS.get(str(name), str(name).replace("_", " "))


def rule_words(rule: object) -> str:
    """The words for a release rule id (a rule this portal does not know yet still gets a sentence)."""
    return RULE_WORDS.get(str(rule), UNKNOWN_RULE)


def status_words(status: object) -> str:
    """A task status in words."""
    return STATUS_WORDS.get(str(status), str(status).replace("_", " "))


def type_words(task_type: object) -> str:
    """A task type in words."""
    return TYPE_WORDS.get(str(task_type), str(task_type).replace("_", " "))
