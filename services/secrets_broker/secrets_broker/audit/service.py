"""Appending to the audit chain, anchoring its head in Vault, listing and verifying it.

Writers take one transaction-scoped advisory lock, read the head and insert the next index in the
caller's transaction, so two writers can never link to the same predecessor (no fork) and an entry
exists exactly when the effect it records commits. Callers append as late as possible in their
transaction: the lock is held until their commit.

The head is anchored in Vault after commit, best effort: at most once a second, or as soon as 100
entries accumulated, whichever comes first (and by the maintenance thread for a quiet tail).
Verification walks the whole chain and checks it against every anchor version Vault keeps, so a
truncated tail or a rewritten anchored entry is found even when the rows re-link cleanly.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Engine, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from mspkit.db import advisory_xact_lock
from mspkit.errors import Unavailable, ValidationFailed
from mspkit.logging import get_logger
from secrets_broker.audit.chain import (
    GENESIS_HASH,
    Anchor,
    ChainRow,
    VerifyResult,
    canonical_json,
    entry_hash,
    rfc3339,
    verify_chain,
)
from secrets_broker.audit.models import AuditAnchorState, AuditEntry
from secrets_broker.db import SCHEMA
from secrets_broker.errors import AuditUnavailable
from secrets_broker.vault.gateway import VaultError, VaultGateway

log = get_logger("secrets_broker.audit")

LOCK_NAMESPACE: Final = "secrets_broker"
LOCK_KEY: Final = "audit-chain"

ACTIONS: Final = frozenset(
    {
        "release.granted",
        "release.denied",
        "release.revoked",
        "unwrap.succeeded",
        "unwrap.refused",
        "security.wrap_token_reused",
        "security.wrap_token_wrong_path",
        "credential.created",
        "credential.rotated",
        "service_release.granted",
        "service_release.denied",
    }
)


_ENTRY_COLUMNS: Final = tuple(column.key for column in AuditEntry.__table__.columns)  # type: ignore[attr-defined]


# The key of the chain's lock (as `advisory_xact_lock(session, LOCK_NAMESPACE, LOCK_KEY)` hashes
# it), for a caller that folds `SELECT pg_advisory_xact_lock(hashtextextended(key, 0))` into its
# own statement before `append(..., chain_locked=True)`; never into the statement that reads the
# head: a READ COMMITTED statement's snapshot predates the locks it waits for.
CHAIN_LOCK_KEY: Final = f"{LOCK_NAMESPACE}:{LOCK_KEY}"
_HEAD: Final = text(f'SELECT "index", hash FROM {SCHEMA}.audit_entries ORDER BY "index" DESC LIMIT 1')  # noqa: S608 - schema constant
_INSERT_ENTRY_TEXT: Final = text(
    f"INSERT INTO {SCHEMA}.audit_entries "  # noqa: S608 - schema and model column names only
    f"({', '.join(chr(34) + c + chr(34) for c in _ENTRY_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _ENTRY_COLUMNS)})"
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def append(
    session: Session,
    *,
    action: str,
    actor: str,
    client_id: uuid.UUID | None = None,
    task_id: uuid.UUID | None = None,
    credential_id: uuid.UUID | None = None,
    release_id: uuid.UUID | None = None,
    rule: str | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
    chain_locked: bool = False,
) -> AuditEntry:
    """Append one entry in the caller's transaction; raises AuditUnavailable if it cannot be written.

    `chain_locked`: the caller already took the chain's lock in this transaction, in an earlier
    statement (`chain_lock()`), so the head read below sees every committed entry.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    created_at = now or _utcnow()
    try:
        if not chain_locked:
            advisory_xact_lock(session, LOCK_NAMESPACE, LOCK_KEY)
        head = session.execute(_HEAD).first()
        index = 0 if head is None else int(head[0]) + 1
        prev_hash = GENESIS_HASH if head is None else str(head[1])
        canonical = canonical_json(
            {
                "index": index,
                "action": action,
                "actor": actor,
                "client_id": client_id,
                "task_id": task_id,
                "credential_id": credential_id,
                "release_id": release_id,
                "rule": rule,
                "details": details or {},
                "created_at": created_at,
            }
        )
        entry = AuditEntry(
            index=index,
            action=action,
            actor=actor,
            client_id=client_id,
            task_id=task_id,
            credential_id=credential_id,
            release_id=release_id,
            rule=rule,
            canonical=canonical,
            prev_hash=prev_hash,
            hash=entry_hash(prev_hash, canonical),
            created_at=created_at,
        )
        # A Core insert of the row's values: the entry is never changed after it is written, so the
        # ORM's unit of work (identity map, flush bookkeeping) is pure overhead on the release path.
        session.execute(_INSERT_ENTRY_TEXT, {column: getattr(entry, column) for column in _ENTRY_COLUMNS})
    except SQLAlchemyError as exc:
        log.error("audit_append_failed", action=action, error=type(exc).__name__)
        raise AuditUnavailable("audit log unavailable") from None
    return entry


