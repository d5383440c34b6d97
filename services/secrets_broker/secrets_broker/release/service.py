"""Releasing credentials: decide on intake's live view, mint a wrapped token, record, then return.

Order of one release (all in the request's transaction unless said otherwise):

1. `pg_advisory_xact_lock` on the task, so the quota count and the tombstone check cannot race
   another release of the same task or the worker's revocation of the task; and the client's lock
   shared, so the worker's client-wide revocation waits for this release to commit (and then
   revokes it) or runs first (and then this release reads the closed client).
2. Read intake's authorization live (no cache; unreachable, slow, malformed or 5xx → 503), count
   the task's releases of the last hour, and `decide`. A tombstone covering that view (see
   `Tombstone`) overrides an allow. A denial is audited (`release.denied`, with its rule), put in
   the outbox and committed before the 403.
3. Mint the wrapping token (120 s for people; longer, a setting, for a mailed third-party link).
4. Re-read intake. If the task's status, assignee or `updated_at` moved, the release is denied and
   the minted token's accessor goes to `pending_revocations` (with a `release.revoke_requested`
   outbox event carrying only the row id): the API holds no revoke right, the broker worker does.
5. Write the release row (an HMAC fingerprint of the token, never the token; the view's
   `updated_at` it was decided on and when the re-check was sent), the ledger row for
   a third party, the outbox event and the audit entry; for a third party, mail the link; then
   COMMIT. Only then is the token returned. Any failure from here on returns no token and records
   the accessor for revocation in a separate transaction (best effort: if the database is gone
   too, the token dies at its TTL).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, NoReturn, cast

from sqlalchemy import Engine, Select, and_, func, or_, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from mspkit.auth import Principal
from mspkit.db import advisory_xact_lock
from mspkit.errors import AppError, Conflict, NotFound, Unavailable
from mspkit.logging import get_logger
from mspkit.outbox import make_envelope, write_event
from secrets_broker.audit import service as audit
from secrets_broker.common.types import utcnow
from secrets_broker.credentials.models import Credential
from secrets_broker.db import KIT, SCHEMA
from secrets_broker.errors import ReleaseDenied
from secrets_broker.intake_client import IntakeClient
from secrets_broker.ledger import service as ledger
from secrets_broker.ledger.models import Disclosure
from secrets_broker.mail import Mailer, reveal_mail_body
from secrets_broker.release.models import PendingRevocation, Release, Tombstone
from secrets_broker.release.policy import (
    CALLER_NOT_ASSIGNEE,
    CLIENT_NOT_ACTIVE,
    TASK_NOT_IN_PROGRESS,
    Caller,
    CredentialMeta,
    Decision,
    TaskAuth,
    decide,
    decide_service,
)
from secrets_broker.release.schemas import ReleaseCreate, ReleaseIssued, ServiceReleaseCreate, ServiceReleaseIssued
from secrets_broker.settings import Settings
from secrets_broker.vault.gateway import VaultGateway, WrapInfo, credential_path

log = get_logger("secrets_broker.release")

TASK_LOCK_NAMESPACE = "secrets_broker.task"
CLIENT_LOCK_NAMESPACE = "secrets_broker.client"


# --- small pieces -------------------------------------------------------------------------------


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


_CREDENTIAL_COLUMNS: Final = tuple(column.key for column in Credential.__table__.columns)  # type: ignore[attr-defined]
_ACTIVE_CREDENTIAL: Final = text(
    f"SELECT {', '.join(_CREDENTIAL_COLUMNS)} FROM {SCHEMA}.credentials WHERE id = :id AND status = 'active'"  # noqa: S608 - schema and model column names only
)


def credential_for_release(session: Session, credential_id: uuid.UUID) -> Credential:
    """`active_credential` for the release path: a detached copy of the row, read with prebuilt SQL.

    The release only reads the credential, so it skips the ORM's identity map and query building.
    """
    row = session.execute(_ACTIVE_CREDENTIAL, {"id": credential_id}).first()
    if row is None:
        raise NotFound("credential not found")
    return Credential(**row._asdict())


_LOCKED_CREDENTIAL: Final = text(
    f"""
    SELECT {", ".join(_CREDENTIAL_COLUMNS)},
           pg_advisory_xact_lock(hashtextextended(:t, 0)) AS task_locked,
           pg_advisory_xact_lock_shared(hashtextextended(:cns || ':' || client_id::text, 0)) AS client_locked
      FROM {SCHEMA}.credentials WHERE id = :id AND status = 'active'
    """  # noqa: S608 - only the schema and the model's column names are interpolated
)


def credential_for_release_locked(session: Session, credential_id: uuid.UUID, task_id: uuid.UUID) -> Credential:
    """`credential_for_release` and `lock_task_and_client` in one round trip.

    The locks are taken only when the active credential exists (else 404, as before, unlocked), with
    the same keys and in the same order as `lock_task_and_client`. The row is read from the
    statement's snapshot, taken before the lock wait, as when it was read in a statement before it.
    """
    row = session.execute(
        _LOCKED_CREDENTIAL,
        {"id": credential_id, "t": f"{TASK_LOCK_NAMESPACE}:{task_id}", "cns": CLIENT_LOCK_NAMESPACE},
    ).first()
    if row is None:
        raise NotFound("credential not found")
    values = row._mapping
    return Credential(**{column: values[column] for column in _CREDENTIAL_COLUMNS})


def lock_task(session: Session, task_id: uuid.UUID) -> None:
    """Serialise releases (and rotations) of one task until the transaction ends."""
    advisory_xact_lock(session, TASK_LOCK_NAMESPACE, str(task_id))


def releases_last_hour(session: Session, task_id: uuid.UUID, now: datetime) -> int:
    """Releases of the task in the hour before `now` (whatever became of them since)."""
    return int(
        session.execute(
            select(func.count())
            .select_from(Release)
            .where(col(Release.task_id) == task_id, col(Release.created_at) > now - timedelta(hours=1))
        ).scalar_one()
    )


def lock_task_and_client(session: Session, task_id: uuid.UUID, client_id: uuid.UUID) -> None:
    """Lock the task (as `lock_task`) and hold the client's lock shared, in one round trip.

    Releases of different tasks of one client do not block each other; the worker takes the
    client's key exclusively before it tombstones the client and revokes its releases, so it waits
    for every release of the client in flight (and they wait for it).
    """
    session.execute(
        text(
            "SELECT pg_advisory_xact_lock(hashtextextended(:t, 0)), "
            "pg_advisory_xact_lock_shared(hashtextextended(:c, 0))"
        ),
        {"t": f"{TASK_LOCK_NAMESPACE}:{task_id}", "c": f"{CLIENT_LOCK_NAMESPACE}:{client_id}"},
    )


_RELEASE_COLUMNS: Final = tuple(column.key for column in Release.__table__.columns)  # type: ignore[attr-defined]
_RECORD_RELEASE: Final = text(
    f"""
    WITH new_release AS (
        INSERT INTO {SCHEMA}.releases ({", ".join(_RELEASE_COLUMNS)})
        VALUES ({", ".join(":" + column for column in _RELEASE_COLUMNS)})
    ), new_event AS (
        INSERT INTO {SCHEMA}.outbox (event_id, type, envelope)
        VALUES (:event_id, :event_type, CAST(:envelope AS jsonb))
    )
    SELECT pg_advisory_xact_lock(hashtextextended(:chain_key, 0))
    """  # noqa: S608 - only the schema and the model's column names are interpolated
)


def _tombstones_covering(view: TaskAuth) -> Select[tuple[uuid.UUID | None, str | None]]:
    return select(col(Tombstone.task_id), col(Tombstone.assignee)).where(
        or_(
            col(Tombstone.task_id) == view.task_id,
            and_(col(Tombstone.task_id).is_(None), col(Tombstone.client_id) == view.client_id),
        ),
        or_(col(Tombstone.effective_at).is_(None), col(Tombstone.effective_at) >= view.updated_at),
    )


def _rule_of_tombstones(rows: Sequence[Any], view: TaskAuth) -> str | None:
    if any(row.task_id is None for row in rows):
        return CLIENT_NOT_ACTIVE
    if any(row.assignee is None for row in rows):
        return TASK_NOT_IN_PROGRESS
    # A reassignment ended only the named technician's authority.
    if any(row.assignee == view.assignee for row in rows):
        return CALLER_NOT_ASSIGNEE
    return None


# Prebuilt text: building and cache-keying an equivalent Core select costs more CPU per request
# than the round trip it replaces. Same predicates as `releases_last_hour` and `tombstone_rule`.
_QUOTA_AND_TOMBSTONES: Final = text(
    f"""
    SELECT (SELECT count(*) FROM {SCHEMA}.releases r
             WHERE r.task_id = :task_id AND r.created_at > :since) AS n,
           t.task_id, t.assignee, t.id IS NOT NULL AS found
      FROM (SELECT 1) AS one
      LEFT JOIN {SCHEMA}.tombstones t
        ON (t.task_id = :task_id OR (t.task_id IS NULL AND t.client_id = :client_id))
       AND (t.effective_at IS NULL OR t.effective_at >= :updated_at)
    """  # noqa: S608 - only the schema is interpolated
)


def quota_and_tombstone_rule(session: Session, view: TaskAuth, now: datetime) -> tuple[int, str | None]:
    """`releases_last_hour` and `tombstone_rule` in one round trip (under the task's lock).

    One row per covering tombstone (or one row with `found` false when none covers the view),
    each carrying the task's release count of the last hour.
    """
    rows = session.execute(
        _QUOTA_AND_TOMBSTONES,
        {
            "task_id": view.task_id,
            "since": now - timedelta(hours=1),
            "client_id": view.client_id,
            "updated_at": view.updated_at,
        },
    ).all()
    found = [row for row in rows if row.found]
    return int(rows[0].n), _rule_of_tombstones(found, view)


def tombstone_rule(session: Session, view: TaskAuth) -> str | None:
    """The rule a tombstone imposes on this authorization view, or None.

    A tombstone covers views whose `updated_at` is at or before the change it records (a NULL
    `effective_at` covers every view), so a stale view cannot release after the worker learnt of
    the change, while a task that intake moved on since (back to `in_progress`, or reassigned back)
    is judged on its live view alone.
    """
    return _rule_of_tombstones(session.execute(_tombstones_covering(view)).all(), view)


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


def engine_of(session: Session) -> Engine:
    bind = session.get_bind()
    return cast(Engine, getattr(bind, "engine", bind))


def request_revocation(
    session: Session, *, accessor: str, release_id: uuid.UUID | None, client_id: uuid.UUID | None, reason: str
) -> PendingRevocation:
    """Queue a minted token for revocation by the worker, in the caller's transaction."""
    row = PendingRevocation(
        id=uuid.uuid4(), accessor=accessor, release_id=release_id, reason=reason, created_at=utcnow()
    )
    session.add(row)
    # Only the row id travels: an accessor can revoke, so it stays in the database.
    write_event(
        session,
        KIT,
        type="release.revoke_requested",
        client_id=client_id,
        aggregate_id=row.id,
        data={"pending_revocation_id": str(row.id), "release_id": str(release_id) if release_id else None},
    )
    return row


def revoke_later(
    engine: Engine, *, accessor: str, release_id: uuid.UUID | None, client_id: uuid.UUID | None, reason: str
) -> None:
    """Queue a revocation in its own transaction, after the release's transaction failed."""
    try:
        with Session(engine) as session, session.begin():
            request_revocation(session, accessor=accessor, release_id=release_id, client_id=client_id, reason=reason)
    except SQLAlchemyError as exc:
        # The token cannot be recorded for revocation; it still dies at its wrap TTL.
        log.error("revocation_not_recorded", reason=reason, error=type(exc).__name__)


class AnchorPacer:
    """Decides in-process whether asking the database about anchoring is worth a transaction.

    `maybe_anchor` is the authority (across processes); this only spares a busy API one extra
    transaction per release when this process tried less than `interval_s` ago and has appended
    fewer than `every` entries since.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = float("-inf")
        self._since = 0

    def due(self, *, interval_s: float, every: int) -> bool:
        """Count one appended entry; True when an anchoring attempt is due."""
        with self._lock:
            self._since += 1
            now = time.monotonic()
            if now - self._last < interval_s and self._since < every:
                return False
            self._last, self._since = now, 0
            return True


_pacer = AnchorPacer()


def anchor_after_commit(engine: Engine, gateway: VaultGateway, settings: Settings) -> None:
    """Anchor the chain head in Vault if due (best effort, after the caller's commit)."""
    if not _pacer.due(interval_s=settings.audit_anchor_interval_s, every=settings.audit_anchor_every):
        return
    audit.maybe_anchor(
        engine, gateway, interval_s=settings.audit_anchor_interval_s, every=settings.audit_anchor_every
    )


# --- decisions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskDecision:
    """What step 2 found."""

    task_auth: TaskAuth
    decision: Decision


def decide_for_task(
    session: Session,
    *,
    user: Principal,
    credential: Credential,
    task_id: uuid.UUID,
    reason: str,
    approval_id: uuid.UUID | None,
    intake: IntakeClient,
    settings: Settings,
    now: datetime,
    locked: bool = False,
) -> TaskDecision:
    """Lock the task (and the client, shared), read intake live, count the quota and decide.

    A tombstone covering the view overrides an allow. `locked`: the caller already took both locks
    in this transaction (`credential_for_release_locked`).
    """
    if not locked:
        lock_task_and_client(session, task_id, credential.client_id)
    task_auth = intake.authorization(task_id)
    # intake checked the view is of `task_id` (IntakeClient.authorization), so the count is the task's.
    recent, rule = quota_and_tombstone_rule(session, task_auth, now)
    decision = decide(
        task_auth,
        credential_meta(credential),
        caller_of(user),
        approval_id,
        recent,
        now,
        reason=reason,
        quota_per_hour=settings.release_quota_per_hour,
    )
    if decision.allowed and rule is not None:
        decision = Decision.deny(rule)
    return TaskDecision(task_auth=task_auth, decision=decision)


def deny(
    session: Session,
    *,
    user: Principal,
    credential: Credential,
    task_id: uuid.UUID,
    rule: str,
    reason: str,
    approval_id: uuid.UUID | None,
    operation: str,
    now: datetime,
) -> NoReturn:
    """Audit a denial (and, for a release, emit `release.denied`), commit, and raise the 403."""
    audit.append(
        session,
        action="release.denied",
        actor=user.sub,
        client_id=credential.client_id,
        task_id=task_id,
        credential_id=credential.id,
        rule=rule,
        details={
            "operation": operation,
            "reason": reason,
            "approval_id": str(approval_id) if approval_id else None,
        },
        now=now,
    )
    if operation == "release":
        write_event(
            session,
            KIT,
            type="release.denied",
            client_id=credential.client_id,
            aggregate_id=task_id,
            data={"task_id": str(task_id), "credential_id": str(credential.id), "rule": rule, "actor": user.sub},
        )
    session.commit()
    raise ReleaseDenied(rule)


def _changed(before: TaskAuth, after: TaskAuth) -> bool:
    return (before.status, before.assignee, before.updated_at) != (after.status, after.assignee, after.updated_at)


# --- the release --------------------------------------------------------------------------------


def create_release(
    session: Session,
    *,
    user: Principal,
    body: ReleaseCreate,
    gateway: VaultGateway,
    intake: IntakeClient,
    mailer: Mailer,
    settings: Settings,
) -> ReleaseIssued:
    """`POST /v1/releases`: decide, mint, re-check, record and commit; only then hand out the token."""
    now = utcnow()
    credential = credential_for_release_locked(session, body.credential_id, body.task_id)
    checked = decide_for_task(
        session,
        user=user,
        credential=credential,
        task_id=body.task_id,
        reason=body.reason,
        approval_id=body.approval_id,
        intake=intake,
        settings=settings,
        now=now,
        locked=True,
    )
    if not checked.decision.allowed:
        deny(
            session,
            user=user,
            credential=credential,
            task_id=body.task_id,
            rule=str(checked.decision.rule),
            reason=body.reason,
            approval_id=body.approval_id,
            operation="release",
            now=now,
        )
    approval = checked.task_auth.approval(body.approval_id) if body.approval_id else None
    if approval is not None and not approval.recipient.contact_email:
        raise Conflict("the approval's recipient has no contact email to send the link to", field="approval_id")

    ttl = settings.third_party_wrap_ttl_s if approval is not None else settings.release_wrap_ttl_s
    wrap = gateway.wrapped_read(credential_path(credential.client_id, credential.id), ttl_s=ttl)
    engine = engine_of(session)
    release_id = uuid.uuid4()

    def fail(reason: str) -> None:
        session.rollback()
        revoke_later(
            engine, accessor=wrap.accessor, release_id=None, client_id=credential.client_id, reason=reason
        )

    # The moment the last authorization read was sent: no allowed release has one after the
    # task's closing commit (the race test compares the two).
    rechecked_at = utcnow()
    try:
        fresh = intake.authorization(body.task_id)
    except AppError:
        fail("recheck_failed")
        raise
    if _changed(checked.task_auth, fresh):
        _deny_after_mint(
            session, engine=engine, user=user, credential=credential, body=body, fresh=fresh, wrap=wrap,
            settings=settings, now=now,
        )

    expires_at = now + timedelta(seconds=wrap.ttl)
    try:
        recipient_type = "third_party" if approval is not None else "technician"
        row = dict(
            id=release_id,
            task_id=body.task_id,
            credential_id=credential.id,
            client_id=credential.client_id,
            technician=user.sub,
            recipient_type=recipient_type,
            approval_id=approval.id if approval is not None else None,
            token_fingerprint=fingerprint(settings.fingerprint_key_bytes(), wrap.token),
            wrap_accessor=wrap.accessor,
            status="issued",
            expires_at=expires_at,
            created_at=now,
            updated_at=now,
            auth_updated_at=fresh.updated_at,
            rechecked_at=rechecked_at,
            closed_reason=None,
        )
        envelope = make_envelope(
            type="release.granted",
            client_id=credential.client_id,
            aggregate_id=release_id,
            data={
                "release_id": str(release_id),
                "task_id": str(body.task_id),
                "credential_id": str(credential.id),
                "recipient_type": recipient_type,
                "actor": user.sub,
            },
        )
        # One round trip: the release row and its outbox event (data-modifying CTEs, which
        # PostgreSQL always runs to completion), then the audit chain's lock, taken last so it is
        # held only from here to COMMIT. The head is read in the next statement (`append`).
        session.execute(
            _RECORD_RELEASE,
            {
                **row,
                "event_id": uuid.UUID(envelope["event_id"]),
                "event_type": "release.granted",
                "envelope": json.dumps(envelope),
                "chain_key": audit.CHAIN_LOCK_KEY,
            },
        )
        if approval is not None:
            ledger.record(
                session,
                release_id=release_id,
                task_id=body.task_id,
                client_id=credential.client_id,
                credential_id=credential.id,
                approval=approval,
                disclosed_by=user.sub,
                now=now,
            )
        session.flush()
        audit.append(
            session,
            action="release.granted",
            actor=user.sub,
            client_id=credential.client_id,
            task_id=body.task_id,
            credential_id=credential.id,
            release_id=release_id,
            details={
                "reason": body.reason,
                "recipient_type": "third_party" if approval is not None else "technician",
                "approval_id": str(approval.id) if approval is not None else None,
                "party_category": approval.recipient.party_category if approval is not None else None,
                "expires_at": expires_at,
            },
            now=now,
            chain_locked=True,
        )
        if approval is not None:
            # Last before COMMIT, after the audit insert succeeded: a link is never mailed for a
            # release that could not be recorded (only a failing COMMIT is left, and then the
            # token is queued for revocation). The chain lock is held across the SMTP hand-off;
            # third-party releases are rare.
            mailer.send(
                to=str(approval.recipient.contact_email),
                subject="A credential has been shared with you",
                body=reveal_mail_body(
                    link=f"{settings.reveal_base_url()}/reveal#{wrap.token}",
                    recipient_name=approval.recipient.name,
                    expires_at=expires_at.isoformat(timespec="seconds"),
                ),
            )
        session.commit()
    except AppError:
        fail("release_not_recorded")
        raise
    except SQLAlchemyError as exc:
        log.error("release_commit_failed", error=type(exc).__name__)
        fail("release_not_recorded")
        raise Unavailable("release could not be recorded") from None

    anchor_after_commit(engine, gateway, settings)
    # A third party's token went by mail; the technician never sees it.
    return ReleaseIssued(
        release_id=release_id,
        wrap_token=None if approval is not None else wrap.token,
        wrap_ttl=wrap.ttl,
        expires_at=expires_at,
    )


def _deny_after_mint(
    session: Session,
    *,
    engine: Engine,
    user: Principal,
    credential: Credential,
    body: ReleaseCreate,
    fresh: TaskAuth,
    wrap: WrapInfo,
    settings: Settings,
    now: datetime,
) -> NoReturn:
    """The task moved while minting: queue the token's revocation with the denial, then 403."""
    recheck = decide(
        fresh,
        credential_meta(credential),
        caller_of(user),
        body.approval_id,
        releases_last_hour(session, body.task_id, now),
        now,
        reason=body.reason,
        quota_per_hour=settings.release_quota_per_hour,
    )
    # The task changed under us: even a still-allowing view is refused (this decision was made on
    # the old one); name the rule the new view fails, or task_not_in_progress.
    rule = recheck.rule or TASK_NOT_IN_PROGRESS
    try:
        request_revocation(
            session, accessor=wrap.accessor, release_id=None, client_id=credential.client_id, reason="task_changed"
        )
        deny(
            session,
            user=user,
            credential=credential,
            task_id=body.task_id,
            rule=rule,
            reason=body.reason,
            approval_id=body.approval_id,
            operation="release",
            now=now,
        )
    except ReleaseDenied:
        raise
    except (AppError, SQLAlchemyError):
        session.rollback()
        revoke_later(
            engine, accessor=wrap.accessor, release_id=None, client_id=credential.client_id, reason="task_changed"
        )
        raise Unavailable("release could not be recorded") from None


# --- service releases ---------------------------------------------------------------------------


def create_service_release(
    session: Session, *, user: Principal, body: ServiceReleaseCreate, gateway: VaultGateway, settings: Settings
) -> ServiceReleaseIssued:
    """`POST /internal/service-releases`: an api_key of a vendor account, to vendor_sync."""
    now = utcnow()
    credential = active_credential(session, body.credential_id)
    # The broker learns a client's status from intake's events (tombstones), not from a live call.
    client_status = "inactive" if client_tombstoned(session, credential.client_id) else "active"
    decision = decide_service(credential_meta(credential), body.vendor_account_id, client_status)
    details = {"job_id": body.job_id, "vendor_account_id": str(body.vendor_account_id)}
    if not decision.allowed:
        audit.append(
            session,
            action="service_release.denied",
            actor=user.sub,
            client_id=credential.client_id,
            credential_id=credential.id,
            rule=decision.rule,
            details=details,
            now=now,
        )
        session.commit()
        raise ReleaseDenied(str(decision.rule))
    wrap = gateway.wrapped_read(credential_path(credential.client_id, credential.id), ttl_s=settings.service_wrap_ttl_s)
    engine = engine_of(session)
    try:
        audit.append(
            session,
            action="service_release.granted",
            actor=user.sub,
            client_id=credential.client_id,
            credential_id=credential.id,
            details={**details, "wrap_ttl": wrap.ttl},
            now=now,
        )
        session.commit()
    except (AppError, SQLAlchemyError) as exc:
        session.rollback()
        revoke_later(
            engine, accessor=wrap.accessor, release_id=None, client_id=credential.client_id, reason="audit_failed"
        )
        if isinstance(exc, AppError):
            raise
        raise Unavailable("release could not be recorded") from None
    anchor_after_commit(engine, gateway, settings)
    return ServiceReleaseIssued(wrap_token=wrap.token, wrap_ttl=wrap.ttl)


# --- reading -----------------------------------------------------------------------------------


def get_release(session: Session, *, user: Principal, release_id: uuid.UUID) -> tuple[Release, Disclosure | None]:
    """A release for its technician or an admin; anyone else gets the 404 of a missing one."""
    release = session.get(Release, release_id)
    if release is None or (user.role != "admin" and release.technician != user.sub):
        raise NotFound("release not found")
    disclosure = None
    if release.recipient_type == "third_party":
        disclosure = session.execute(
            select(Disclosure).where(col(Disclosure.release_id) == release.id)
        ).scalar_one_or_none()
    return release, disclosure
