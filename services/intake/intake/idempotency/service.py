"""Idempotency keys: scope, body digest, the claim inside the create's transaction, replay and purge.

The first response to (scope, key) is replayed for `idempotency_ttl_s`; another body under the same
key is a 409. The key is claimed by an INSERT in the transaction that creates the request, so two
concurrent calls with one key cannot both create a request: the second waits on the primary key
until the first commits (then finds the key taken and replays it) or rolls back (then takes it).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, col

from intake.idempotency.models import IdempotencyKey
from mspkit.auth import Principal
from mspkit.errors import Conflict


@dataclass(frozen=True)
class StoredResponse:
    """A response to send (again): its status and exact bytes."""

    status_code: int
    body: bytes


@dataclass(frozen=True)
class KeyClaim:
    """One call's Idempotency-Key: its scope, the key, the body's digest and the oldest live `created_at`."""

    scope: str
    key: str
    digest: str
    cutoff: datetime

    @classmethod
    def of(cls, user: Principal, key: str, canonical_json: str, *, now: datetime, ttl_s: int) -> KeyClaim:
        """Scoped to the caller's client for client roles, else to its `sub`; SHA-256 of the validated body's JSON.

        The JSON is in model order, so the input's key order and spacing drop out of the digest.
        """
        scope = f"client:{user.client_id}" if user.is_client else f"sub:{user.sub}"
        digest = hashlib.sha256(canonical_json.encode()).hexdigest()
        return cls(scope=scope, key=key, digest=digest, cutoff=now - timedelta(seconds=ttl_s))


# Built once: the statement's shape never changes, so each call only binds its values.
_KEY = IdempotencyKey.__table__  # type: ignore[attr-defined]
_COLUMNS = ("scope", "key", "body_hash", "status_code", "response_body", "request_id")
_INSERT_KEY = insert(_KEY).values({**{c: bindparam(c) for c in _COLUMNS}, "created_at": bindparam("now")})
_CLAIM = _INSERT_KEY.on_conflict_do_update(
    index_elements=["scope", "key"],
    set_={
        c: _INSERT_KEY.excluded[c] for c in ("body_hash", "status_code", "response_body", "request_id", "created_at")
    },
    where=_KEY.c.created_at <= bindparam("cutoff"),
).returning(_KEY.c.request_id)


def claim(session: Session, *, key: KeyClaim, response: StoredResponse, request_id: uuid.UUID, now: datetime) -> bool:
    """Store the key with its response in the caller's transaction; False if a live row already holds it.

    A row created at or before the cutoff is past its TTL and is taken over in place.
    """
    params = {
        "scope": key.scope,
        "key": key.key,
        "body_hash": key.digest,
        "status_code": response.status_code,
        "response_body": response.body.decode(),
        "request_id": request_id,
        "now": now,
        "cutoff": key.cutoff,
    }
    return session.execute(_CLAIM, params).first() is not None


def replay(session: Session, *, key: KeyClaim) -> StoredResponse | None:
    """The first response to a live key (None if there is none); the key under another body is 409."""
    row = session.execute(
        select(IdempotencyKey.body_hash, IdempotencyKey.status_code, IdempotencyKey.response_body).where(
            col(IdempotencyKey.scope) == key.scope,
            col(IdempotencyKey.key) == key.key,
            col(IdempotencyKey.created_at) > key.cutoff,
        )
    ).first()
    if row is None:
        return None
    if row.body_hash != key.digest:
        raise Conflict("Idempotency-Key was already used with another body", field="Idempotency-Key")
    return StoredResponse(int(row.status_code), row.response_body.encode())


def purge_expired(session: Session, *, now: datetime, ttl_s: int, batch_size: int, max_batches: int) -> int:
    """Delete keys past their TTL, one committed batch at a time (short locks); the number deleted."""
    cutoff = now - timedelta(seconds=ttl_s)
    expired = (
        select(IdempotencyKey.scope, IdempotencyKey.key)
        .where(col(IdempotencyKey.created_at) <= cutoff)
        .order_by(col(IdempotencyKey.created_at))
        .limit(batch_size)
        # A key being taken over by a create right now is left for the next run, not waited for.
        .with_for_update(skip_locked=True)
    )
    purged = 0
    for _ in range(max_batches):
        statement = delete(IdempotencyKey).where(tuple_(IdempotencyKey.scope, IdempotencyKey.key).in_(expired))
        result = cast(CursorResult[Any], session.execute(statement))
        session.commit()
        purged += result.rowcount
        if result.rowcount < batch_size:
            break
    return purged
