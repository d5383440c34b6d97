"""The release decision: pure functions over intake's live authorization view, with no I/O.

`decide` answers `POST /v1/releases` (and rotation); `recheck` answers unwrap and reveal, which ask
whether a release decided earlier still stands; `decide_service` answers
`POST /internal/service-releases`, and `service_task_rule` is its check of a provisioning task (also
asked when vendor_sync stores a credential it created for a task). Each returns the first failing
rule id, in a fixed order, so a denial always names one rule and the tests can pin that order.

The service resolves the credential before calling any of them and answers 404 for a missing,
other-tenant or non-`active` credential (a `pending` row has no secret yet), or one of a client the
technician may not see (`need_to_know.py`), so `decide` never sees the credential's `status` or the
staff directory as a rule: the eight rule ids of the contract stay exactly eight.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final
from uuid import UUID

from pydantic import model_validator

from mspkit.vocabulary import CredentialKind, CredentialOwner
from secrets_broker.task_auth import Approval, Frozen, Scope, TaskAuth

# --- rule ids ---------------------------------------------------------------------------------

CALLER_NOT_ASSIGNEE: Final = "caller_not_assignee"
TASK_NOT_IN_PROGRESS: Final = "task_not_in_progress"
CLIENT_MISMATCH: Final = "client_mismatch"
CLIENT_NOT_ACTIVE: Final = "client_not_active"
OUT_OF_SCOPE: Final = "out_of_scope"
REASON_TOO_SHORT: Final = "reason_too_short"
THIRD_PARTY_NOT_APPROVED: Final = "third_party_not_approved"
QUOTA_EXCEEDED: Final = "quota_exceeded"

RULES_IN_ORDER: Final[tuple[str, ...]] = (
    CALLER_NOT_ASSIGNEE,
    TASK_NOT_IN_PROGRESS,
    CLIENT_MISMATCH,
    CLIENT_NOT_ACTIVE,
    OUT_OF_SCOPE,
    REASON_TOO_SHORT,
    THIRD_PARTY_NOT_APPROVED,
    QUOTA_EXCEEDED,
)

# Not in the contract (which only names the three conditions); chosen here and used in the
# `service_release.denied` audit entry and the 403 body of `/internal/service-releases`.
NOT_API_KEY: Final = "not_api_key"
VENDOR_ACCOUNT_MISMATCH: Final = "vendor_account_mismatch"

SERVICE_RULES_IN_ORDER: Final[tuple[str, ...]] = (NOT_API_KEY, VENDOR_ACCOUNT_MISMATCH, CLIENT_NOT_ACTIVE)

# A service release (or a credential vendor_sync stores) that names a provisioning task: the task
# must be live in vendor_sync's hands, of the credential's client, and name the vendor account in
# its scope. The release's ids, reused: the same words mean the same thing to the one who reads them.
SERVICE_TASK_RULES_IN_ORDER: Final[tuple[str, ...]] = (
    CALLER_NOT_ASSIGNEE,
    TASK_NOT_IN_PROGRESS,
    CLIENT_MISMATCH,
    CLIENT_NOT_ACTIVE,
    OUT_OF_SCOPE,
)
# With a task, `decide_service` checks the credential first, then the task.
SERVICE_WITH_TASK_RULES_IN_ORDER: Final[tuple[str, ...]] = (
    NOT_API_KEY,
    VENDOR_ACCOUNT_MISMATCH,
    *SERVICE_TASK_RULES_IN_ORDER,
)

# Not a rule of `decide` either: a technician asking for a credential of a client outside their
# staff row's `client_ids` (or with no active staff row) is answered as for a missing credential
# (404, DESIGN.md § staff directory), and this id names the refusal in the audit entry only.
NEED_TO_KNOW: Final = "need_to_know"

MIN_REASON_LENGTH: Final = 10
DEFAULT_QUOTA_PER_HOUR: Final = 10
CREDENTIALS_CATEGORY: Final = "credentials"


RECHECK_RULES_IN_ORDER: Final[tuple[str, ...]] = tuple(
    rule for rule in RULES_IN_ORDER if rule not in {REASON_TOO_SHORT, QUOTA_EXCEEDED}
)


class CredentialMeta(Frozen):
    """A credential's metadata row (never the secret)."""

    id: UUID
    client_id: UUID
    vendor_account_id: UUID | None
    kind: CredentialKind
    owner: CredentialOwner
    category: str
    status: str


class Caller(Frozen):
    """The verified identity behind the request."""

    sub: str
    role: str
    client_id: UUID | None = None


class Decision(Frozen):
    """The outcome: allowed, or the id of the first failing rule."""

    allowed: bool
    rule: str | None = None

    @model_validator(mode="after")
    def _rule_iff_denied(self) -> Decision:
        if self.allowed == (self.rule is not None):
            raise ValueError("a denial names exactly one rule; an allow names none")
        return self

    @classmethod
    def allow(cls) -> Decision:
        """An allow."""
        return cls(allowed=True)

    @classmethod
    def deny(cls, rule: str) -> Decision:
        """A denial naming its rule."""
        return cls(allowed=False, rule=rule)


def in_scope(scope: Scope, credential: CredentialMeta) -> bool:
    """Whether the scope names the credential, or its vendor account together with its category."""
    if credential.id in scope.credential_ids:
        return True
    # A category alone never suffices: it would open every client credential of that category.
    return (
        credential.vendor_account_id is not None
        and credential.vendor_account_id in scope.vendor_account_ids
        and credential.category in scope.credential_categories
    )


