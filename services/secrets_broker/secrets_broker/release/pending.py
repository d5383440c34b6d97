"""Minted tokens the API must not hand out, queued for the broker worker to revoke.

The API holds no revoke right (only the worker's `msp-broker-revoker` role does): when a release
fails after its token was minted (the re-check saw the task move, or the release could not be
recorded), the token's accessor goes to `pending_revocations` with a `release.revoke_requested`
outbox event carrying only the row's id; the worker revokes it (`revocation/service.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from mspkit.errors import Unavailable
from mspkit.logging import get_logger
from mspkit.outbox import write_event
from secrets_broker.common.types import utcnow
from secrets_broker.db import KIT, engine_of
from secrets_broker.release.models import PendingRevocation

log = get_logger("secrets_broker.release")


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


def revoke_later(engine: Engine, *, accessor: str, client_id: uuid.UUID | None, reason: str) -> None:
    """Queue a revocation in its own transaction, after the release's transaction failed."""
    try:
        with Session(engine) as session, session.begin():
            request_revocation(session, accessor=accessor, release_id=None, client_id=client_id, reason=reason)
    except SQLAlchemyError as exc:
        # The token cannot be recorded for revocation; it still dies at its wrap TTL.
        log.error("revocation_not_recorded", reason=reason, error=type(exc).__name__)


@contextmanager
def revoke_on_failure(session: Session, *, accessor: str, client_id: uuid.UUID, reason: str) -> Iterator[None]:
    """Around the steps after a token was minted: any failure rolls back and queues its revocation.

    Any exception at all, not only the expected ones: a token no caller received must not stay live
    for its TTL because the error was of an unforeseen kind. The revocation is queued in its own
    transaction (the request's is gone) and the error passes on; a database error becomes 503
    without its text.
    """
    try:
        yield
    except BaseException as exc:
        try:
            session.rollback()
        except SQLAlchemyError as rollback_exc:
            # A dead connection cannot roll back; the revocation uses a connection of its own.
            log.warning("rollback_failed", reason=reason, error=type(rollback_exc).__name__)
        revoke_later(engine_of(session), accessor=accessor, client_id=client_id, reason=reason)
        if not isinstance(exc, SQLAlchemyError):
            raise
        log.error("release_not_recorded", reason=reason, error=type(exc).__name__)
        raise Unavailable("release could not be recorded") from None
