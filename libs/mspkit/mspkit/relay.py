"""Outbox relay: claims unsent rows with SKIP LOCKED, publishes to Celery, marks them sent.

A row is marked sent in the same transaction that claimed it, after the publish: a relay killed in
between leaves the row unsent, so it is published again and the consumer's inbox absorbs the copy.
Redis's `run_id` is recorded; when it changes, Redis restarted and may have lost queued messages, so
every row sent under the old run id (within the retention window) is published again.

Idle, the relay waits on its outbox's NOTIFY channel (`mspkit.migrations.create_outbox_notify`), at
most `idle_sleep_s`: a committed event is picked up at once instead of at the next poll, and a schema
without the trigger, or a lost listening connection, still gets the poll.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import psycopg
import redis
from celery import Celery
from sqlalchemy import Engine, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session

from mspkit.logging import get_logger
from mspkit.migrations import outbox_channel
from mspkit.tables import KitTables

Routes = Mapping[str, Sequence[tuple[str, str]]]
REPUBLISH_WINDOW = timedelta(hours=24)
log = get_logger("mspkit.relay")


class Relay:
    """Publishes one schema's outbox by a fixed routing table {event type: [(task name, queue)]}."""

    def __init__(
        self,
        *,
        engine: Engine,
        tables: KitTables,
        celery_app: Celery,
        routes: Routes,
        redis_url: str,
        batch_size: int = 100,
        max_backoff_s: float = 60.0,
    ) -> None:
        self.engine = engine
        self.tables = tables
        self.celery = celery_app
        self.routes = routes
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=3, socket_connect_timeout=3)
        self.batch_size = batch_size
        self.max_backoff_s = max_backoff_s
        self._listener: psycopg.Connection[Any] | None = None
        # Fault injection for the redelivery test; honoured only in the dev stack and tests.
        self._crash_after_publish = os.environ.get("MSP_ENV") in {"dev", "test"} and (
            os.environ.get("MSP_RELAY_FAULT") == "crash_after_publish"
        )

    def current_run_id(self) -> str:
        """Redis's identity: its `run_id` plus a marker key, so a restart or a FLUSHALL both change it.

        `run_id` changes when the server restarts; a flush keeps the run_id but drops the marker.
        """
        info: dict[str, Any] = self.redis.info("server")  # type: ignore[assignment]
        marker_key = f"mspkit:relay:marker:{self.tables.schema}"
        marker = self.redis.get(marker_key)
        if marker is None:
            self.redis.set(marker_key, uuid.uuid4().hex, nx=True)
            marker = self.redis.get(marker_key)
        return f"{info['run_id']}:{marker.decode() if isinstance(marker, bytes) else marker}"

    def reconcile_run_id(self, run_id: str) -> int:
        """If Redis's run_id (`current_run_id`) changed, requeue what was sent under the old one; rows requeued."""
        state = self.tables.relay_state
        outbox = self.tables.outbox
        with Session(self.engine) as session, session.begin():
            stored = session.execute(
                select(state.c.value).where(state.c.key == "redis_run_id").with_for_update()
            ).scalar_one_or_none()
            requeued = 0
            if stored is not None and stored != run_id:
                result = session.execute(
                    outbox.update()
                    .where(outbox.c.sent_run_id == stored, outbox.c.sent_at > func.now() - REPUBLISH_WINDOW)
                    .values(sent_at=None, sent_run_id=None, next_attempt_at=func.now())
                )
                requeued = result.rowcount or 0  # type: ignore[attr-defined]
                log.warning("redis_run_id_changed", requeued=requeued)
            if stored != run_id:
                session.execute(
                    insert(state)
                    .values(key="redis_run_id", value=run_id)
                    .on_conflict_do_update(
                        index_elements=[state.c.key], set_={"value": run_id, "updated_at": func.now()}
                    )
                )
        return requeued

    def publish_batch(self, run_id: str) -> int:
        """Publish up to one batch of due rows; returns how many were marked sent."""
        outbox = self.tables.outbox
        sent = 0
        with Session(self.engine) as session, session.begin():
            rows = session.execute(
                select(outbox.c.id, outbox.c.type, outbox.c.envelope, outbox.c.attempts)
                .where(outbox.c.sent_at.is_(None), outbox.c.next_attempt_at <= func.now())
                .order_by(outbox.c.id)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                try:
                    for task_name, queue in self.routes.get(row.type, ()):
                        self.celery.send_task(task_name, args=[row.envelope], queue=queue, retry=False)
                except Exception as exc:  # noqa: BLE001 - any publish failure is retried later
                    delay = min(self.max_backoff_s, 2 ** min(row.attempts, 10)) * random.uniform(0.5, 1.0)
                    session.execute(
                        outbox.update()
                        .where(outbox.c.id == row.id)
                        .values(
                            attempts=outbox.c.attempts + 1,
                            last_error=type(exc).__name__,
                            next_attempt_at=func.now() + timedelta(seconds=delay),
                        )
                    )
                    continue
                if self._crash_after_publish:
                    os._exit(137)
                session.execute(
                    outbox.update().where(outbox.c.id == row.id).values(sent_at=func.now(), sent_run_id=run_id)
                )
                sent += 1
        return sent

    def run(self, stop: threading.Event, *, idle_sleep_s: float = 0.1) -> None:
        """Loop until `stop` is set, backing off while Redis or PostgreSQL is unreachable."""
        failures = 0
        while not stop.is_set():
            try:
                # Read once per loop: the rows published below are marked with the id just reconciled.
                run_id = self.current_run_id()
                self.reconcile_run_id(run_id)
                sent = self.publish_batch(run_id)
                failures = 0
                if sent < self.batch_size:
                    self.wait_for_events(stop, idle_sleep_s)
            except Exception as exc:  # noqa: BLE001 - the relay must outlive any outage
                failures += 1
                log.warning("relay_loop_error", error=type(exc).__name__, failures=failures)
                stop.wait(min(self.max_backoff_s, 0.5 * 2 ** min(failures, 7)) * random.uniform(0.5, 1.0))
        self._close_listener()

    def wait_for_events(self, stop: threading.Event, timeout_s: float) -> None:
        """Until the outbox's NOTIFY arrives or `timeout_s` passes (the plain wait when not listening)."""
        listener = self._listen()
        if listener is None:
            stop.wait(timeout_s)
            return
        try:
            for _ in listener.notifies(timeout=timeout_s, stop_after=1):
                pass
        except psycopg.Error as exc:
            log.warning("relay_listen_lost", error=type(exc).__name__)
            self._close_listener()

    def _listen(self) -> psycopg.Connection[Any] | None:
        if self._listener is not None and not self._listener.closed:
            return self._listener
        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            listener = psycopg.connect(url, autocommit=True, connect_timeout=3)
            listener.execute(f'LISTEN "{outbox_channel(self.tables.schema)}"')
        except psycopg.Error as exc:
            # The poll still finds every row; the next idle turn tries to listen again.
            log.warning("relay_listen_failed", error=type(exc).__name__)
            return None
        self._listener = listener
        return listener

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None


def run_relay_forever(relay: Relay) -> None:
    """Entry point for a relay process: runs until SIGTERM/SIGINT."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("relay_started", schema=relay.tables.schema)
    relay.run(stop)


def pending_count(engine: Engine, tables: KitTables) -> int:
    """Rows not yet sent (for health details and tests)."""
    outbox = tables.outbox
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(outbox.c.sent_at.is_(None))).scalar_one())
