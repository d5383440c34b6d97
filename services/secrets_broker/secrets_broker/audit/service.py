"""Appending to the audit chain, committing what it records, verifying and listing it.

Writers take one transaction-scoped advisory lock, read the head and insert the next index in the
caller's transaction, so two writers can never link to the same predecessor (no fork) and an entry
exists exactly when the effect it records commits. Callers append as late as possible in their
transaction: the lock is held until their commit.

`audited_commit` is how a use case of the API ends a transaction that carries an audit entry: append,
commit, then anchor the head in Vault when due (`audit/anchor.py`). Verification walks the whole
chain and checks it against every anchor version Vault keeps, so a truncated tail or a rewritten
anchored entry is found even when the rows re-link cleanly.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from mspkit.db import advisory_xact_lock
from mspkit.errors import Unavailable, ValidationFailed
from mspkit.logging import get_logger
from mspkit.patterns import described
from secrets_broker.audit.anchor import anchor_after_commit, chain_head
from secrets_broker.audit.chain import (
    GENESIS_HASH,
    Anchor,
    ChainRow,
    VerifyResult,
    canonical_json,
    entry_hash,
    verify_chain,
)
from secrets_broker.audit.models import AuditEntry
from secrets_broker.db import engine_of
from secrets_broker.errors import AuditUnavailable
from secrets_broker.settings import Settings
from secrets_broker.vault.gateway import VaultGateway

log = get_logger("secrets_broker.audit")

LOCK_NAMESPACE: Final = "secrets_broker"
LOCK_KEY: Final = "audit-chain"
# The key of the chain's lock (as `advisory_xact_lock(session, LOCK_NAMESPACE, LOCK_KEY)` hashes
# it), for a caller that folds `pg_advisory_xact_lock(hashtextextended(key, 0))` into its own
# statement before `append(..., chain_locked=True)`; never into the statement that reads the head:
# a READ COMMITTED statement's snapshot predates the locks it waits for.
CHAIN_LOCK_KEY: Final = f"{LOCK_NAMESPACE}:{LOCK_KEY}"
# Built once, like the release path's other statements (see release/gate.py).
_INSERT_ENTRY: Final = insert(AuditEntry.__table__)  # type: ignore[attr-defined]
# An entry's columns besides its place in the chain; with `details` and the time they are what is hashed.
_OWN_COLUMNS: Final = ("action", "actor", "client_id", "task_id", "credential_id", "release_id", "rule")

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
        "disclosure.recorded",
        "disclosure.denied",
    }
)


class ReleaseIds(Protocol):
    """What an entry about a release copies from it (the release row, without importing it here)."""

    id: uuid.UUID
    client_id: uuid.UUID
    task_id: uuid.UUID | None
    credential_id: uuid.UUID


@dataclass(frozen=True)
class Entry:
    """What one audit entry says; the chain gives it its index and hashes when it is appended."""

    action: str
    actor: str
    client_id: uuid.UUID | None = None
    task_id: uuid.UUID | None = None
    credential_id: uuid.UUID | None = None
    release_id: uuid.UUID | None = None
    rule: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    at: datetime | None = None

    @classmethod
    def of_release(cls, release: ReleaseIds | None, *, action: str, actor: str, **fields: Any) -> Entry:
        """An entry about one release (its client, task, credential and id); None: about no release."""
        if release is None:
            return cls(action=action, actor=actor, **fields)
        return cls(
            action=action,
            actor=actor,
            client_id=release.client_id,
            task_id=release.task_id,
            credential_id=release.credential_id,
            release_id=release.id,
            **fields,
        )


def append(session: Session, entry: Entry, *, chain_locked: bool = False) -> int:
    """Append one entry in the caller's transaction and return its index; AuditUnavailable if it cannot be written.

    `chain_locked`: the caller already took the chain's lock in this transaction, in an earlier
    statement (see `CHAIN_LOCK_KEY`), so the head read below sees every committed entry.
    """
    if entry.action not in ACTIONS:
        raise ValueError(f"unknown audit action {entry.action!r}")
    created_at = entry.at or datetime.now(UTC)
    try:
        if not chain_locked:
            advisory_xact_lock(session, LOCK_NAMESPACE, LOCK_KEY)
        head = chain_head(session)
        index = 0 if head is None else head[0] + 1
        prev_hash = GENESIS_HASH if head is None else head[1]
        values: dict[str, Any] = {
            "index": index,
            **{name: getattr(entry, name) for name in _OWN_COLUMNS},
            "created_at": created_at,
        }
        canonical = canonical_json({**values, "details": dict(entry.details)})
        values.update(canonical=canonical, prev_hash=prev_hash, hash=entry_hash(prev_hash, canonical))
        # Not through the ORM's unit of work: the entry never changes once written, and the insert
        # is checked here, not at COMMIT.
        session.execute(_INSERT_ENTRY, values)
    except SQLAlchemyError as exc:
        log.error("audit_append_failed", action=entry.action, error=type(exc).__name__)
        raise AuditUnavailable("audit log unavailable") from None
    return index


def audited_commit(
    session: Session,
    entry: Entry,
    *,
    gateway: VaultGateway,
    settings: Settings,
    chain_locked: bool = False,
    before_commit: Callable[[int], None] | None = None,
) -> None:
    """Append `entry`, run `before_commit` with its chain index, commit, then anchor the chain head if due.

    The use case's commit for every transaction that records something in the audit log. Any
    failure rolls the whole transaction back: an audit write error raises AuditUnavailable, a
    failed COMMIT raises it too (503), and whatever `before_commit` raises passes through.
    """
    index = append(session, entry, chain_locked=chain_locked)
    if before_commit is not None:
        before_commit(index)
    try:
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        log.error("audited_commit_failed", action=entry.action, error=type(exc).__name__)
        raise AuditUnavailable(f"{entry.action} could not be recorded") from None
    anchor_after_commit(engine_of(session), gateway, settings)


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


INDEX_CURSOR_PATTERN: Final = described(r"^[0-9]{1,18}$", "must be the next_cursor of a previous page, unchanged")


def encode_index_cursor(index: int) -> str:
    """Cursor after a chain index: the index in decimal (the pattern above admits only such)."""
    return str(index)


def decode_index_cursor(cursor: str) -> int:
    """Parse a cursor from `encode_index_cursor`, or 422 naming `cursor`."""
    if not re.fullmatch(INDEX_CURSOR_PATTERN, cursor):
        raise ValidationFailed("cursor: malformed", field="cursor")
    return int(cursor)


# The columns a page of the audit log can be filtered by (equality).
FILTERS: Final = frozenset({"client_id", "task_id", "credential_id", "action"})


def list_entries(
    session: Session, *, filters: Mapping[str, object], limit: int, cursor: str | None
) -> tuple[list[AuditEntry], str | None]:
    """A page of entries in chain order matching `filters` (None matches anything), and the next cursor."""
    # The chain's order is its index (timestamps are taken before the chain lock, so they may
    # interleave), which is why this list is not a (timestamp, id) keyset like the others.
    stmt = select(AuditEntry).order_by(col(AuditEntry.index))
    for name, value in filters.items():
        if name not in FILTERS:
            raise ValueError(f"not an audit filter: {name}")
        if value is not None:
            stmt = stmt.where(getattr(AuditEntry, name) == value)
    if cursor:
        stmt = stmt.where(col(AuditEntry.index) > decode_index_cursor(cursor))
    rows = list(session.execute(stmt.limit(limit + 1)).scalars())
    items = rows[:limit]
    return items, encode_index_cursor(items[-1].index) if len(rows) > limit and items else None
