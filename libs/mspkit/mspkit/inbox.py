"""Exactly-once effects: the effect and the inbox row commit in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session

from mspkit.tables import KitTables

Handler = Callable[[Session, dict[str, Any]], None]


def apply_once(engine: Engine, tables: KitTables, consumer: str, envelope: dict[str, Any], handler: Handler) -> bool:
    """Run `handler` for this event unless `consumer` already applied it; True if it ran."""
    event_id = uuid.UUID(str(envelope["event_id"]))
    with Session(engine) as session, session.begin():
        # A concurrent duplicate blocks on the primary key until this commits, then inserts nothing.
        claimed = session.execute(
            insert(tables.inbox)
            .values(event_id=event_id, consumer=consumer)
            .on_conflict_do_nothing()
            .returning(tables.inbox.c.event_id)
        ).first()
        if claimed is None:
            return False
        handler(session, envelope)
    return True


def consumer(
    get_engine: Callable[[], Engine], tables: KitTables, name: str
) -> Callable[[Handler], Callable[[dict[str, Any]], bool]]:
    """Decorator: turn `handler(session, envelope)` into an idempotent consumer of envelopes."""

    def decorate(handler: Handler) -> Callable[[dict[str, Any]], bool]:
        @wraps(handler)
        def run(envelope: dict[str, Any]) -> bool:
            return apply_once(get_engine(), tables, name, envelope, handler)

        return run

    return decorate
