"""A test-only service for the outbox tests: its own schema, a Celery consumer and a relay entry point.

Run as `celery -A kit_test_app worker` (cwd = this dir) or `python kit_test_app.py relay`.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache

from sqlalchemy import Column, Engine, Integer, MetaData, Table, Text, Uuid, create_engine, text

from mspkit import requestid
from mspkit.inbox import apply_once
from mspkit.queue import make_celery
from mspkit.relay import Relay, run_relay_forever
from mspkit.tables import kit_tables

SCHEMA = "kit_test"
METADATA = MetaData()
KIT = kit_tables(METADATA, SCHEMA)
EFFECTS = Table("effects", METADATA, Column("event_id", Uuid), Column("note", Text), schema=SCHEMA)
DELIVERIES = Table("deliveries", METADATA, Column("event_id", Uuid), Column("n", Integer), schema=SCHEMA)
# The request id each task saw bound while it ran (by event id, or by a job's key).
SEEN_REQUEST_IDS = Table("seen_request_ids", METADATA, Column("key", Text), Column("request_id", Text), schema=SCHEMA)
ROUTES = {
    "kit.test": [("kit_test.effect", "kit_test")],
    "kit.paused": [("kit_test.effect", "kit_test_paused")],
}

app = make_celery("kit_test", os.environ.get("MSP_REDIS_URL", "redis://127.0.0.1:1/0"))


@lru_cache
def engine() -> Engine:
    """Admin engine on the test database."""
    return create_engine(os.environ["MSP_DATABASE_URL"], pool_size=2)


def create_schema(eng: Engine) -> None:
    """Create the test schema and its tables."""
    with eng.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    METADATA.create_all(eng)


@app.task(name="kit_test.effect")
def effect(envelope: dict) -> bool:
    """Count every delivery, and apply the effect once through the inbox."""
    with engine().begin() as conn:
        conn.execute(DELIVERIES.insert().values(event_id=envelope["event_id"], n=1))
        conn.execute(
            SEEN_REQUEST_IDS.insert().values(key=envelope["event_id"], request_id=requestid.current_request_id())
        )

    def _apply(session, env):  # type: ignore[no-untyped-def]
        session.execute(EFFECTS.insert().values(event_id=env["event_id"], note=env["data"].get("note")))

    return apply_once(engine(), KIT, "kit_test.effect", envelope, _apply)


@app.task(name="kit_test.note_request_id")
def note_request_id(key: str) -> None:
    """A job: record the request id bound while it runs."""
    with engine().begin() as conn:
        conn.execute(SEEN_REQUEST_IDS.insert().values(key=key, request_id=requestid.current_request_id()))


def make_relay() -> Relay:
    """A relay over the test schema's outbox."""
    return Relay(engine=engine(), tables=KIT, celery_app=app, routes=ROUTES, redis_url=os.environ["MSP_REDIS_URL"])


if __name__ == "__main__" and sys.argv[1:] == ["relay"]:
    run_relay_forever(make_relay())
