"""Releasing credentials: decide on intake's live view, mint a wrapped token, record, then return.

Order of one release to a person (all in the request's transaction unless said otherwise):

1. Read the active credential (404 otherwise; also for a technician who may not see its client,
   `need_to_know`) and take the task's lock and the client's lock shared (`gate`): the quota count
   and the tombstone check cannot race another release of the task or the worker's revocation.
2. Read intake's authorization live (no cache; unreachable, slow, malformed or 5xx → 503), count
   the task's releases of the last hour, and `decide`. A tombstone covering that view overrides an
   allow. A denial is audited (`release.denied`, with its rule), put in the outbox and committed
   before the 403.
3. Mint the wrapping token (120 s, a setting).
4. Read intake again. If the task's status, assignee or `updated_at` moved, the release is denied
   and the minted token's accessor is queued for the worker to revoke (`pending`). This second read
   closes the window between the decision and the mint: no release is granted on a view older than
   its own token.
5. Write the release row (an HMAC fingerprint of the token, never the token; the view's
   `updated_at` it was decided on and when the re-check was sent), the outbox event and the audit
   entry; then COMMIT. Only then is the token returned. Any failure from step 3 on returns no token
   and queues the accessor for revocation in a separate transaction (best effort: if the database
   is gone too, the token dies at its TTL).

A release to an approval's third party (`approval_id`) mints no Vault token at all. After steps 1
and 2 it draws a single-use reveal code (`secrets.token_urlsafe`), writes the release row with the
code's HMAC in `token_fingerprint` and no accessor, the ledger row, the outbox event and the audit
entry, and COMMITs. Only then, with no lock held, it mails the recipient the link
`{public_url}/reveal#{code}` through the mail guard; the technician gets `wrap_token: null`. A link
that cannot be handed to the relay (or that the guard refuses) withdraws the release (`revoked`,
audited) before the error goes out: the code existed only in this request. The secret leaves Vault
only when the recipient reveals the code (`reveal/service.py`), after a live re-check.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import Final

from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from mspkit.auth import Principal
from mspkit.errors import AppError, Conflict, NotFound
from mspkit.logging import get_logger
from mspkit.mailguard import MailRefused
from mspkit.outbox import make_envelope
from mspkit.tenancy import sees_client
from secrets_broker.audit.service import CHAIN_LOCK_KEY, Entry, audited_commit
from secrets_broker.common.types import utcnow
from secrets_broker.credentials.models import Credential
from secrets_broker.db import SCHEMA
from secrets_broker.errors import MailUnavailable, ReleaseDenied
from secrets_broker.intake_client import IntakeClient
from secrets_broker.ledger import service as ledger
from secrets_broker.ledger.models import Disclosure
from secrets_broker.mail import REVEAL_TEMPLATE, Mailer, reveal_mail_body
from secrets_broker.release import gate
from secrets_broker.release.models import Release
from secrets_broker.release.need_to_know import ensure_need_to_know
from secrets_broker.release.pending import request_revocation, revoke_on_failure
from secrets_broker.release.policy import CLIENT_NOT_ACTIVE, TASK_NOT_IN_PROGRESS, Decision, decide_service, recheck
from secrets_broker.release.schemas import ReleaseCreate, ReleaseIssued, ServiceReleaseCreate, ServiceReleaseIssued
from secrets_broker.settings import Settings
from secrets_broker.task_auth import TaskAuth
from secrets_broker.vault.gateway import VaultGateway, credential_path

log = get_logger("secrets_broker.release")
# 32 random bytes, 43 URL-safe characters: no Vault token shape, so the mail guard lets it pass.
REVEAL_CODE_BYTES: Final = 32
BROKER_ACTOR: Final = "svc:secrets_broker"
# The release row, its outbox event and the audit chain's lock in one round trip: the inserts are
# data-modifying CTEs (which PostgreSQL always runs to completion), and the chain's lock is taken
# last so it is held only from here to COMMIT (`audited_commit` reads the head in the next
# statement). Written as SQL because SQLAlchemy renders the outbox's defaulted columns into a CTE
# insert as parameters it cannot fill. docs/benchmarks.md, secrets_broker: 0.4-0.5 ms of CPU per
# release, against 1.8-2.2 ms for the ORM insert, the kit's outbox write and the lock.
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
    """`POST /v1/releases`: decide, mint, re-check, record and commit; only then hand out the token.

    With `approval_id`: decide, record and commit, then mail the third party a reveal code.
    """
    credential = gate.active_credential(session, body.credential_id)
    ask = gate.Ask(
        user=user,
        credential=credential,
        task_id=body.task_id,
        reason=body.reason,
        approval_id=body.approval_id,
        operation="release",
        now=utcnow(),
    )
    ensure_need_to_know(session, ask, gateway=gateway, settings=settings)
    gate.lock_task_and_client(session, body.task_id, credential.client_id)
    # The decision's time is taken once the locks are held, as the quota count is.
    ask = replace(ask, now=utcnow())
    checked = gate.check(session, ask, intake=intake, settings=settings)
    if checked.decision.rule is not None:
        gate.refuse(session, ask, checked.decision.rule, gateway=gateway, settings=settings)
        raise ReleaseDenied(checked.decision.rule)
    if body.approval_id is not None:
        return _release_to_third_party(
            session, ask=ask, checked=checked, gateway=gateway, mailer=mailer, settings=settings
        )

    wrap = gateway.wrapped_read(credential_path(credential.client_id, credential.id), ttl_s=settings.release_wrap_ttl_s)
    revoke_if_failed = partial(revoke_on_failure, session, accessor=wrap.accessor, client_id=credential.client_id)

    with revoke_if_failed(reason="recheck_failed"):
        # The moment the last authorization read was sent: no allowed release has one after the
        # task's closing commit (the race test compares the two).
        rechecked_at = utcnow()
        fresh = intake.authorization(body.task_id)
        # Even a still-allowing view is refused (the decision was made on the old one); name the
        # rule the new view fails, or task_not_in_progress. Reason and quota cannot have changed.
        rule = None
        if fresh.moved_since(checked.task_auth):
            rule = recheck(fresh, gate.credential_meta(credential), user.sub, body.approval_id, ask.now).rule
            rule = rule or TASK_NOT_IN_PROGRESS
    if rule is not None:
        with revoke_if_failed(reason="task_changed"):
            request_revocation(
                session, accessor=wrap.accessor, release_id=None, client_id=credential.client_id, reason="task_changed"
            )
            gate.refuse(session, ask, rule, gateway=gateway, settings=settings)
        raise ReleaseDenied(rule)

    # Every step from the mint on sits in a `revoke_if_failed` block: whatever fails, the token is queued.
    with revoke_if_failed(reason="release_not_recorded"):
        release = Release(
            id=uuid.uuid4(),
            task_id=body.task_id,
            credential_id=credential.id,
            client_id=credential.client_id,
            technician=user.sub,
            recipient_type="technician",
            approval_id=None,
            token_fingerprint=gate.fingerprint(settings.fingerprint_key_bytes(), wrap.token),
            wrap_accessor=wrap.accessor,
            status="issued",
            expires_at=ask.now + timedelta(seconds=wrap.ttl),
            created_at=ask.now,
            updated_at=ask.now,
            auth_updated_at=fresh.updated_at,
            rechecked_at=rechecked_at,
            reason=body.reason,
        )
        stamp = _record_release(session, release, actor=user.sub)
        entry = Entry.of_release(
            release,
            action="release.granted",
            actor=user.sub,
            details={
                "reason": body.reason,
                "recipient_type": release.recipient_type,
                "approval_id": None,
                "party_category": None,
                "expires_at": release.expires_at,
            },
            at=ask.now,
        )
        audited_commit(session, entry, gateway=gateway, settings=settings, chain_locked=True, before_commit=stamp)
    return ReleaseIssued(release_id=release.id, wrap_token=wrap.token, wrap_ttl=wrap.ttl, expires_at=release.expires_at)


def _record_release(session: Session, release: Release, *, actor: str) -> Callable[[int], None]:
    """Insert the release with its `release.granted` outbox event, taking the audit chain's lock (one statement).

    Returns what stamps the event with the index of the release's audit entry, once the chain gave it
    one (`audited_commit`'s `before_commit`): the PSA's evidence note cites that entry.
    """
    event = make_envelope(
        type="release.granted",
        client_id=release.client_id,
        aggregate_id=release.id,
        data=gate.release_event_data(release, recipient_type=release.recipient_type, actor=actor),
    )
    session.execute(
        _RECORD_RELEASE,
        {
            **release.model_dump(),
            "event_id": uuid.UUID(event["event_id"]),
            "event_type": event["type"],
            "envelope": json.dumps(event),
            "chain_key": CHAIN_LOCK_KEY,
        },
    )
    event_id = uuid.UUID(event["event_id"])
    return lambda index: _stamp_audit_index(session, event_id, index)


_STAMP_AUDIT_INDEX: Final = text(
    f"UPDATE {SCHEMA}.outbox"  # noqa: S608 - only the schema is interpolated
    " SET envelope = jsonb_set(envelope, '{data,audit_index}', to_jsonb(CAST(:index AS integer)))"
    " WHERE event_id = :event_id"
)


def _stamp_audit_index(session: Session, event_id: uuid.UUID, index: int) -> None:
    session.execute(_STAMP_AUDIT_INDEX, {"event_id": event_id, "index": index})


def _release_to_third_party(
    session: Session,
    *,
    ask: gate.Ask,
    checked: gate.TaskDecision,
    gateway: VaultGateway,
    mailer: Mailer,
    settings: Settings,
) -> ReleaseIssued:
    """An allowed release to an approval's recipient: record the code's HMAC, commit, then mail the code."""
    # `decide` allowed it, so the live view lists this approval as approved for the credential.
    approval = checked.task_auth.approval(ask.approval_id) if ask.approval_id else None
    if approval is None or not approval.recipient.contact_email:
        raise Conflict("the approval's recipient has no contact email to send the link to", field="approval_id")
    credential = ask.credential
    code = secrets.token_urlsafe(REVEAL_CODE_BYTES)
    release = Release(
        id=uuid.uuid4(),
        task_id=ask.task_id,
        credential_id=credential.id,
        client_id=credential.client_id,
        technician=ask.user.sub,
        recipient_type="third_party",
        approval_id=approval.id,
        token_fingerprint=gate.fingerprint(settings.fingerprint_key_bytes(), code),
        # Nothing is minted at Vault until the recipient reveals the code.
        wrap_accessor=None,
        status="issued",
        expires_at=ask.now + timedelta(seconds=settings.reveal_code_ttl_s),
        created_at=ask.now,
        updated_at=ask.now,
        auth_updated_at=checked.task_auth.updated_at,
        # No token, so no second read closes a mint window: the decision's read was the last one
        # (sent after `ask.now`), and the reveal re-checks intake live anyway.
        rechecked_at=ask.now,
        reason=ask.reason,
    )
    stamp = _record_release(session, release, actor=ask.user.sub)
    ledger.record(session, release=release, approval=approval, disclosed_by=ask.user.sub)
    session.flush()
    entry = Entry.of_release(
        release,
        action="release.granted",
        actor=ask.user.sub,
        details={
            "reason": ask.reason,
            "recipient_type": release.recipient_type,
            "approval_id": str(approval.id),
            "party_category": approval.recipient.party_category,
            "expires_at": release.expires_at,
        },
        at=ask.now,
    )
    audited_commit(session, entry, gateway=gateway, settings=settings, chain_locked=True, before_commit=stamp)

    # After COMMIT: no lock is held across SMTP, and no link goes out for an unrecorded release.
    try:
        mailer.send(
            to=str(approval.recipient.contact_email),
            subject="A credential has been shared with you",
            body=reveal_mail_body(
                link=f"{settings.reveal_base_url()}/reveal#{code}",
                recipient_name=approval.recipient.name,
                expires_at=release.expires_at.isoformat(timespec="seconds"),
            ),
            template=REVEAL_TEMPLATE,
        )
    except MailRefused:
        # Permanent: the same message would be refused again, so it is not retried.
        _withdraw(session, release, reason="mail_refused", gateway=gateway, settings=settings)
        raise Conflict(
            "the outbound-mail guard refused the reveal mail; the release was withdrawn", field="approval_id"
        ) from None
    except MailUnavailable:
        _withdraw(session, release, reason="mail_failed", gateway=gateway, settings=settings)
        raise
    # The code went by mail only; the technician never sees it.
    return ReleaseIssued(
        release_id=release.id, wrap_token=None, wrap_ttl=settings.reveal_code_ttl_s, expires_at=release.expires_at
    )


def _withdraw(session: Session, release: Release, *, reason: str, gateway: VaultGateway, settings: Settings) -> None:
    """Close a third party's release whose link was never handed over (`revoked`, audited)."""
    try:
        gate.lock_task_and_client(session, release.person_task_id, release.client_id)
        row = session.execute(select(Release).where(col(Release.id) == release.id).with_for_update()).scalar_one()
        if row.status != "issued":
            session.rollback()
            return
        row.status = "revoked"
        row.closed_reason = reason
        row.updated_at = utcnow()
        session.add(row)
        details = {"reason": reason, "recipient_type": row.recipient_type}
        entry = Entry.of_release(row, action="release.revoked", actor=BROKER_ACTOR, details=details)
        audited_commit(session, entry, gateway=gateway, settings=settings)
    except (AppError, SQLAlchemyError) as exc:
        # Best effort: the code existed only in this request, so nobody can reveal the release.
        session.rollback()
        log.error("release_not_withdrawn", release_id=str(release.id), reason=reason, error=type(exc).__name__)


# The client's key shared (`gate.lock_client` takes it exclusively to revoke the client's releases).
_CLIENT_LOCK_SHARED: Final = text("SELECT pg_advisory_xact_lock_shared(hashtextextended(:c, 0))")


def _decide_service(
    session: Session, *, user: Principal, credential: Credential, body: ServiceReleaseCreate, intake: IntakeClient
) -> tuple[Decision, TaskAuth | None]:
    """Read intake live and decide a service release; a tombstone overrides an allow.

    Without a task, the client's status is read; with one, the task's authorization view (which
    carries the client's status), and the task's tombstones count as for a person's release.
    """
    meta = gate.credential_meta(credential)
    if body.task_id is None:
        decision = decide_service(meta, body.vendor_account_id, intake.client_status(credential.client_id))
        view = None
    else:
        view = intake.authorization(body.task_id)
        decision = decide_service(meta, body.vendor_account_id, view.client_status, view, service=user.sub)
        if decision.allowed and (rule := gate.tombstone_rule(session, view)) is not None:
            decision = Decision.deny(rule)
    if decision.allowed and gate.client_tombstoned(session, credential.client_id):
        decision = Decision.deny(CLIENT_NOT_ACTIVE)
    return decision, view


def create_service_release(
    session: Session,
    *,
    user: Principal,
    body: ServiceReleaseCreate,
    gateway: VaultGateway,
    intake: IntakeClient,
    settings: Settings,
) -> ServiceReleaseIssued:
    """`POST /internal/service-releases`: an api_key of a vendor account, to vendor_sync, recorded like any release.

    The client's lock is held shared from the decision to COMMIT (as for a person's release), so the
    worker's client-wide revocation either runs first (its tombstone refuses this release) or waits
    and then revokes it: without a task the row carries the token's fingerprint and accessor and no
    view timestamp, so every later client tombstone covers it.

    With `task_id` (provisioning) the task's lock is held too, and the row records the task and the
    view's `updated_at`: the worker's revocation of the task (leaving `in_progress`, reassigned)
    covers it as it covers a person's release.
    """
    credential = gate.active_credential(session, body.credential_id)
    if body.task_id is None:
        session.execute(_CLIENT_LOCK_SHARED, {"c": f"{gate.CLIENT_LOCK_NAMESPACE}:{credential.client_id}"})
    else:
        gate.lock_task_and_client(session, body.task_id, credential.client_id)
    # Read live (intake unreachable, slow or garbled: 503; a task intake does not know: 404).
    rechecked_at = utcnow()
    decision, view = _decide_service(session, user=user, credential=credential, body=body, intake=intake)
    now = utcnow()
    details = {"job_id": body.job_id, "vendor_account_id": str(body.vendor_account_id)}
    if decision.rule is not None:
        denied = Entry(
            action="service_release.denied",
            actor=user.sub,
            client_id=credential.client_id,
            task_id=body.task_id,
            credential_id=credential.id,
            rule=decision.rule,
            details=details,
            at=now,
        )
        audited_commit(session, denied, gateway=gateway, settings=settings)
        raise ReleaseDenied(decision.rule)
    wrap = gateway.wrapped_read(credential_path(credential.client_id, credential.id), ttl_s=settings.service_wrap_ttl_s)
    with revoke_on_failure(session, accessor=wrap.accessor, client_id=credential.client_id, reason="audit_failed"):
        release = Release(
            id=uuid.uuid4(),
            task_id=body.task_id,
            credential_id=credential.id,
            client_id=credential.client_id,
            technician=user.sub,
            recipient_type="service",
            token_fingerprint=gate.fingerprint(settings.fingerprint_key_bytes(), wrap.token),
            wrap_accessor=wrap.accessor,
            status="issued",
            expires_at=now + timedelta(seconds=wrap.ttl),
            created_at=now,
            updated_at=now,
            auth_updated_at=view.updated_at if view is not None else None,
            rechecked_at=rechecked_at,
            # A service gives no reason: its job is why (the value migration 0006 fills in too).
            reason=f"job {body.job_id}",
        )
        session.add(release)
        granted = Entry.of_release(
            release, action="service_release.granted", actor=user.sub, details={**details, "wrap_ttl": wrap.ttl}, at=now
        )
        audited_commit(session, granted, gateway=gateway, settings=settings)
    return ServiceReleaseIssued(wrap_token=wrap.token, wrap_ttl=wrap.ttl)


def get_release(session: Session, *, user: Principal, release_id: uuid.UUID) -> tuple[Release, Disclosure | None]:
    """A release for its technician or an admin; anyone else gets the 404 of a missing one."""
    release = session.get(Release, release_id)
    if release is None or (user.role != "admin" and release.technician != user.sub):
        raise NotFound("release not found")
    # Their own release of a client they no longer work for is as missing as any other.
    if not sees_client(user, release.client_id):
        raise NotFound("release not found")
    disclosure = None
    if release.recipient_type == "third_party":
        disclosure = session.execute(
            select(Disclosure).where(col(Disclosure.release_id) == release.id)
        ).scalar_one_or_none()
    return release, disclosure
