"""Unwrapping a released token for its recipient: the only place plaintext passes through the broker.

Order of one unwrap (the technician's `POST /v1/unwrap`, or the third party's `POST /v1/reveal`):

1. Find the release by the token's HMAC fingerprint (the token itself is never stored). Unknown:
   410 `wrap_token_invalid`. Through the wrong door (someone else's release, a third party's token
   at `/v1/unwrap`, a technician's token at `/v1/reveal`): 403 `forbidden`. Nothing is consumed.
2. Take the task's advisory lock (the release path's and the revoker's key) and the client's lock
   shared, then the release row: two unwraps of one token, or an unwrap and the worker revoking the
   task, run one after the other. A release no longer `issued` (or past its expiry): 410.
3. Re-check intake live, with the release's own rules (the technician still the assignee, the task
   in progress, the client active, the credential in scope, a third party's approval still valid),
   and the tombstones: any failure is 403 `release_denied` naming the rule; nothing is consumed.
4. Look the token up at Vault (a lookup does not consume it). Gone although the release is still
   `issued` and unexpired: someone unwrapped it before its recipient. That is recorded as
   `security.wrap_token_reused`, the client's admins are told through a `release.denied` event,
   the release is closed as `intercepted`, and the answer is 410. A token created at any path but
   this release's credential path: `security.wrap_token_wrong_path`, 400, not consumed.
5. Unwrap (consumes the token), record `unwrapped` and `unwrap.succeeded`, commit, and only then
   return the plaintext. It lives in this request only: no cache, no log, `Cache-Control: no-store`.

Every refusal is audited (`unwrap.refused` with the reason, and the rule for a failed re-check).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, NoReturn

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from mspkit.errors import Forbidden, NotFound, Unavailable
from mspkit.logging import get_logger
from mspkit.outbox import write_event
from secrets_broker.audit import service as audit
from secrets_broker.common.types import utcnow
from secrets_broker.credentials.models import Credential
from secrets_broker.db import KIT
from secrets_broker.errors import ReleaseDenied, WrapTokenInvalid, WrapTokenWrongPath
from secrets_broker.intake_client import IntakeClient
from secrets_broker.release.models import Release
from secrets_broker.release.policy import TASK_NOT_IN_PROGRESS, Caller, TaskAuth, decide
from secrets_broker.release.service import (
    anchor_after_commit,
    credential_meta,
    engine_of,
    fingerprint,
    lock_task_and_client,
    tombstone_rule,
)
from secrets_broker.settings import Settings
from secrets_broker.unwrap.schemas import Revealed
from secrets_broker.vault.gateway import VaultGateway, credential_path, data_path
from secrets_broker.vault.wrapping import WrapClient

log = get_logger("secrets_broker.unwrap")

Door = Literal["unwrap", "reveal"]
# `decide`'s reason and quota rules belong to the release request; the re-check passes them.
RECHECK_REASON = "live re-check before unwrapping a released token"
# A token Vault forgets within this margin of its expiry expired; it was not intercepted.
EXPIRY_MARGIN = timedelta(seconds=2)
REUSED = "wrap_token_reused"


@dataclass(frozen=True)
class Attempt:
    """Who knocks, at which door: the technician's sub, or an unauthenticated caller's address."""

    door: Door
    sub: str | None = None
    client_ip: str | None = None

    def actor(self, release: Release | None) -> str:
        """The audit actor: the technician, or the third party of the release's approval."""
        if self.door == "unwrap":
            return str(self.sub)
        if release is not None and release.approval_id is not None:
            return f"third_party:{release.approval_id}"
        return "anonymous"

    def details(self, **extra: Any) -> dict[str, Any]:
        """Audit details: the door, the caller's address for the unauthenticated door, and `extra`."""
        out: dict[str, Any] = {"door": self.door}
        if self.door == "reveal":
            out["client_ip"] = self.client_ip
        out.update(extra)
        return out


def expected_path(release: Release) -> str:
    """The only creation path a token of this release may carry."""
    return data_path(credential_path(release.client_id, release.credential_id))


def recheck_rule(view: TaskAuth, credential: Credential, release: Release, now: datetime) -> str | None:
    """The first release rule the live view now fails for this release, or None."""
    decision = decide(
        view,
        credential_meta(credential),
        Caller(sub=release.technician, role="technician"),
        release.approval_id,
        0,
        now,
        reason=RECHECK_REASON,
        quota_per_hour=1,
    )
    return decision.rule


def _refuse(
    session: Session,
    attempt: Attempt,
    release: Release | None,
    *,
    reason: str,
    error: Exception,
    rule: str | None = None,
    action: str = "unwrap.refused",
) -> NoReturn:
    """Audit a refusal, commit (with any status change already made), and raise `error`."""
    audit.append(
        session,
        action=action,
        actor=attempt.actor(release),
        client_id=release.client_id if release else None,
        task_id=release.task_id if release else None,
        credential_id=release.credential_id if release else None,
        release_id=release.id if release else None,
        rule=rule,
        details=attempt.details(reason=reason),
    )
    session.commit()
    raise error


