"""What stands between a request and a token: locks, tombstones, the quota count and the decision.

Shared by the two release flows, rotation (decided like a release), unwrap and reveal (which
re-check a release) and the worker's revocation (which takes the same locks). Nothing here commits:
the use case that called it does.

Locks. A release takes the task's advisory lock, so the quota count and the tombstone check cannot
race another release of the same task or the worker's revocation of the task, and holds the
client's lock shared, so the worker's client-wide revocation (which takes it exclusively) waits for
the release to commit (and then revokes it) or runs first (and then the release reads the closed
client). Both are transaction-scoped: they end at COMMIT or ROLLBACK.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal

from sqlalchemy import and_, bindparam, func, or_, select, text
from sqlmodel import Session, col

from mspkit.db import advisory_xact_lock
from mspkit.errors import NotFound
from mspkit.outbox import write_event
from secrets_broker.audit.service import Entry, audited_commit
from secrets_broker.credentials.models import Credential
from secrets_broker.db import KIT
from secrets_broker.release.models import Release, Tombstone
from secrets_broker.release.policy import (
    CALLER_NOT_ASSIGNEE,
    CLIENT_NOT_ACTIVE,
    TASK_NOT_IN_PROGRESS,
    Caller,
    CredentialMeta,
    Decision,
    decide,
    recheck,
)
from secrets_broker.task_auth import TaskAuth

if TYPE_CHECKING:
    # For annotations only: the worker takes this module's locks without loading the API's
    # authentication or intake client.
    from mspkit.auth import Principal
    from secrets_broker.intake_client import IntakeClient
    from secrets_broker.settings import Settings
    from secrets_broker.vault.gateway import VaultGateway

TASK_LOCK_NAMESPACE: Final = "secrets_broker.task"
CLIENT_LOCK_NAMESPACE: Final = "secrets_broker.client"


# --- identities -----------------------------------------------------------------------------------


def fingerprint(key: bytes, token: str) -> str:
    """HMAC-SHA256 of a wrapping token: recognisable later, useless to anyone holding the table."""
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def credential_meta(credential: Credential) -> CredentialMeta:
    """The policy's view of a credential row."""
    return CredentialMeta(
        id=credential.id,
        client_id=credential.client_id,
        vendor_account_id=credential.vendor_account_id,
        kind=credential.kind,  # type: ignore[arg-type]
        owner=credential.owner,  # type: ignore[arg-type]
        category=credential.category,
        status=credential.status,
    )


def caller_of(user: Principal) -> Caller:
    """The policy's view of the verified caller."""
    return Caller(sub=user.sub, role=user.role, client_id=user.client_id)


def active_credential(session: Session, credential_id: uuid.UUID) -> Credential:
    """An active credential, or 404 (a pending row has no secret yet)."""
    credential = session.get(Credential, credential_id)
    if credential is None or credential.status != "active":
        raise NotFound("credential not found")
    return credential


# --- locks ------------------------------------------------------------------------------------------


def lock_task(session: Session, task_id: uuid.UUID) -> None:
    """Serialise everything that releases or revokes one task until the transaction ends."""
    advisory_xact_lock(session, TASK_LOCK_NAMESPACE, str(task_id))


def lock_client(session: Session, client_id: uuid.UUID) -> None:
    """Hold the client's key exclusively: every release of the client in flight finishes first."""
    advisory_xact_lock(session, CLIENT_LOCK_NAMESPACE, str(client_id))


def lock_task_and_client(session: Session, task_id: uuid.UUID, client_id: uuid.UUID) -> None:
    """Lock the task (as `lock_task`) and hold the client's lock shared, in one round trip.

    Releases of different tasks of one client do not block each other; the worker's `lock_client`
    waits for all of them (and they wait for it).
    """
    session.execute(
        text(
            "SELECT pg_advisory_xact_lock(hashtextextended(:t, 0)), "
            "pg_advisory_xact_lock_shared(hashtextextended(:c, 0))"
        ),
        {"t": f"{TASK_LOCK_NAMESPACE}:{task_id}", "c": f"{CLIENT_LOCK_NAMESPACE}:{client_id}"},
    )


# --- quota and tombstones ---------------------------------------------------------------------------


# The two statements every release runs are built once: building and cache-keying a select costs
# more CPU than running it (docs/benchmarks.md, secrets_broker: 1.6-1.9 ms of CPU per release built
# per call, 0.5-0.7 ms built once). So are the audit chain's head read and insert.
_RELEASES = Release.__table__  # type: ignore[attr-defined]
_TOMBSTONES = Tombstone.__table__  # type: ignore[attr-defined]
_RELEASES_SINCE = (
    select(func.count())
    .select_from(_RELEASES)
    .where(_RELEASES.c.task_id == bindparam("task_id"), _RELEASES.c.created_at > bindparam("since"))
)
# A tombstone covers views whose `updated_at` is at or before the change it records (a NULL
# `effective_at` covers every view).
_COVERING_TOMBSTONES = select(_TOMBSTONES.c.task_id, _TOMBSTONES.c.assignee).where(
    or_(
        _TOMBSTONES.c.task_id == bindparam("task_id"),
        and_(_TOMBSTONES.c.task_id.is_(None), _TOMBSTONES.c.client_id == bindparam("client_id")),
    ),
    or_(_TOMBSTONES.c.effective_at.is_(None), _TOMBSTONES.c.effective_at >= bindparam("updated_at")),
)


