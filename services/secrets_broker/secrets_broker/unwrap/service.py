"""Unwrapping a released token for its technician (`POST /v1/unwrap`); a third party reveals through `reveal/`.

Order of one unwrap:

1. Find the release by the token's HMAC fingerprint (the token itself is never stored). Unknown,
   or of a client the caller may not see (need-to-know): 410 `wrap_token_invalid`. Someone else's
   release, or a third party's: 403 `forbidden`. Nothing is consumed.
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
   If that commit fails (the audit refused, the database gone), the plaintext is dropped, and the
   release is closed in a transaction of its own (`revoked`, `unwrap_not_recorded`, audited when
   the audit takes it): its token is spent, and a retry must be a plain 410, not a false
   `security.wrap_token_reused`.

Every refusal is audited (`unwrap.refused` with the reason, and the rule for a failed re-check): the
steps raise `Refused`, and `unwrap_token` commits its audit entry (with any status change the step
made) before the error goes out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from mspkit.auth import Principal
from mspkit.errors import AppError, Forbidden, Unavailable
from mspkit.logging import get_logger
from mspkit.outbox import write_event
from mspkit.tenancy import sees_client
from secrets_broker.audit.service import Entry, append, audited_commit
from secrets_broker.common.types import utcnow
from secrets_broker.credentials.models import Credential
from secrets_broker.db import KIT, engine_of
from secrets_broker.errors import ReleaseDenied, WrapTokenInvalid, WrapTokenWrongPath
from secrets_broker.intake_client import IntakeClient
from secrets_broker.release import gate
from secrets_broker.release.models import Release
from secrets_broker.settings import Settings
from secrets_broker.unwrap.schemas import Revealed
from secrets_broker.vault.gateway import VaultGateway, credential_path, data_path
from secrets_broker.vault.wrapping import WrapClient, secret_of

log = get_logger("secrets_broker.unwrap")

# A token Vault forgets within this margin of its expiry expired; it was not intercepted.
EXPIRY_MARGIN = timedelta(seconds=2)
REUSED = "wrap_token_reused"
# Why a release whose token Vault consumed is closed when the unwrap could not be recorded.
NOT_RECORDED = "unwrap_not_recorded"


@dataclass(frozen=True)
class Attempt:
    """The technician who knocks (with their staff view, for need-to-know)."""

    user: Principal

    @property
    def sub(self) -> str:
        """Who knocks."""
        return self.user.sub

    def details(self, **extra: Any) -> dict[str, Any]:
        """Audit details: the door (`reveal/` writes `reveal`) and `extra`."""
        return {"door": "unwrap", **extra}

    def entry(self, action: str, release: Release | None, *, rule: str | None = None, **details: Any) -> Entry:
        """The audit entry of this attempt on `release` (None: no release has the token)."""
        return Entry.of_release(release, action=action, actor=self.sub, rule=rule, details=self.details(**details))

    def refused(
        self,
        release: Release | None,
        reason: str,
        error: AppError,
        *,
        action: str = "unwrap.refused",
        rule: str | None = None,
        consumed: bool = False,
    ) -> Refused:
        """The refusal of this attempt: `action` audited with `reason` (and `rule`), then `error`.

        `consumed`: this attempt already spent the token at Vault.
        """
        return Refused(self.entry(action, release, rule=rule, reason=reason), error, consumed=consumed)


class Refused(Exception):
    """A refusal on the way to the plaintext: the entry to commit, then the error to answer."""

    def __init__(self, entry: Entry, error: AppError, *, consumed: bool = False) -> None:
        super().__init__(entry.action)
        self.entry = entry
        self.error = error
        self.consumed = consumed


def expected_path(release: Release) -> str:
    """The only creation path a token of this release may carry."""
    return data_path(credential_path(release.client_id, release.credential_id))


def _gone() -> WrapTokenInvalid:
    return WrapTokenInvalid("the token was already used, revoked or has expired")


def _intercepted(session: Session, attempt: Attempt, release: Release, now: datetime) -> Refused:
    """The token was unwrapped by someone else: close the release, alert the client's admins, 410."""
    release.close("revoked", "intercepted", now)
    # Until the notification service exists, `release.denied` is how the client's admins hear of it.
    write_event(
        session,
        KIT,
        type="release.denied",
        client_id=release.client_id,
        aggregate_id=release.id,
        data=gate.release_event_data(release, rule=REUSED, reason=REUSED),
    )
    log.warning("wrap_token_reused", release_id=str(release.id))
    return attempt.refused(release, REUSED, _gone(), action="security.wrap_token_reused")


def _find_release(session: Session, *, token: str, settings: Settings) -> Release | None:
    """The release whose token has this HMAC fingerprint, or None."""
    digest = gate.fingerprint(settings.fingerprint_key_bytes(), token)
    return session.execute(select(Release).where(col(Release.token_fingerprint) == digest)).scalar_one_or_none()