def _intercepted(session: Session, attempt: Attempt, release: Release, now: datetime) -> NoReturn:
    """The token was unwrapped by someone else: record it, alert the client's admins, answer 410."""
    release.status = "revoked"
    release.closed_reason = "intercepted"
    release.updated_at = now
    session.add(release)
    # Until the notification service exists, `release.denied` is how the client's admins hear of it.
    write_event(
        session,
        KIT,
        type="release.denied",
        client_id=release.client_id,
        aggregate_id=release.id,
        data={
            "release_id": str(release.id),
            "task_id": str(release.task_id),
            "credential_id": str(release.credential_id),
            "rule": REUSED,
            "reason": REUSED,
        },
    )
    log.warning("wrap_token_reused", release_id=str(release.id), door=attempt.door)
    _refuse(
        session,
        attempt,
        release,
        reason=REUSED,
        action="security.wrap_token_reused",
        error=WrapTokenInvalid("the token was already used, revoked or has expired"),
    )


def find_release(session: Session, token: str, settings: Settings) -> Release | None:
    """The release whose token has this HMAC fingerprint, or None."""
    digest = fingerprint(settings.fingerprint_key_bytes(), token)
    return session.execute(select(Release).where(col(Release.token_fingerprint) == digest)).scalar_one_or_none()


def _lock_release(session: Session, release: Release) -> Release:
    lock_task_and_client(session, release.task_id, release.client_id)
    return session.execute(
        select(Release)
        .where(col(Release.id) == release.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def _secret_of(response: dict[str, Any]) -> tuple[str, bool]:
    # A KV v2 read, unwrapped: {"data": {"data": {"secret", "notes"}, "metadata": {...}}}.
    data = response.get("data")
    inner = data.get("data") if isinstance(data, dict) else None
    secret = inner.get("secret") if isinstance(inner, dict) else None
    return (secret, True) if isinstance(secret, str) else ("", False)


def unwrap_token(
    session: Session,
    *,
    token: str,
    attempt: Attempt,
    wraps: WrapClient,
    intake: IntakeClient,
    gateway: VaultGateway,
    settings: Settings,
) -> Revealed:
    """Unwrap a released token for its recipient, once; see the module docstring for the order."""
    gone = WrapTokenInvalid("the token was already used, revoked or has expired")
    release = find_release(session, token, settings)
    if release is None:
        _refuse(session, attempt, None, reason="unknown", error=gone)
    if attempt.door == "unwrap":
        if release.recipient_type != "technician" or release.technician != attempt.sub:
            _refuse(session, attempt, release, reason="not_recipient", error=Forbidden("not your release"))
    elif release.recipient_type != "third_party":
        _refuse(session, attempt, release, reason="not_third_party", error=Forbidden("not a third-party release"))

    release = _lock_release(session, release)
    now = utcnow()
    if release.status != "issued":
        _refuse(session, attempt, release, reason=release.status, error=gone)
    if release.expires_at <= now:
        release.status = "expired"
        release.updated_at = now
        session.add(release)
        _refuse(session, attempt, release, reason="expired", error=gone)

    credential = session.get(Credential, release.credential_id)
    if credential is None:  # the foreign key makes this unreachable; fail closed anyway
        raise Unavailable("credential metadata missing")
    try:
        view = intake.authorization(release.task_id)
    except NotFound:
        _refuse(
            session, attempt, release, reason="recheck_failed", rule=TASK_NOT_IN_PROGRESS,
            error=ReleaseDenied(TASK_NOT_IN_PROGRESS),
        )
    rule = recheck_rule(view, credential, release, now) or tombstone_rule(session, view)
    if rule is not None:
        _refuse(session, attempt, release, reason="recheck_failed", rule=rule, error=ReleaseDenied(rule))

    info = wraps.lookup(token)
    if info is None:
        if utcnow() >= release.expires_at - EXPIRY_MARGIN:
            release.status = "expired"
            release.updated_at = now
            session.add(release)
            _refuse(session, attempt, release, reason="expired", error=gone)
        _intercepted(session, attempt, release, now)
    if info.creation_path != expected_path(release):
        log.warning("wrap_token_wrong_path", release_id=str(release.id), door=attempt.door)
        _refuse(
            session,
            attempt,
            release,
            reason="wrong_path",
            action="security.wrap_token_wrong_path",
            error=WrapTokenWrongPath("the token does not wrap this release's credential"),
        )

    response = wraps.unwrap(token)
    if response is None:
        # Gone between the lookup and the unwrap: someone else unwrapped it just now.
        _intercepted(session, attempt, release, now)
    secret, ok = _secret_of(response)
    del response
    if not ok:
        release.status = "revoked"
        release.closed_reason = "unwrap_malformed"
        release.updated_at = now
        session.add(release)
        _refuse(session, attempt, release, reason="malformed", error=Unavailable("Vault returned no secret"))

    release.status = "unwrapped"
    release.closed_reason = None
    release.updated_at = utcnow()
    session.add(release)
    audit.append(
        session,
        action="unwrap.succeeded",
        actor=attempt.actor(release),
        client_id=release.client_id,
        task_id=release.task_id,
        credential_id=release.credential_id,
        release_id=release.id,
        details=attempt.details(recipient_type=release.recipient_type),
    )
    try:
        session.commit()
    except SQLAlchemyError as exc:
        # Unrecorded disclosure is no disclosure: the plaintext is dropped with this frame.
        log.error("unwrap_commit_failed", error=type(exc).__name__)
        raise Unavailable("unwrap could not be recorded") from None
    anchor_after_commit(engine_of(session), gateway, settings)
    return Revealed(
        credential_id=credential.id,
        name=credential.name,
        username=credential.username,
        secret=secret,
        url=credential.url,
    )