def releases_last_hour(session: Session, task_id: uuid.UUID, now: datetime) -> int:
    """Releases of the task in the hour before `now` (whatever became of them since)."""
    return int(session.execute(_RELEASES_SINCE, {"task_id": task_id, "since": now - timedelta(hours=1)}).scalar_one())


def tombstone_rule(session: Session, view: TaskAuth) -> str | None:
    """The rule a tombstone imposes on this authorization view, or None.

    A stale view cannot release (or unwrap) after the worker learnt of the change, while a task
    that intake moved on since (back to `in_progress`, or reassigned back) is judged on its live
    view alone.
    """
    rows = session.execute(
        _COVERING_TOMBSTONES, {"task_id": view.task_id, "client_id": view.client_id, "updated_at": view.updated_at}
    ).all()
    if any(row.task_id is None for row in rows):
        return CLIENT_NOT_ACTIVE
    if any(row.assignee is None for row in rows):
        return TASK_NOT_IN_PROGRESS
    # A reassignment ended only the named technician's authority.
    if any(row.assignee == view.assignee for row in rows):
        return CALLER_NOT_ASSIGNEE
    return None


def live_rule(
    session: Session, release: Release, credential: Credential, intake: IntakeClient, now: datetime
) -> str | None:
    """The rule an issued release now breaks on intake's live view or the tombstones, or None.

    Unwrap and reveal ask this before the plaintext leaves; a task intake no longer knows is not in progress.
    """
    try:
        view = intake.authorization(release.person_task_id)
    except NotFound:
        return TASK_NOT_IN_PROGRESS
    decision = recheck(view, credential_meta(credential), release.technician, release.approval_id, now)
    return decision.rule or tombstone_rule(session, view)


def client_tombstoned(session: Session, client_id: uuid.UUID) -> bool:
    """Whether the broker learnt that the client left `active` (and not that it came back)."""
    return (
        session.execute(
            select(col(Tombstone.id))
            .where(
                col(Tombstone.client_id) == client_id,
                col(Tombstone.task_id).is_(None),
                col(Tombstone.lifted_at).is_(None),
            )
            .limit(1)
        ).first()
        is not None
    )


# --- decisions ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ask:
    """One request for a credential: who asks, for which task, why, and for whom (an approval's third party)."""

    user: Principal
    credential: Credential
    task_id: uuid.UUID
    reason: str
    approval_id: uuid.UUID | None
    operation: Literal["release", "rotate"]
    now: datetime


@dataclass(frozen=True)
class TaskDecision:
    """What the gate found: intake's live view and the decision made on it."""

    task_auth: TaskAuth
    decision: Decision


def check(session: Session, ask: Ask, *, intake: IntakeClient, settings: Settings) -> TaskDecision:
    """Read intake live, count the quota and decide; a tombstone covering the view overrides an allow.

    The caller holds the task's lock and the client's shared lock (`lock_task_and_client`), so
    nothing changes the count or the tombstones until it commits.
    """
    task_auth = intake.authorization(ask.task_id)
    # intake checked the view is of `task_id` (IntakeClient.authorization), so the count is the task's.
    decision = decide(
        task_auth,
        credential_meta(ask.credential),
        caller_of(ask.user),
        ask.approval_id,
        releases_last_hour(session, ask.task_id, ask.now),
        ask.now,
        reason=ask.reason,
        quota_per_hour=settings.release_quota_per_hour,
    )
    if decision.allowed:
        rule = tombstone_rule(session, task_auth)
        if rule is not None:
            decision = Decision.deny(rule)
    return TaskDecision(task_auth=task_auth, decision=decision)


def refuse(session: Session, ask: Ask, rule: str, *, gateway: VaultGateway, settings: Settings) -> None:
    """Audit a refused ask and commit; a release's refusal also writes `release.denied`, naming its audit entry."""
    credential = ask.credential

    def denied_event(audit_index: int) -> None:
        # The PSA's evidence note cites the entry: the event is written once the chain gave it its index.
        write_event(
            session,
            KIT,
            type="release.denied",
            client_id=credential.client_id,
            aggregate_id=ask.task_id,
            data={
                "task_id": str(ask.task_id),
                "credential_id": str(credential.id),
                "rule": rule,
                "actor": ask.user.sub,
                "audit_index": audit_index,
            },
        )

    entry = Entry(
        action="release.denied",
        actor=ask.user.sub,
        client_id=credential.client_id,
        task_id=ask.task_id,
        credential_id=credential.id,
        rule=rule,
        details={
            "operation": ask.operation,
            "reason": ask.reason,
            "approval_id": str(ask.approval_id) if ask.approval_id else None,
        },
        at=ask.now,
    )
    before_commit = denied_event if ask.operation == "release" else None
    audited_commit(session, entry, gateway=gateway, settings=settings, before_commit=before_commit)


def release_event_data(release: Release, **data: str) -> dict[str, str]:
    """The `data` of an event about `release`: its ids, and `data` (statuses and subjects, never secrets)."""
    return {
        "release_id": str(release.id),
        "task_id": str(release.task_id),
        "credential_id": str(release.credential_id),
        **data,
    }