def approval_permits(task_auth: TaskAuth, approval: Approval, credential: CredentialMeta, now: datetime) -> bool:
    """Whether a live approval lets this credential go to its recipient now."""
    return (
        approval.status == "approved"
        and now < approval.expires_at
        and approval.task_id == task_auth.task_id
        # Defence in depth: intake only lists the task's own approvals, which share its client.
        and approval.client_id == task_auth.client_id
        and CREDENTIALS_CATEGORY in approval.information_categories
        and credential.id in approval.credential_ids
    )


def _standing_rule(task_auth: TaskAuth, credential: CredentialMeta, technician: str) -> str | None:
    # The rules about who holds the task and what it may touch, in the contract's order.
    if task_auth.assignee is None or technician != task_auth.assignee:
        return CALLER_NOT_ASSIGNEE
    if task_auth.status != "in_progress":
        return TASK_NOT_IN_PROGRESS
    if credential.client_id != task_auth.client_id:
        return CLIENT_MISMATCH
    if task_auth.client_status != "active":
        return CLIENT_NOT_ACTIVE
    if not in_scope(task_auth.scope, credential):
        return OUT_OF_SCOPE
    return None


def _approval_rule(
    task_auth: TaskAuth, credential: CredentialMeta, approval_id: UUID | None, now: datetime
) -> str | None:
    # Only the approval's id is trusted: its state is always read from the live view, so a copy
    # fetched earlier (or supplied by the caller) cannot carry a stale `approved`.
    if approval_id is None:
        return None
    live = task_auth.approval(approval_id)
    if live is None or not approval_permits(task_auth, live, credential, now):
        return THIRD_PARTY_NOT_APPROVED
    return None


def _aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")


def decide(
    task_auth: TaskAuth,
    credential: CredentialMeta,
    caller: Caller,
    approval: UUID | Approval | None,
    releases_last_hour: int,
    now: datetime,
    *,
    reason: str,
    quota_per_hour: int = DEFAULT_QUOTA_PER_HOUR,
) -> Decision:
    """Decide a release to a person; the first failing rule of RULES_IN_ORDER is returned."""
    _aware(now)
    approval_id = approval.id if isinstance(approval, Approval) else approval
    # Only a technician can be an assignee; any other role is refused by the first rule.
    technician = caller.sub if caller.role == "technician" else None
    rule = (
        (CALLER_NOT_ASSIGNEE if technician is None else _standing_rule(task_auth, credential, technician))
        or (REASON_TOO_SHORT if len(reason.strip()) < MIN_REASON_LENGTH else None)
        or _approval_rule(task_auth, credential, approval_id, now)
        or (QUOTA_EXCEEDED if releases_last_hour >= quota_per_hour else None)
    )
    return Decision.allow() if rule is None else Decision.deny(rule)


def recheck(
    task_auth: TaskAuth, credential: CredentialMeta, technician: str, approval_id: UUID | None, now: datetime
) -> Decision:
    """Whether a release still stands on the live view; the first failing rule of RECHECK_RULES_IN_ORDER.

    The release's own rules minus the two that belong to the request (its reason and the quota,
    both judged when it was granted): `technician` must still be the assignee of an in-progress
    task of an active client whose scope holds the credential, and a third party's approval must
    still permit it.
    """
    _aware(now)
    rule = _standing_rule(task_auth, credential, technician) or _approval_rule(task_auth, credential, approval_id, now)
    return Decision.allow() if rule is None else Decision.deny(rule)


def service_task_rule(
    task_auth: TaskAuth, *, service: str, client_id: UUID, vendor_account_id: UUID | None
) -> str | None:
    """The first failing rule of SERVICE_TASK_RULES_IN_ORDER for `service` acting on a task, or None.

    The task must be assigned to `service` (provisioning claims it), in progress, of `client_id`
    (the credential's client), of an active client, and its scope must name `vendor_account_id`.
    """
    if task_auth.assignee is None or task_auth.assignee != service:
        return CALLER_NOT_ASSIGNEE
    if task_auth.status != "in_progress":
        return TASK_NOT_IN_PROGRESS
    if task_auth.client_id != client_id:
        return CLIENT_MISMATCH
    if task_auth.client_status != "active":
        return CLIENT_NOT_ACTIVE
    if vendor_account_id is None or vendor_account_id not in task_auth.scope.vendor_account_ids:
        return OUT_OF_SCOPE
    return None


def decide_service(
    credential: CredentialMeta,
    vendor_account_id: UUID,
    client_status: str | None,
    task_auth: TaskAuth | None = None,
    *,
    service: str = "svc:vendor_sync",
) -> Decision:
    """Decide a release to vendor_sync; the first failing rule of SERVICE_RULES_IN_ORDER is returned.

    `client_status` is the client's status as read live from intake (None: intake does not know it).
    With `task_auth` (a provisioning job names its task) the task's live view decides instead, in
    the order of SERVICE_WITH_TASK_RULES_IN_ORDER; its `client_status` is the client's.
    """
    if credential.kind != "api_key":
        return Decision.deny(NOT_API_KEY)
    if credential.vendor_account_id is None or credential.vendor_account_id != vendor_account_id:
        return Decision.deny(VENDOR_ACCOUNT_MISMATCH)
    if task_auth is not None:
        rule = service_task_rule(
            task_auth, service=service, client_id=credential.client_id, vendor_account_id=vendor_account_id
        )
        return Decision.allow() if rule is None else Decision.deny(rule)
    if client_status != "active":
        return Decision.deny(CLIENT_NOT_ACTIVE)
    return Decision.allow()