def _lock_release(session: Session, release: Release) -> Release:
    gate.lock_task_and_client(session, release.person_task_id, release.client_id)
    return session.execute(
        select(Release).where(col(Release.id) == release.id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()


def _release_for(session: Session, token: str, attempt: Attempt, settings: Settings) -> Release:
    """Steps 1 and 2: the live, locked release this attempt may open."""
    release = _find_release(session, token=token, settings=settings)
    if release is None:
        raise attempt.refused(None, "unknown", _gone())
    if not sees_client(attempt.user, release.client_id):
        # A client they may not see (need-to-know): as an unknown token, whoever's release it is.
        raise attempt.refused(release, "need_to_know", _gone())
    if release.recipient_type != "technician" or release.technician != attempt.sub:
        raise attempt.refused(release, "not_recipient", Forbidden("not your release"))
    release = _lock_release(session, release)
    now = utcnow()
    if release.status != "issued":
        raise attempt.refused(release, release.status, _gone())
    if release.expires_at <= now:
        release.close("expired", None, now)
        raise attempt.refused(release, "expired", _gone())
    return release


def _recheck(
    session: Session, release: Release, credential: Credential, attempt: Attempt, intake: IntakeClient, now: datetime
) -> None:
    """Step 3: the release's rules on intake's live view, then the tombstones."""
    rule = gate.live_rule(session, release, credential, intake, now)
    if rule is not None:
        raise attempt.refused(release, "recheck_failed", ReleaseDenied(rule), rule=rule)


def _unwrap_at_vault(
    session: Session, release: Release, token: str, attempt: Attempt, wraps: WrapClient, now: datetime
) -> str:
    """Steps 4 and 5 at Vault: look the token up (path and presence), then unwrap it; the secret."""
    info = wraps.lookup(token)
    if info is None:
        if utcnow() >= release.expires_at - EXPIRY_MARGIN:
            release.close("expired", None, now)
            raise attempt.refused(release, "expired", _gone())
        raise _intercepted(session, attempt, release, now)
    if info.creation_path != expected_path(release):
        log.warning("wrap_token_wrong_path", release_id=str(release.id))
        wrong_path = WrapTokenWrongPath("the token does not wrap this release's credential")
        raise attempt.refused(release, "wrong_path", wrong_path, action="security.wrap_token_wrong_path")
    response = wraps.unwrap(token)
    if response is None:
        # Gone between the lookup and the unwrap: someone else unwrapped it just now.
        raise _intercepted(session, attempt, release, now)
    secret = secret_of(response)
    del response
    if secret is None:
        release.close("revoked", "unwrap_malformed", now)
        raise attempt.refused(release, "malformed", Unavailable("Vault returned no secret"), consumed=True)
    return secret


def _note_spent(engine: Engine, note: Entry) -> None:
    """Close the release of a spent token in transactions of its own: with `note` audited, else without."""
    close = (
        update(Release)
        .where(col(Release.id) == note.release_id, col(Release.status) == "issued")
        .values(status="revoked", closed_reason=NOT_RECORDED, updated_at=utcnow())
    )
    try:
        with Session(engine) as session, session.begin():
            session.execute(close)
            append(session, note)
        return
    except (AppError, SQLAlchemyError) as exc:
        log.error("unwrap_outcome_not_audited", release_id=str(note.release_id), error=type(exc).__name__)
    try:
        # The audit is what failed: the row alone still stops the retry's false alarm.
        with Session(engine) as session, session.begin():
            session.execute(close)
    except SQLAlchemyError as exc:
        log.error("unwrap_outcome_not_recorded", release_id=str(note.release_id), error=type(exc).__name__)


@contextmanager
def _closed_if_unrecorded(session: Session, entry: Entry, attempt: Attempt) -> Iterator[None]:
    """Around the commit that follows a consuming unwrap: should it fail, close the release anyway."""
    note = replace(entry, action="unwrap.refused", rule=None, details=attempt.details(reason=NOT_RECORDED), at=None)
    try:
        yield
    except BaseException:
        try:
            session.rollback()
        except SQLAlchemyError:
            log.warning("rollback_failed", release_id=str(entry.release_id))
        _note_spent(engine_of(session), note)
        raise


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
    try:
        release = _release_for(session, token, attempt, settings)
        now = utcnow()
        credential = session.get(Credential, release.credential_id)
        if credential is None:  # the foreign key makes this unreachable; fail closed anyway
            raise Unavailable("credential metadata missing")
        _recheck(session, release, credential, attempt, intake, now)
        secret = _unwrap_at_vault(session, release, token, attempt, wraps, now)
    except Refused as refused:
        if not refused.consumed:
            audited_commit(session, refused.entry, gateway=gateway, settings=settings)
            raise refused.error from None
        with _closed_if_unrecorded(session, refused.entry, attempt):
            audited_commit(session, refused.entry, gateway=gateway, settings=settings)
        raise refused.error from None
    release.close("unwrapped", None, utcnow())
    # Unrecorded disclosure is no disclosure: if this fails, the plaintext is dropped with this frame.
    succeeded = attempt.entry("unwrap.succeeded", release, recipient_type=release.recipient_type)
    with _closed_if_unrecorded(session, succeeded, attempt):
        audited_commit(session, succeeded, gateway=gateway, settings=settings)
    return Revealed(
        credential_id=credential.id,
        name=credential.name,
        username=credential.username,
        secret=secret,
        url=credential.url,
    )
