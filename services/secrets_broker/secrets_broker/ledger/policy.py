"""The information-disclosure decision: a pure function over intake's live view of the task, with no I/O.

`decide_disclosure` answers `POST /internal/disclosures`: may vendor_sync send these categories of
the client's information to this vendor, for this task, on this approval, now? It returns the
first failing rule id, in a fixed order, so a denial always names one rule and the tests can pin
that order. The task's rules come first and reuse the release's ids (the service must hold the
task, in progress, for an active client); then the approval's.

Only the approval's id is trusted from the caller: its status, expiry, task, recipient vendor and
categories are always read from the live view.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final
from uuid import UUID

from secrets_broker.release.policy import CALLER_NOT_ASSIGNEE, CLIENT_NOT_ACTIVE, TASK_NOT_IN_PROGRESS
from secrets_broker.task_auth import TaskAuth

# The approval is not one of the task's own (intake lists only those): another task's, or unknown.
APPROVAL_NOT_FOR_TASK: Final = "approval_not_for_task"
# Pending or rejected.
APPROVAL_NOT_APPROVED: Final = "approval_not_approved"
# Expired, whatever was decided before (intake reports `expired` past `expires_at`; checked here too).
APPROVAL_EXPIRED: Final = "approval_expired"
# The approval's `recipient.vendor_id` is another vendor, or absent (a recipient that is no vendor).
APPROVAL_NOT_FOR_VENDOR: Final = "approval_not_for_vendor"
# A category asked for is not among the approval's `information_categories` (or none was asked for).
CATEGORIES_NOT_APPROVED: Final = "categories_not_approved"

DISCLOSURE_RULES_IN_ORDER: Final[tuple[str, ...]] = (
    CALLER_NOT_ASSIGNEE,
    TASK_NOT_IN_PROGRESS,
    CLIENT_NOT_ACTIVE,
    APPROVAL_NOT_FOR_TASK,
    APPROVAL_NOT_APPROVED,
    APPROVAL_EXPIRED,
    APPROVAL_NOT_FOR_VENDOR,
    CATEGORIES_NOT_APPROVED,
)


def decide_disclosure(
    task_auth: TaskAuth,
    *,
    caller: str,
    approval_id: UUID,
    vendor_id: UUID,
    categories: Iterable[str],
    now: datetime,
) -> str | None:
    """The first failing rule of DISCLOSURE_RULES_IN_ORDER, or None when the disclosure may be recorded."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if task_auth.assignee is None or task_auth.assignee != caller:
        return CALLER_NOT_ASSIGNEE
    if task_auth.status != "in_progress":
        return TASK_NOT_IN_PROGRESS
    if task_auth.client_status != "active":
        return CLIENT_NOT_ACTIVE
    approval = task_auth.approval(approval_id)
    # Defence in depth: intake lists only the task's approvals, which share its client.
    if approval is None or approval.task_id != task_auth.task_id or approval.client_id != task_auth.client_id:
        return APPROVAL_NOT_FOR_TASK
    if approval.status in ("pending", "rejected"):
        return APPROVAL_NOT_APPROVED
    if approval.status != "approved" or now >= approval.expires_at:
        return APPROVAL_EXPIRED
    if approval.recipient.vendor_id is None or approval.recipient.vendor_id != vendor_id:
        return APPROVAL_NOT_FOR_VENDOR
    wanted = set(categories)
    # Nothing asked for is no disclosure to record (the request schema asks for one at least).
    if not wanted or not wanted <= approval.information_categories:
        return CATEGORIES_NOT_APPROVED
    return None
