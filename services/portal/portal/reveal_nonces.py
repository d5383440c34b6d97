"""Single-use reveal nonces: issued with the task page, consumed once by the reveal POST.

Only a SHA-256 of each nonce is stored, bound to the session (its id hash), the task and the
credential, so a nonce copied from one page cannot reveal anything on another session or credential.
Consumption is one UPDATE ... WHERE used_at IS NULL RETURNING, so two POSTs racing with the same
nonce cannot both win, whichever replica they reach.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy import Engine

from portal.db import SCHEMA

# A task page left open longer than this must be reloaded before a reveal; the recent-sign-in rule
# (15 minutes) is the real gate, this only bounds how long unused rows matter.
NONCE_TTL = timedelta(hours=2)
# Rows older than this are deleted when new ones are issued (used or not, they are worthless then).
KEEP_FOR = timedelta(days=1)

metadata = sa.MetaData(schema=SCHEMA)

reveal_nonces = sa.Table(
    "reveal_nonces",
    metadata,
    sa.Column("nonce_hash", sa.String(64), primary_key=True),
    sa.Column("session_hash", sa.String(64), nullable=False),
    sa.Column("task_id", sa.Uuid, nullable=False),
    sa.Column("credential_id", sa.Uuid, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True)),
)


class Outcome(StrEnum):
    """What consuming a nonce found."""

    CONSUMED = "consumed"  # this call used it: the reveal may go ahead
    USED = "used"  # an earlier call used it: a resubmission
    INVALID = "invalid"  # unknown, expired, or issued for another session, task or credential


def _hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def issue(engine: Engine, *, session_hash: str, task_id: uuid.UUID, credential_ids: list[uuid.UUID]) -> dict[str, str]:
    """One fresh nonce per credential of a task page, keyed by credential id; old rows are swept."""
    now = datetime.now(UTC)
    nonces = {str(c): secrets.token_urlsafe(32) for c in credential_ids}
    with engine.begin() as conn:
        conn.execute(reveal_nonces.delete().where(reveal_nonces.c.created_at < now - KEEP_FOR))
        if nonces:
            conn.execute(
                reveal_nonces.insert(),
                [
                    {
                        "nonce_hash": _hash(nonce),
                        "session_hash": session_hash,
                        "task_id": task_id,
                        "credential_id": uuid.UUID(credential),
                        "created_at": now,
                    }
                    for credential, nonce in nonces.items()
                ],
            )
    return nonces


def consume(engine: Engine, *, nonce: str, session_hash: str, task_id: uuid.UUID, credential_id: uuid.UUID) -> Outcome:
    """Use a nonce once, atomically; says whether this call used it, an earlier one did, or it is not valid here."""
    now = datetime.now(UTC)
    bound = sa.and_(
        reveal_nonces.c.nonce_hash == _hash(nonce),
        reveal_nonces.c.session_hash == session_hash,
        reveal_nonces.c.task_id == task_id,
        reveal_nonces.c.credential_id == credential_id,
    )
    with engine.begin() as conn:
        won = conn.execute(
            reveal_nonces.update()
            .where(bound, reveal_nonces.c.used_at.is_(None), reveal_nonces.c.created_at > now - NONCE_TTL)
            .values(used_at=now)
            .returning(reveal_nonces.c.nonce_hash)
        ).first()
        if won is not None:
            return Outcome.CONSUMED
        used = conn.execute(sa.select(reveal_nonces.c.used_at).where(bound)).scalar_one_or_none()
    return Outcome.USED if used is not None else Outcome.INVALID
