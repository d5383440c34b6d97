"""Revocation that follows intake: tombstones, releases marked revoked, and tokens revoked at Vault.

Two steps, so that the database never waits on Vault and Vault is never skipped:

1. In the event's inbox transaction, under the task's advisory lock (the release path's key; the
   client's key, exclusively, for a client-wide change): write the tombstone, mark every covered
   `issued` release `revoked` (or `expired` when its token is past its TTL anyway), audit each as
   `release.revoked`, and queue its accessor in `pending_revocations`. From that commit on, unwrap
   and reveal refuse these releases (they check the row under the same lock), and no release
   decided on a covered view can be granted.
2. After the commit, revoke each queued accessor at Vault with the revoker role
   (`auth/token/revoke-accessor`) and mark the row done. A failure leaves the row open with a
   backoff; the worker's sweep retries it (and runs the API's own queued revocations as well).

Which releases a tombstone covers: those decided on a view of the task (or of any task of the
client) whose `updated_at` is at or before the tombstone's `effective_at`. For a task that is the
task's own `updated_at` after the change, carried in the event (`consumers.task_changed_at`):
intake moves it strictly forward on every change, so the view that ended is covered and any view
after a later change is not (a task back in `in_progress`, or reassigned back, keeps its new
releases), whatever intake's clock did between. A client-wide change has no task `updated_at` and
takes effect at the event's `occurred_at`, as do task events written before they carried it. A
reassignment covers only the releases of the technician who lost the task.

A narrowed scope writes no tombstone (it would refuse the task's other credentials too): it closes,
in step 1 the same way, the task's releases decided at or before the change whose credential the new
scope (carried in the event) no longer holds. Unwrap and reveal refuse such a release on intake's
live view (`out_of_scope`) from the moment intake commits the change.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Engine, Select, and_, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from mspkit.logging import get_logger
from secrets_broker.audit.service import Entry, append
from secrets_broker.common.types import utcnow
from secrets_broker.credentials.models import Credential
from secrets_broker.release.gate import credential_meta, lock_client, lock_task
from secrets_broker.release.models import PendingRevocation, Release, Tombstone
from secrets_broker.release.policy import in_scope
from secrets_broker.task_auth import Scope
from secrets_broker.vault.errors import VaultError
from secrets_broker.vault.gateway import VaultGateway

log = get_logger("secrets_broker.revocation")

ACTOR: Final = "svc:secrets_broker"
TASK_LEFT_IN_PROGRESS: Final = "task_left_in_progress"
TASK_REASSIGNED: Final = "task_reassigned"
CLIENT_LEFT_ACTIVE: Final = "client_left_active"
TASK_SCOPE_NARROWED: Final = "task_scope_narrowed"


def _bury(
    session: Session,
    covered: Select[Any],
    *,
    reason: str,
    effective_at: datetime,
    event_id: uuid.UUID | None,
    task_id: uuid.UUID | None = None,
    client_id: uuid.UUID | None = None,
    assignee: str | None = None,
) -> list[uuid.UUID]:
    """Write a tombstone and close the `issued` releases it covers; returns the queued revocations."""
    tombstone = Tombstone(
        id=uuid.uuid4(),
        task_id=task_id,
        client_id=client_id,
        reason=reason,
        created_at=utcnow(),
        effective_at=effective_at,
        assignee=assignee,
        event_id=event_id,
    )
    session.add(tombstone)
    # A release without a recorded view (made before migration 0003) is covered: fail closed.
    decided_before = or_(
        col(Release.auth_updated_at).is_(None), col(Release.auth_updated_at) <= effective_at
    )
    releases = session.execute(
        covered.where(col(Release.status) == "issued", decided_before)
        .order_by(col(Release.created_at))
        .with_for_update()
    ).scalars()
    return _close(session, releases, reason=reason, event_id=event_id, now=tombstone.created_at)


def _close(
    session: Session, releases: Iterable[Release], *, reason: str, event_id: uuid.UUID | None, now: datetime
) -> list[uuid.UUID]:
    """Close these `issued` releases (revoked, or expired when past their TTL), audit and queue each revocation."""
    queued: list[uuid.UUID] = []
    for release in releases:
        release.updated_at = now
        session.add(release)
        if release.expires_at <= now:
            # Vault has forgotten the token already; nothing to revoke.
            release.status = "expired"
            continue
        release.status = "revoked"
        release.closed_reason = reason
        # A third party's release holds no Vault token (only its reveal code): nothing to revoke there.
        if release.wrap_accessor is not None:
            pending = PendingRevocation(
                id=uuid.uuid4(),
                accessor=release.wrap_accessor,
                release_id=release.id,
                reason=reason,
                created_at=now,
            )
            session.add(pending)
            queued.append(pending.id)
        details = {"reason": reason, "event_id": str(event_id) if event_id else None}
        append(session, Entry.of_release(release, action="release.revoked", actor=ACTOR, details=details, at=now))
    session.flush()
    return queued


def tombstone_task(
    session: Session,
    *,
    task_id: uuid.UUID,
    client_id: uuid.UUID | None,
    reason: str,
    effective_at: datetime,
    event_id: uuid.UUID | None,
    assignee: str | None = None,
) -> list[uuid.UUID]:
    """Tombstone a task (or one assignee's hold on it) and close its covered releases; returns queued ids."""
    lock_task(session, task_id)
    covered = select(Release).where(col(Release.task_id) == task_id)
    if assignee is not None:
        covered = covered.where(col(Release.technician) == assignee)
    return _bury(
        session,
        covered,
        task_id=task_id,
        client_id=client_id,
        reason=reason,
        effective_at=effective_at,
        event_id=event_id,
        assignee=assignee,
    )


def tombstone_client(
    session: Session, *, client_id: uuid.UUID, effective_at: datetime, event_id: uuid.UUID | None
) -> list[uuid.UUID]:
    """Tombstone a client that left `active` and close all its covered releases; returns queued ids."""
    # Exclusive: releases hold this key shared from their decision to their commit.
    lock_client(session, client_id)
    covered = select(Release).where(col(Release.client_id) == client_id)
    return _bury(
        session, covered, client_id=client_id, reason=CLIENT_LEFT_ACTIVE, effective_at=effective_at, event_id=event_id
    )


def revoke_out_of_scope(
    session: Session, *, task_id: uuid.UUID, scope: Scope, effective_at: datetime, event_id: uuid.UUID | None
) -> list[uuid.UUID]:
    """Close the task's live releases whose credential `scope` no longer holds; returns queued ids.

    Only releases decided on views at or before the change (`effective_at`, the task's `updated_at`
    after it) are judged: one decided later was decided on the new scope, or a later one. No tombstone
    is written: unwrap and reveal re-check the scope on intake's live view (`out_of_scope`), and a
    tombstone would refuse the task's in-scope credentials too.
    """
    lock_task(session, task_id)
    rows = session.execute(
        select(Release, Credential)
        .join(Credential, col(Credential.id) == col(Release.credential_id))
        .where(
            col(Release.task_id) == task_id,
            col(Release.status) == "issued",
            or_(col(Release.auth_updated_at).is_(None), col(Release.auth_updated_at) <= effective_at),
        )
        .order_by(col(Release.created_at))
        .with_for_update(of=Release)
    ).all()
    fallen = [release for release, credential in rows if not _still_in_scope(scope, release, credential)]
    return _close(session, fallen, reason=TASK_SCOPE_NARROWED, event_id=event_id, now=utcnow())


def _still_in_scope(scope: Scope, release: Release, credential: Credential) -> bool:
    if release.recipient_type == "service":
        # A provisioning job's release was decided on the task's vendor accounts (`service_task_rule`:
        # the credential's account is the release's), not on the credential's own scope.
        return credential.vendor_account_id is not None and credential.vendor_account_id in scope.vendor_account_ids
    return in_scope(scope, credential_meta(credential))


def lift_client(session: Session, *, client_id: uuid.UUID, effective_at: datetime) -> int:
    """The client is active again: its earlier tombstones stop refusing service releases."""
    lock_client(session, client_id)
    result = session.execute(
        update(Tombstone)
        .where(
            and_(
                col(Tombstone.client_id) == client_id,
                col(Tombstone.task_id).is_(None),
                col(Tombstone.lifted_at).is_(None),
                or_(col(Tombstone.effective_at).is_(None), col(Tombstone.effective_at) < effective_at),
            )
        )
        .values(lifted_at=effective_at)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- carrying revocations out at Vault --------------------------------------------------------------


def _backoff(attempts: int, cap_s: float) -> timedelta:
    return timedelta(seconds=min(cap_s, 2 ** min(attempts, 10)) * random.uniform(0.5, 1.0))


def revoke_one(
    engine: Engine, *, gateway: VaultGateway, pending_id: uuid.UUID, backoff_max_s: float = 120.0
) -> bool:
    """Revoke one queued accessor at Vault and mark it done; True when done (now or before)."""
    with Session(engine) as session, session.begin():
        # SKIP LOCKED: the event's own call and the sweep may reach the same row at once.
        row = session.execute(
            select(PendingRevocation)
            .where(col(PendingRevocation.id) == pending_id)
            .with_for_update(skip_locked=True)
        ).scalar_one_or_none()
        if row is None:
            return False
        if row.done_at is not None:
            return True
        now = utcnow()
        try:
            revoked = gateway.revoke_accessor(row.accessor)
        except VaultError as exc:
            row.attempts += 1
            row.last_error = type(exc).__name__
            row.next_attempt_at = now + _backoff(row.attempts, backoff_max_s)
            session.add(row)
            log.warning(
                "revocation_failed", pending_revocation_id=str(row.id), attempts=row.attempts, error=row.last_error
            )
            return False
        row.attempts += 1
        row.done_at = now
        row.last_error = None if revoked else "token_already_gone"
        session.add(row)
        if row.release_id is None:
            # A token the API minted but never handed out (its re-check failed): no release row
            # recorded this revocation yet, so the audit gets it now.
            append(
                session,
                Entry(
                    action="release.revoked",
                    actor=ACTOR,
                    details={"reason": row.reason, "pending_revocation_id": str(row.id), "was_live": revoked},
                    at=now,
                ),
            )
    log.info("token_revoked", pending_revocation_id=str(pending_id), was_live=revoked)
    return True


def carry_out(
    engine: Engine, *, gateway: VaultGateway, pending_ids: Iterable[uuid.UUID], backoff_max_s: float
) -> int:
    """Revoke these queued accessors now (best effort: failures stay queued); returns how many are done."""
    done = 0
    for pending_id in pending_ids:
        try:
            done += revoke_one(engine, gateway=gateway, pending_id=pending_id, backoff_max_s=backoff_max_s)
        except SQLAlchemyError as exc:
            log.warning("revocation_not_recorded", pending_revocation_id=str(pending_id), error=type(exc).__name__)
    return done


def due_revocations(engine: Engine, *, limit: int) -> list[uuid.UUID]:
    """Open revocations whose backoff has passed, oldest first."""
    with Session(engine) as session:
        return list(
            session.execute(
                select(col(PendingRevocation.id))
                .where(col(PendingRevocation.done_at).is_(None), col(PendingRevocation.next_attempt_at) <= utcnow())
                .order_by(col(PendingRevocation.created_at))
                .limit(limit)
            ).scalars()
        )


def sweep(engine: Engine, *, gateway: VaultGateway, batch: int = 100, backoff_max_s: float = 120.0) -> int:
    """One sweep over the open revocations; returns how many it finished."""
    pending_ids = due_revocations(engine, limit=batch)
    return carry_out(engine, gateway=gateway, pending_ids=pending_ids, backoff_max_s=backoff_max_s)