def _head(session: Session) -> tuple[int, str] | None:
    row = session.execute(
        select(col(AuditEntry.index), col(AuditEntry.hash)).order_by(col(AuditEntry.index).desc()).limit(1)
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))


def maybe_anchor(
    engine: Engine,
    gateway: VaultGateway,
    *,
    interval_s: float = 1.0,
    every: int = 100,
    force: bool = False,
    now: datetime | None = None,
) -> bool:
    """Anchor the chain head in Vault when due; best effort (False on any failure). True if written."""
    now = now or _utcnow()
    try:
        with Session(engine) as session, session.begin():
            # SKIP LOCKED: another process anchoring right now does the job for us.
            state = session.execute(
                select(AuditAnchorState).where(col(AuditAnchorState.id) == 1).with_for_update(skip_locked=True)
            ).scalar_one_or_none()
            if state is None:
                return False
            head = _head(session)
            if head is None:
                return False
            index, hash_ = head
            if state.anchored_index is not None and not force:
                if index <= state.anchored_index:
                    return False
                recent = state.anchored_at is not None and (now - state.anchored_at).total_seconds() < interval_s
                if recent and index - state.anchored_index < every:
                    return False
            written = gateway.write_anchor(index=index, hash_=hash_, anchored_at=rfc3339(now))
            state.anchored_index = index
            state.anchored_hash = hash_
            state.anchored_at = now
            session.add(state)
            return written
    except (VaultError, SQLAlchemyError) as exc:
        log.warning("audit_anchor_failed", error=type(exc).__name__)
        return False


def _anchors(gateway: VaultGateway) -> list[Anchor]:
    anchors = []
    for data in gateway.read_anchors():
        try:
            anchors.append(Anchor(index=int(data["index"]), hash=str(data["hash"])))
        except (KeyError, TypeError, ValueError):
            # An anchor we cannot read proves nothing either way; refuse to call the chain good.
            raise Unavailable("audit anchor in Vault is unreadable") from None
    return anchors


def _rows(session: Session) -> Iterator[ChainRow]:
    result = session.execute(
        select(
            col(AuditEntry.index), col(AuditEntry.canonical), col(AuditEntry.prev_hash), col(AuditEntry.hash)
        )
        .order_by(col(AuditEntry.index))
        .execution_options(yield_per=1000)
    )
    for index, canonical, prev_hash, hash_ in result:
        yield ChainRow(index=int(index), canonical=canonical, prev_hash=prev_hash, hash=hash_)


def verify(session: Session, *, gateway: VaultGateway) -> VerifyResult:
    """Walk the whole chain in index order and check it against every anchor Vault keeps."""
    anchors = _anchors(gateway)
    return verify_chain(_rows(session), anchors=anchors)


# --- listing ----------------------------------------------------------------------------------


INDEX_CURSOR_PATTERN: Final = r"^[0-9]{1,18}$"


def encode_index_cursor(index: int) -> str:
    """Cursor after a chain index: the index in decimal (the pattern above admits only such)."""
    return str(index)


def decode_index_cursor(cursor: str) -> int:
    """Parse a cursor from `encode_index_cursor`, or 422 naming `cursor`."""
    if not re.fullmatch(INDEX_CURSOR_PATTERN, cursor):
        raise ValidationFailed("cursor: malformed", field="cursor")
    return int(cursor)


def list_entries(
    session: Session,
    *,
    client_id: uuid.UUID | None,
    task_id: uuid.UUID | None,
    credential_id: uuid.UUID | None,
    action: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[AuditEntry], str | None]:
    """A page of entries in chain order, with the cursor of the next page."""
    stmt = select(AuditEntry).order_by(col(AuditEntry.index))
    if client_id is not None:
        stmt = stmt.where(col(AuditEntry.client_id) == client_id)
    if task_id is not None:
        stmt = stmt.where(col(AuditEntry.task_id) == task_id)
    if credential_id is not None:
        stmt = stmt.where(col(AuditEntry.credential_id) == credential_id)
    if action is not None:
        stmt = stmt.where(col(AuditEntry.action) == action)
    if cursor:
        stmt = stmt.where(col(AuditEntry.index) > decode_index_cursor(cursor))
    rows = list(session.execute(stmt.limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_index_cursor(rows[-1].index) if more and rows else None
