"""The scheduler tick: queue refreshes that are due, in bounded batches, and publish lost runs again."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, and_, exists, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, col

from vendor_sync.db import utcnow
from vendor_sync.domains.models import IN_FLIGHT, IN_FLIGHT_PREDICATE, Domain, SyncRun
from vendor_sync.settings import Settings
from vendor_sync.sync.publish import publish_refreshes


@dataclass(frozen=True)
class TickResult:
    """What one tick did."""

    created: int
    requeued: int
    stale: int
    published: int

    def as_dict(self) -> dict[str, int]:
        """JSON-ready counts (the Celery task's result, and a log line)."""
        return {"created": self.created, "requeued": self.requeued, "stale": self.stale, "published": self.published}


def _queue_due_batch(engine: Engine, settings: Settings) -> tuple[list[uuid.UUID], int]:
    """One transaction: lock up to a batch of due domains with no run in flight, and queue a run for each."""
    with Session(engine) as session, session.begin():
        now = utcnow()
        in_flight = exists().where(col(SyncRun.domain_id) == col(Domain.id), col(SyncRun.status).in_(IN_FLIGHT))
        due = session.execute(
            select(col(Domain.id), col(Domain.client_id))
            .where(col(Domain.next_check_at) <= now, ~in_flight)
            .order_by(col(Domain.next_check_at), col(Domain.id))
            .limit(settings.tick_batch_size)
            # SKIP LOCKED: two ticks (or a tick and a finishing job) never wait on each other.
            .with_for_update(of=Domain, skip_locked=True)
        ).all()
        if not due:
            return [], 0
        rows = [
            {
                "id": uuid.uuid4(),
                "domain_id": domain_id,
                "client_id": client_id,
                "status": "queued",
                "trigger": "schedule",
                "enqueued_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for domain_id, client_id in due
        ]
        created = session.execute(
            insert(SyncRun)
            .values(rows)
            .on_conflict_do_nothing(
                index_elements=[col(SyncRun.domain_id)], index_where=IN_FLIGHT_PREDICATE
            )
            .returning(col(SyncRun.id))
        ).scalars()
        return list(created), len(due)


def _claim_for_publish(engine: Engine, settings: Settings, *, stale: bool) -> list[uuid.UUID]:
    """Mark a batch of runs whose message is missing or lost as enqueued now, and return them."""
    with Session(engine) as session, session.begin():
        now = utcnow()
        if stale:
            # Running for too long with no message out recently: its worker probably died.
            cutoff = now - timedelta(seconds=settings.running_stale_s)
            where = and_(
                col(SyncRun.status) == "running",
                col(SyncRun.started_at) < cutoff,
                or_(col(SyncRun.enqueued_at).is_(None), col(SyncRun.enqueued_at) < cutoff),
            )
        else:
            # Queued and due, and either never published (NULL) or published so long ago it was lost.
            where = and_(
                col(SyncRun.status) == "queued",
                or_(col(SyncRun.not_before).is_(None), col(SyncRun.not_before) <= now),
                or_(
                    col(SyncRun.enqueued_at).is_(None),
                    col(SyncRun.enqueued_at) < now - timedelta(seconds=settings.requeue_after_s),
                ),
            )
        ids = list(
            session.execute(
                select(col(SyncRun.id))
                .where(where)
                .order_by(col(SyncRun.created_at))
                .limit(settings.tick_batch_size)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        if ids:
            session.execute(update(SyncRun).where(col(SyncRun.id).in_(ids)).values(enqueued_at=now))
        return ids


def tick(*, engine: Engine, settings: Settings) -> TickResult:
    """Queue due refreshes (bounded) and republish runs whose message went missing; publish after commit."""
    created = requeued = stale = published = 0
    for _ in range(settings.tick_max_batches):
        ids, scanned = _queue_due_batch(engine, settings)
        created += len(ids)
        published += publish_refreshes(engine, ids)
        if scanned < settings.tick_batch_size:
            break
    ids = _claim_for_publish(engine, settings, stale=False)
    requeued = len(ids)
    published += publish_refreshes(engine, ids)
    ids = _claim_for_publish(engine, settings, stale=True)
    stale = len(ids)
    published += publish_refreshes(engine, ids)
    return TickResult(created=created, requeued=requeued, stale=stale, published=published)
