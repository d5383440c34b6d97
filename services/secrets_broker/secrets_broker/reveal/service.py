"""Revealing a third party's mailed code: a live re-check, then a Vault wrap and unwrap inside the broker.

Order of one reveal (`POST /v1/reveal {code}`, no bearer token; the route has already counted the
caller's address against the rate limit):

1. Find the third party's release by the code's HMAC (`gate.fingerprint`; the code is never
   stored). Unknown: 410 `reveal_code_invalid`, counted (`msp_broker_reveal_refused_total`) and
   logged, but not written to the audit chain: guesses must not queue on the chain's global lock.
2. Take the task's advisory lock and the client's lock shared (the release path's and the revoker's
   keys) and read the release. Not `issued` (used or revoked) or past its `expires_at`: 410, audited
   as `unwrap.refused` with the reason (an expired one is closed as `expired`).
3. Re-check intake live with the release's own rules (`policy.recheck`: its technician still the
   assignee of an in-progress task of an active client whose scope holds the credential; the
   approval still approved, unexpired and naming it) and the tombstones. A failure revokes the
   release for good (`unwrap.refused` with the rule, then `release.revoked`) and answers 410.
   Intake unreachable: 503, and nothing changes.
4. Claim the code: `UPDATE … SET status = 'unwrapped' WHERE id = … AND status = 'issued'`. A second
   reveal of the same code waits on the task's lock and then finds it `unwrapped` (step 2).
5. Wrap the credential at Vault for a few seconds and unwrap it at once; the wrapping token never
   leaves this module. Audit `unwrap.succeeded` and COMMIT (the chain's lock is taken only here,
   after the Vault calls), then return the plaintext, sent with `Cache-Control: no-store`.

Vault failing after the claim (or the audit write, or the COMMIT): the transaction rolls back, so
the claim is undone and the code stays usable. Nobody got the plaintext (it is dropped with this
frame), so a retry discloses nothing twice; a wrapping token minted before the failure is queued
for the worker to revoke. A process dying mid-reveal also rolls back. The task's and client's locks
are held across the intake read and the Vault calls, as in unwrap: the revoker cannot close the
task between the re-check and the claim, it waits and then finds the release `unwrapped`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from prometheus_client import Counter
from sqlalchemy import select, update
from sqlmodel import Session, col

from mspkit.errors import AppError, Gone, Unavailable
from mspkit.logging import get_logger
from secrets_broker.audit.service import Entry, append, audited_commit
from secrets_broker.common.types import utcnow
from secrets_broker.credentials.models import Credential
from secrets_broker.intake_client import IntakeClient
from secrets_broker.release import gate
from secrets_broker.release.models import Release
from secrets_broker.release.pending import revoke_on_failure
from secrets_broker.reveal.schemas import Revealed
from secrets_broker.settings import Settings
from secrets_broker.vault.errors import VaultError
from secrets_broker.vault.gateway import VaultGateway, credential_path
from secrets_broker.vault.wrapping import WrapClient, secret_of

log = get_logger("secrets_broker.reveal")

# Every refused reveal, by reason (unknown, unwrapped, revoked, expired, recheck_failed): alert on a
# rise of `unknown` (guessing) as on any `recheck_failed`.
REVEAL_REFUSED = Counter("msp_broker_reveal_refused", "Refused POST /v1/reveal attempts, by reason", ["reason"])
BROKER_ACTOR: Final = "svc:secrets_broker"
RECHECK_FAILED: Final = "recheck_failed"


class RevealCodeInvalid(Gone):
    """410 `reveal_code_invalid`: the code is unknown, used, expired or withdrawn."""

    code = "reveal_code_invalid"


def _gone() -> RevealCodeInvalid:
    # One answer for every dead code: an unauthenticated caller learns nothing about why.
    return RevealCodeInvalid("this link was already used, has expired or was withdrawn", field="code")


class _Refused(Exception):
    """A refusal of a known code: the entries to commit, then 410."""

    def __init__(self, reason: str, *entries: Entry) -> None:
        super().__init__(reason)
        self.reason = reason
        self.entries = entries


def _actor(release: Release) -> str:
    return f"third_party:{release.approval_id}"


def _details(client_ip: str, **extra: Any) -> dict[str, Any]:
    return {"door": "reveal", "client_ip": client_ip, **extra}


def _refused(release: Release, reason: str, client_ip: str, *, rule: str | None = None) -> Entry:
    return Entry.of_release(
        release, action="unwrap.refused", actor=_actor(release), rule=rule, details=_details(client_ip, reason=reason)
    )


def _locked_release(session: Session, code: str, settings: Settings) -> Release | None:
    """Step 1 and 2: the third party's release holding this code, read under the task's lock."""
    digest = gate.fingerprint(settings.fingerprint_key_bytes(), code)
    found = session.execute(
        select(col(Release.id), col(Release.task_id), col(Release.client_id)).where(
            col(Release.token_fingerprint) == digest, col(Release.recipient_type) == "third_party"
        )
    ).first()
    if found is None:
        return None
    gate.lock_task_and_client(session, found.task_id, found.client_id)
    # A fresh read after the lock: what a reveal or the revoker committed meanwhile is seen.
    return session.execute(
        select(Release).where(col(Release.id) == found.id).execution_options(populate_existing=True)
    ).scalar_one()


def _check_open(session: Session, release: Release, client_ip: str, now: datetime) -> None:
    """Step 2: the release is still `issued` and unexpired, else a refusal."""
    if release.status != "issued":
        raise _Refused(release.status, _refused(release, release.status, client_ip))
    if release.expires_at <= now:
        release.close("expired", None, now)
        raise _Refused("expired", _refused(release, "expired", client_ip))


def _recheck_live(
    session: Session, release: Release, credential: Credential, client_ip: str, intake: IntakeClient, now: datetime
) -> None:
    """Step 3: the release's rules on intake's live view and the tombstones; a failure revokes it."""
    rule = gate.live_rule(session, release, credential, intake, now)
    if rule is None:
        return
    release.close("revoked", RECHECK_FAILED, now)
    revoked = Entry.of_release(
        release,
        action="release.revoked",
        actor=BROKER_ACTOR,
        rule=rule,
        details={"reason": RECHECK_FAILED, "recipient_type": release.recipient_type},
    )
    raise _Refused(RECHECK_FAILED, _refused(release, RECHECK_FAILED, client_ip, rule=rule), revoked)


def _claim(session: Session, release: Release, now: datetime) -> None:
    """Step 4: take the code for this reveal; only one transaction can (the row stays locked)."""
    claimed = session.execute(
        update(Release)
        .where(col(Release.id) == release.id, col(Release.status) == "issued")
        .values(status="unwrapped", updated_at=now)
        .returning(col(Release.id))
        .execution_options(synchronize_session=False)
    ).first()
    if claimed is None:  # the task's lock makes this unreachable; fail closed anyway
        raise Unavailable("the reveal code could not be claimed")


def _open_and_commit(
    session: Session,
    release: Release,
    client_ip: str,
    *,
    gateway: VaultGateway,
    wraps: WrapClient,
    settings: Settings,
) -> str:
    """Step 5: wrap and unwrap at Vault, audit, COMMIT; any failure rolls the claim back."""
    try:
        wrap = gateway.wrapped_read(
            credential_path(release.client_id, release.credential_id), ttl_s=settings.reveal_wrap_ttl_s
        )
    except VaultError:
        session.rollback()
        raise
    with revoke_on_failure(session, accessor=wrap.accessor, client_id=release.client_id, reason="reveal_failed"):
        secret = secret_of(wraps.unwrap(wrap.token))
        if secret is None:
            raise Unavailable("Vault returned no secret")
        succeeded = Entry.of_release(
            release,
            action="unwrap.succeeded",
            actor=_actor(release),
            details=_details(client_ip, recipient_type=release.recipient_type),
        )
        # Unrecorded disclosure is no disclosure: if this fails, the plaintext dies with this frame.
        audited_commit(session, succeeded, gateway=gateway, settings=settings)
    return secret


def reveal_code(
    session: Session,
    *,
    code: str,
    client_ip: str,
    intake: IntakeClient,
    gateway: VaultGateway,
    wraps: WrapClient,
    settings: Settings,
) -> Revealed:
    """`POST /v1/reveal`: show a third party's credential once; see the module docstring for the order."""
    release = _locked_release(session, code, settings)
    if release is None:
        session.rollback()
        REVEAL_REFUSED.labels("unknown").inc()
        log.info("reveal_refused", reason="unknown")
        raise _gone()
    now = utcnow()
    try:
        _check_open(session, release, client_ip, now)
        credential = session.get(Credential, release.credential_id)
        if credential is None:  # the foreign key makes this unreachable; fail closed anyway
            raise Unavailable("credential metadata missing")
        _recheck_live(session, release, credential, client_ip, intake, now)
    except _Refused as refused:
        *first, last = refused.entries
        for entry in first:
            append(session, entry)
        audited_commit(session, last, gateway=gateway, settings=settings, chain_locked=bool(first))
        REVEAL_REFUSED.labels(refused.reason).inc()
        log.info("reveal_refused", reason=refused.reason, release_id=str(release.id))
        raise _gone() from None
    except AppError:
        session.rollback()
        raise
    _claim(session, release, now)
    secret = _open_and_commit(session, release, client_ip, gateway=gateway, wraps=wraps, settings=settings)
    return Revealed(
        credential_id=credential.id,
        name=credential.name,
        username=credential.username,
        secret=secret,
        url=credential.url,
    )
