"""Releasing credentials: decide on intake's live view, mint a wrapped token, record, then return.

Order of one release to a person (all in the request's transaction unless said otherwise):

1. Read the active credential (404 otherwise) and take the task's lock and the client's lock shared
   (`gate`): the quota count and the tombstone check cannot race another release of the task or
   the worker's revocation.
2. Read intake's authorization live (no cache; unreachable, slow, malformed or 5xx → 503), count
   the task's releases of the last hour, and `decide`. A tombstone covering that view overrides an
   allow. A denial is audited (`release.denied`, with its rule), put in the outbox and committed
   before the 403.
3. Mint the wrapping token (120 s for people; longer, a setting, for a mailed third-party link).
4. Read intake again. If the task's status, assignee or `updated_at` moved, the release is denied
   and the minted token's accessor is queued for the worker to revoke (`pending`). This second read
   closes the window between the decision and the mint: no release is granted on a view older than
   its own token.
5. Write the release row (an HMAC fingerprint of the token, never the token; the view's
   `updated_at` it was decided on and when the re-check was sent), the ledger row for a third
   party, the outbox event and the audit entry; for a third party, mail the link; then COMMIT.
   Only then is the token returned. Any failure from step 3 on returns no token and queues the
   accessor for revocation in a separate transaction (best effort: if the database is gone too,
   the token dies at its TTL).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import Final

from sqlalchemy import select, text
from sqlmodel import Session, col

from mspkit.auth import Principal
from mspkit.errors import Conflict, NotFound
from mspkit.outbox import make_envelope
from secrets_broker.audit.service import CHAIN_LOCK_KEY, Entry, audited_commit
from secrets_broker.common.types import utcnow
from secrets_broker.db import SCHEMA
from secrets_broker.errors import ReleaseDenied
from secrets_broker.intake_client import IntakeClient
from secrets_broker.ledger import service as ledger
from secrets_broker.ledger.models import Disclosure
from secrets_broker.mail import Mailer, reveal_mail_body
from secrets_broker.release import gate
from secrets_broker.release.models import Release
from secrets_broker.release.pending import request_revocation, revoke_on_failure
from secrets_broker.release.policy import TASK_NOT_IN_PROGRESS, decide_service, recheck
from secrets_broker.release.schemas import ReleaseCreate, ReleaseIssued, ServiceReleaseCreate, ServiceReleaseIssued
from secrets_broker.settings import Settings
from secrets_broker.vault.gateway import VaultGateway, credential_path

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
    """`POST /v1/releases`: decide, mint, re-check, record and commit; only then hand out the token."""
    credential = gate.locked_credential(session, credential_id=body.credential_id, task_id=body.task_id)
    ask = gate.Ask(
        user=user,
        credential=credential,
        task_id=body.task_id,
        reason=body.reason,
        approval_id=body.approval_id,
        operation="release",
        now=utcnow(),
    )
    checked = gate.check(session, ask, intake=intake, settings=settings)
    if checked.decision.rule is not None:
        audited_commit(session, gate.denial(session, ask, checked.decision.rule), gateway=gateway, settings=settings)
        raise ReleaseDenied(checked.decision.rule)
    approval = checked.task_auth.approval(body.approval_id) if body.approval_id else None
    if approval is not None and not approval.recipient.contact_email:
        raise Conflict("the approval's recipient has no contact email to send the link to", field="approval_id")

    ttl = settings.third_party_wrap_ttl_s if approval is not None else settings.release_wrap_ttl_s
    wrap = gateway.wrapped_read(credential_path(credential.client_id, credential.id), ttl_s=ttl)
    revoke_if_failed = partial(revoke_on_failure, session, accessor=wrap.accessor, client_id=credential.client_id)

    with revoke_if_failed(reason="recheck_failed"):
        # The moment the last authorization read was sent: no allowed release has one after the
        # task's closing commit (the race test compares the two).
        rechecked_at = utcnow()
        fresh = intake.authorization(body.task_id)
    if fresh.moved_since(checked.task_auth):
        # Even a still-allowing view is refused (the decision was made on the old one); name the
        # rule the new view fails, or task_not_in_progress. Reason and quota cannot have changed.
        rule = recheck(fresh, gate.credential_meta(credential), user.sub, body.approval_id, ask.now).rule
        rule = rule or TASK_NOT_IN_PROGRESS
        with revoke_if_failed(reason="task_changed"):
            request_revocation(
                session, accessor=wrap.accessor, release_id=None, client_id=credential.client_id, reason="task_changed"
            )
            audited_commit(session, gate.denial(session, ask, rule), gateway=gateway, settings=settings)
        raise ReleaseDenied(rule)

    release = Release(
        id=uuid.uuid4(),
        task_id=body.task_id,
        credential_id=credential.id,
        client_id=credential.client_id,
        technician=user.sub,
        recipient_type="third_party" if approval is not None else "technician",
        approval_id=approval.id if approval is not None else None,
        token_fingerprint=gate.fingerprint(settings.fingerprint_key_bytes(), wrap.token),
        wrap_accessor=wrap.accessor,
        status="issued",
        expires_at=ask.now + timedelta(seconds=wrap.ttl),
        created_at=ask.now,
        updated_at=ask.now,
        auth_updated_at=fresh.updated_at,
        rechecked_at=rechecked_at,
    )

    send_link = None
    if approval is not None:
        # Run last before COMMIT, after the audit insert succeeded: a link is never mailed for a
        # release that could not be recorded (only a failing COMMIT is left, and then the token is
        # queued for revocation). The chain lock is held across the SMTP hand-off; third-party
        # releases are rare.
        send_link = partial(
            mailer.send,
            to=str(approval.recipient.contact_email),
            subject="A credential has been shared with you",
            body=reveal_mail_body(
                link=f"{settings.reveal_base_url()}/reveal#{wrap.token}",
                recipient_name=approval.recipient.name,
                expires_at=release.expires_at.isoformat(timespec="seconds"),
            ),
        )

    with revoke_if_failed(reason="release_not_recorded"):
        event = make_envelope(
            type="release.granted",
            client_id=release.client_id,
            aggregate_id=release.id,
            data=gate.release_event_data(release, recipient_type=release.recipient_type, actor=user.sub),
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
        if approval is not None:
            ledger.record(session, release=release, approval=approval, disclosed_by=user.sub)
            session.flush()
        entry = Entry.of_release(
            release,
            action="release.granted",
            actor=user.sub,
            details={
                "reason": body.reason,
                "recipient_type": release.recipient_type,
                "approval_id": str(approval.id) if approval is not None else None,
                "party_category": approval.recipient.party_category if approval is not None else None,
                "expires_at": release.expires_at,
            },
            at=ask.now,
        )
        audited_commit(
            session, entry, gateway=gateway, settings=settings, chain_locked=True, before_commit=send_link
        )
    # A third party's token went by mail; the technician never sees it.
    return ReleaseIssued(
        release_id=release.id,
        wrap_token=None if approval is not None else wrap.token,
        wrap_ttl=wrap.ttl,
        expires_at=release.expires_at,
    )


def create_service_release(
    session: Session, *, user: Principal, body: ServiceReleaseCreate, gateway: VaultGateway, settings: Settings
) -> ServiceReleaseIssued:
    """`POST /internal/service-releases`: an api_key of a vendor account, to vendor_sync."""
    credential = gate.active_credential(session, body.credential_id)
    # The broker learns a client's status from intake's events (tombstones), not from a live call.
    client_status = "inactive" if gate.client_tombstoned(session, credential.client_id) else "active"
    decision = decide_service(gate.credential_meta(credential), body.vendor_account_id, client_status)
    entry = Entry(
        action="service_release.granted" if decision.allowed else "service_release.denied",
        actor=user.sub,
        client_id=credential.client_id,
        credential_id=credential.id,
        rule=decision.rule,
        details={"job_id": body.job_id, "vendor_account_id": str(body.vendor_account_id)},
        at=utcnow(),
    )
    if decision.rule is not None:
        audited_commit(session, entry, gateway=gateway, settings=settings)
        raise ReleaseDenied(decision.rule)
    wrap = gateway.wrapped_read(credential_path(credential.client_id, credential.id), ttl_s=settings.service_wrap_ttl_s)
    with revoke_on_failure(session, accessor=wrap.accessor, client_id=credential.client_id, reason="audit_failed"):
        granted = replace(entry, details={**entry.details, "wrap_ttl": wrap.ttl})
        audited_commit(session, granted, gateway=gateway, settings=settings)
    return ServiceReleaseIssued(wrap_token=wrap.token, wrap_ttl=wrap.ttl)


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
