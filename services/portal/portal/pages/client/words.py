"""Plain-English words for the APIs' codes, as clients read them (no codes or jargon on their pages)."""

from __future__ import annotations

from typing import Any, Final

from portal.pages.technician.words import step_words

REQUEST_TYPES: Final[dict[str, str]] = {
    "purchase": "Purchase",
    "isp_account_setup": "Internet service (ISP) account",
    "spam_filter_setup": "Spam filtering for a domain",
    "vendor_contact_update": "Contact change at a vendor",
}
REQUEST_STATUSES: Final[dict[str, str]] = {
    "open": "Open",
    "done": "Done",
    "rejected": "Rejected",
    "cancelled": "Cancelled",
}
TASK_STATUSES: Final[dict[str, str]] = {
    "new": "Received",
    "awaiting_approval": "Waiting for your approval",
    "ready": "Ready to start",
    "in_progress": "Being worked on",
    "on_hold": "On hold",
    "done": "Done",
    "rejected": "Rejected",
    "cancelled": "Cancelled",
}
STEP_STATUSES: Final[dict[str, str]] = {"pending": "Not done yet", "succeeded": "Done", "failed": "Did not work"}
APPROVAL_STATUSES: Final[dict[str, str]] = {
    "pending": "Waiting for your decision",
    "approved": "Approved",
    "rejected": "Rejected",
    "expired": "Expired without a decision",
}
PARTY_CATEGORIES: Final[dict[str, str]] = {
    "provider_for_msp": "a provider working for us, your IT provider",
    "provider_for_client": "a provider working for you",
    "client_legal_representative": "your legal representative",
    "msp_professional_adviser": "our attorneys, accountants or auditors",
    "government_legal_process": "a government body acting under a subpoena or other legal process",
}
INFORMATION_CATEGORIES: Final[dict[str, str]] = {
    "contact_info": "contact details (names, email addresses and phone numbers)",
    "service_address": "the address where the service is installed",
    "billing": "billing details",
    "domain": "your domain name",
    "mail_routing": "how your email is delivered (the names of your mail servers)",
    "credentials": "passwords or access keys",
}
RELEASE_STATUSES: Final[dict[str, str]] = {
    "issued": "Handed out, not opened yet",
    "unwrapped": "Opened",
    "revoked": "Withdrawn before use",
    "expired": "Expired unused",
}
# Services that may receive a credential, named for people (the `sub` of a service release's recipient).
SERVICES: Final[dict[str, str]] = {
    "svc:vendor_sync": "our automatic vendor set-up service",
    "svc:intake": "our request service",
    "svc:secrets_broker": "our password vault service",
}
VENDOR_KINDS: Final[dict[str, str]] = {
    "isp": "Internet provider",
    "registrar": "Domain registrar",
    "dns_host": "DNS host",
    "hosting": "Hosting",
    "cloud": "Cloud",
    "email": "Email",
    "spam_filter": "Spam filter",
    "software": "Software",
}
# A client_user cannot approve: the approval waits for their organisation's administrator.
AWAITING_ADMIN: Final = "Waiting for approval by your organisation's administrator"


def _fallback(code: Any) -> str:
    """An unknown code still reads as words (a newer API value must not break the page)."""
    return str(code or "").replace("_", " ").capitalize()


def word(table: dict[str, str], code: Any) -> str:
    """The words for `code` in `table`, or the code itself made readable."""
    return table.get(str(code), _fallback(code))


def service_name(sub: Any) -> str:
    """A service recipient named in words."""
    return SERVICES.get(str(sub), f"an automatic service ({sub})" if sub else "an automatic service")


class Words:
    """The word tables and helpers for one client role, handed to templates as `w` (`w.task_status(t.status)`)."""

    def __init__(self, role: str = "client_admin") -> None:
        self.role = role

    def task_status(self, code: Any) -> str:
        """A task status in words; only a client_admin is asked for the approval a task waits for."""
        if str(code) == "awaiting_approval" and self.role != "client_admin":
            return AWAITING_ADMIN
        return word(TASK_STATUSES, code)

    request_type = staticmethod(lambda code: word(REQUEST_TYPES, code))
    request_status = staticmethod(lambda code: word(REQUEST_STATUSES, code))
    step_status = staticmethod(lambda code: word(STEP_STATUSES, code))
    # Step names are one vocabulary for every page (the technician's words hold it).
    step_name = staticmethod(step_words)
    approval_status = staticmethod(lambda code: word(APPROVAL_STATUSES, code))
    party = staticmethod(lambda code: word(PARTY_CATEGORIES, code))
    information = staticmethod(lambda code: word(INFORMATION_CATEGORIES, code))
    informations = staticmethod(lambda codes: [word(INFORMATION_CATEGORIES, c) for c in codes or []])
    release_status = staticmethod(lambda code: word(RELEASE_STATUSES, code))
    vendor_kind = staticmethod(lambda code: word(VENDOR_KINDS, code))
    service = staticmethod(service_name)


WORDS: Final = Words()


def words_for(role: str) -> Words:
    """The words a person of `role` reads (client_user and client_admin differ on approvals)."""
    return Words(role)
