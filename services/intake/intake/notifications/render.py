"""The mails' words: one frozen dataclass per template (ids, names and links only) and its rendering.

A template can only show what its dataclass holds, and no dataclass has a field for a secret, a
token or a note: `AccessAlert(secret=...)` is a TypeError before any template runs. Subject lines
are one line (no header injection through a name). Templates are Jinja2 with `StrictUndefined`,
HTML ones autoescaped.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

PARTY_WORDS = {
    "provider_for_msp": "a provider working for us (your MSP)",
    "provider_for_client": "a provider working for you",
    "client_legal_representative": "your legal representative",
    "msp_professional_adviser": "our attorneys, accountants or auditors",
    "government_legal_process": "a government body under subpoena or legal process",
}
INFORMATION_WORDS = {
    "contact_info": "contact details",
    "service_address": "the service address",
    "billing": "billing details",
    "domain": "domain names",
    "mail_routing": "mail routing (MX records)",
    "credentials": "credentials (each released separately, never by email)",
}
STATUS_WORDS = {
    "new": "new",
    "awaiting_approval": "waiting for your approval",
    "ready": "ready to be worked on",
    "in_progress": "in progress",
    "on_hold": "on hold",
    "done": "done",
    "rejected": "rejected",
    "cancelled": "cancelled",
}
TASK_TYPE_WORDS = {
    "purchase": "purchase",
    "isp_account_setup": "ISP account setup",
    "spam_filter_setup": "spam filter setup",
    "vendor_contact_update": "vendor contact update",
    "drift_review": "drift review",
    "renewal": "domain renewal",
    "provisioning": "provisioning",
    "sync_failure": "sync failure",
}


def words(table: dict[str, str], value: str) -> str:
    """A vocabulary value in plain words (the value itself when the table has none)."""
    return table.get(value, value.replace("_", " "))


def when(value: datetime) -> str:
    """A time as people read it, always in UTC."""
    return value.strftime("%Y-%m-%d %H:%M UTC")


def one_line(text: str, limit: int = 150) -> str:
    """Text safe for a header: control characters become spaces, and it is cut at `limit`."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class Rendered:
    """A message's subject and its two bodies."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True, kw_only=True)
class Mail:
    """Base of the templates' inputs; `TEMPLATE` names the files and the metric label."""

    TEMPLATE: ClassVar[str]

    def subject(self) -> str:
        """The subject line (one line)."""
        raise NotImplementedError

    def context(self) -> dict[str, Any]:
        """What the template sees: the fields, and words for them."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True, kw_only=True)
class ApprovalRequest(Mail):
    """To the client's approvers: an approval waits for them (what, for which request, to whom, until when)."""

    TEMPLATE: ClassVar[str] = "approval_request"
    approval_id: uuid.UUID
    client_name: str
    task_id: uuid.UUID
    task_title: str
    task_type: str
    request_id: uuid.UUID | None
    recipient_name: str
    party_category: str
    information_categories: tuple[str, ...]
    credential_count: int
    expires_at: datetime
    link: str

    def subject(self) -> str:
        """Approval needed, for what."""
        return one_line(f"Approval needed: {self.task_title} ({self.client_name})")

    def context(self) -> dict[str, Any]:
        """The fields, the party and categories in words, and the deadline."""
        return super().context() | {
            "party_words": words(PARTY_WORDS, self.party_category),
            "information_words": [words(INFORMATION_WORDS, c) for c in self.information_categories],
            "task_type_words": words(TASK_TYPE_WORDS, self.task_type),
            "expires_words": when(self.expires_at),
        }


@dataclass(frozen=True, kw_only=True)
class AccessAlert(Mail):
    """To the client's alert addresses: one of their credentials was released to a person."""

    TEMPLATE: ClassVar[str] = "access_alert"
    release_id: uuid.UUID
    client_name: str
    credential_name: str
    recipient_label: str
    task_id: uuid.UUID | None
    task_title: str | None
    reason: str
    released_at: datetime
    link: str

    def subject(self) -> str:
        """Which credential went to whom."""
        return one_line(f"Access alert: {self.credential_name} released to {self.recipient_label}")

    def context(self) -> dict[str, Any]:
        """The fields and the time in words."""
        return super().context() | {"released_words": when(self.released_at)}


@dataclass(frozen=True, kw_only=True)
class TaskStatusMail(Mail):
    """To the requester (verified address only): a task of their request changed status."""

    TEMPLATE: ClassVar[str] = "task_status"
    request_id: uuid.UUID
    task_id: uuid.UUID
    task_title: str
    client_name: str
    status: str
    link: str

    def subject(self) -> str:
        """The task and its new status."""
        return one_line(f"Your request: {self.task_title} is {words(STATUS_WORDS, self.status)}")

    def context(self) -> dict[str, Any]:
        """The fields and the status in words."""
        return super().context() | {"status_words": words(STATUS_WORDS, self.status)}


@dataclass(frozen=True, kw_only=True)
class OpsTaskMail(Mail):
    """To MSP_OPS_EMAIL: a drift review or renewal task was created (its title says what changed)."""

    TEMPLATE: ClassVar[str] = "ops_task"
    task_id: uuid.UUID
    task_type: str
    task_title: str
    client_name: str
    link: str

    def subject(self) -> str:
        """The kind of task, its client and title."""
        kind = words(TASK_TYPE_WORDS, self.task_type).capitalize()
        # The client first: a long title (up to 200 characters) is cut, never the client.
        return one_line(f"{kind} ({self.client_name}): {self.task_title}")

    def context(self) -> dict[str, Any]:
        """The fields and the task type in words."""
        return super().context() | {"task_type_words": words(TASK_TYPE_WORDS, self.task_type)}


TEMPLATES: tuple[type[Mail], ...] = (ApprovalRequest, AccessAlert, TaskStatusMail, OpsTaskMail)


@lru_cache
def environment() -> Environment:
    """The templates' Jinja2 environment (HTML autoescaped; an unknown name is an error)."""
    return Environment(
        loader=PackageLoader("intake.notifications", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(mail: Mail) -> Rendered:
    """The subject, text and HTML of one mail."""
    env = environment()
    context = mail.context()
    return Rendered(
        subject=mail.subject(),
        text=env.get_template(f"{mail.TEMPLATE}.txt").render(context),
        html=env.get_template(f"{mail.TEMPLATE}.html").render(context),
    )
