"""Anchoring the audit chain's head in Vault, so a rewritten or truncated chain cannot pass as whole.

The head is anchored after commit, best effort: at most once per `interval_s`, or as soon as `every`
entries accumulated, whichever comes first (and by the API's maintenance thread for a quiet tail).
`maybe_anchor` decides across processes (it holds the anchor row); `AnchorPacer` only spares a busy
process the transaction that asks it.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from mspkit.logging import get_logger
from secrets_broker.audit.chain import rfc3339
from secrets_broker.audit.models import AuditAnchorState, AuditEntry
from secrets_broker.settings import Settings
from secrets_broker.vault.errors import VaultError
from secrets_broker.vault.gateway import VaultGateway

log = get_logger("secrets_broker.audit")


# Built once: every audited request reads the head (see release/gate.py on prebuilt statements).
_HEAD: Final = select(col(AuditEntry.index), col(AuditEntry.hash)).order_by(col(AuditEntry.index).desc()).limit(1)


def chain_head(session: Session) -> tuple[int, str] | None:
    """The last entry's (index, hash), or None for an empty chain."""
    row = session.execute(_HEAD).first()
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
    now = now or datetime.now(UTC)
    try:
        with Session(engine) as session, session.begin():
            # SKIP LOCKED: another process anchoring right now does the job for us.
            state = session.execute(
                select(AuditAnchorState).where(col(AuditAnchorState.id) == 1).with_for_update(skip_locked=True)
            ).scalar_one_or_none()
            if state is None:
                return False
            head = chain_head(session)
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


class AnchorPacer:
    """Decides in-process whether asking the database about anchoring is worth a transaction.

    `maybe_anchor` is the authority (across processes); this only spares a busy API one extra
    transaction per audited request when this process tried less than `interval_s` ago and has
    appended fewer than `every` entries since.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = float("-inf")
        self._since = 0

    def due(self, *, interval_s: float, every: int) -> bool:
        """Count one appended entry; True when an anchoring attempt is due."""
        with self._lock:
            self._since += 1
            now = time.monotonic()
            if now - self._last < interval_s and self._since < every:
                return False
            self._last, self._since = now, 0
            return True


_pacer = AnchorPacer()


def anchor_after_commit(engine: Engine, gateway: VaultGateway, settings: Settings) -> None:
    """Anchor the chain head in Vault if due (best effort, after the caller's commit)."""
    if _pacer.due(interval_s=settings.audit_anchor_interval_s, every=settings.audit_anchor_every):
        maybe_anchor(engine, gateway, interval_s=settings.audit_anchor_interval_s, every=settings.audit_anchor_every)
