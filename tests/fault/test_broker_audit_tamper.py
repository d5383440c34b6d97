"""Audit verification finds SQL tampering (edit, deletion, reorder, truncated tail) and names the row.

The chain is shared by the whole test session, so every tamper is made with the superuser engine
and undone in a `finally` before the next one; verification runs over the whole chain each time.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "secrets_broker"))

import broker_fixtures
from broker_helpers import World
from sqlalchemy import text
from sqlmodel import Session

broker_app = broker_fixtures.broker_app
broker = broker_fixtures.broker
broker_live = broker_fixtures.broker_live
world = broker_fixtures.world
engine = broker_fixtures.engine
gateway = broker_fixtures.gateway
vault_addr = broker_fixtures.vault_addr

pytestmark = pytest.mark.slow

COLUMNS = (
    '"index", action, actor, client_id, task_id, credential_id, release_id, rule, canonical, prev_hash, hash, '
    "created_at"
)


def _verify(world: World) -> dict[str, Any]:
    r = world.broker.get("/v1/audit/verify", headers=world.admin)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _rows(admin_engine: Any, indices: list[int]) -> list[dict[str, Any]]:
    with admin_engine.connect() as conn:
        rows = conn.execute(
            text(f'SELECT {COLUMNS} FROM secrets_broker.audit_entries WHERE "index" = ANY(:i) ORDER BY "index"'),
            {"i": indices},
        ).mappings()
        return [dict(r) for r in rows]


def _restore(admin_engine: Any, rows: list[dict[str, Any]]) -> None:
    with admin_engine.begin() as conn:
        conn.execute(
            text('DELETE FROM secrets_broker.audit_entries WHERE "index" = ANY(:i)'),
            {"i": [r["index"] for r in rows]},
        )
        for row in rows:
            conn.execute(
                text(
                    f"INSERT INTO secrets_broker.audit_entries ({COLUMNS}) VALUES (:index, :action, :actor, "
                    ":client_id, :task_id, :credential_id, :release_id, :rule, :canonical, :prev_hash, :hash, "
                    ":created_at)"
                ),
                row,
            )


@contextmanager
def tampered(admin_engine: Any, indices: list[int], *statements: tuple[str, dict[str, Any]]) -> Iterator[None]:
    """Run tampering SQL as the superuser, then put the original rows back."""
    saved = _rows(admin_engine, indices)
    try:
        with admin_engine.begin() as conn:
            for sql, params in statements:
                conn.execute(text(sql), params)
        yield
    finally:
        _restore(admin_engine, saved)


@pytest.fixture
def head(world: World, engine: Any, gateway: Any) -> int:
    """A chain of at least a few entries, clean and anchored at its head; returns the head index."""
    from secrets_broker.audit.anchor import maybe_anchor
    from secrets_broker.audit.service import Entry, append

    for n in range(4):
        with Session(engine) as session:
            append(session, Entry(action="unwrap.refused", actor=f"tamper-{n}", client_id=uuid.uuid4()))
            session.commit()
    assert _verify(world)["ok"] is True
    maybe_anchor(engine, gateway, force=True)
    with engine.connect() as conn:
        return int(conn.execute(text('SELECT max("index") FROM audit_entries')).scalar_one())


def test_an_edited_entry_is_named(world: World, admin_engine: Any, head: int) -> None:
    k = head - 2
    edit = (
        'UPDATE secrets_broker.audit_entries SET canonical = replace(canonical, \'"actor":"tamper-\', '
        '\'"actor":"forger-\') WHERE "index" = :k',
        {"k": k},
    )
    with tampered(admin_engine, [k], edit):
        result = _verify(world)
    assert result["ok"] is False and result["first_bad_index"] == k
    assert _verify(world)["ok"] is True


def test_an_edited_column_with_a_recomputed_hash_breaks_the_next_link(
    world: World, admin_engine: Any, head: int
) -> None:
    from secrets_broker.audit.chain import entry_hash

    k = head - 2
    row = _rows(admin_engine, [k])[0]
    forged = row["canonical"].replace('"actor":"tamper-', '"actor":"forger-')
    edit = (
        'UPDATE secrets_broker.audit_entries SET canonical = :c, hash = :h WHERE "index" = :k',
        {"c": forged, "h": entry_hash(row["prev_hash"], forged), "k": k},
    )
    with tampered(admin_engine, [k], edit):
        result = _verify(world)
    assert result["ok"] is False and result["first_bad_index"] == k + 1


def test_a_deleted_entry_is_named(world: World, admin_engine: Any, head: int) -> None:
    k = head - 1
    with tampered(admin_engine, [k], ('DELETE FROM secrets_broker.audit_entries WHERE "index" = :k', {"k": k})):
        result = _verify(world)
    assert result["ok"] is False and result["first_bad_index"] == k
    assert _verify(world)["ok"] is True


def test_reordered_entries_are_named(world: World, admin_engine: Any, head: int) -> None:
    k = head - 3
    swap = [
        ('UPDATE secrets_broker.audit_entries SET "index" = -1 WHERE "index" = :k', {"k": k}),
        ('UPDATE secrets_broker.audit_entries SET "index" = :k WHERE "index" = :n', {"k": k, "n": k + 1}),
        ('UPDATE secrets_broker.audit_entries SET "index" = :n WHERE "index" = -1', {"n": k + 1}),
    ]
    with tampered(admin_engine, [k, k + 1], *swap):
        result = _verify(world)
    assert result["ok"] is False and result["first_bad_index"] == k
    assert _verify(world)["ok"] is True


def test_a_truncated_tail_is_caught_by_the_vault_anchor(world: World, admin_engine: Any, head: int) -> None:
    cut = ('DELETE FROM secrets_broker.audit_entries WHERE "index" >= :k', {"k": head - 1})
    with tampered(admin_engine, [head - 1, head], cut):
        result = _verify(world)
        with admin_engine.connect() as conn:
            remaining = conn.execute(text("SELECT count(*) FROM secrets_broker.audit_entries")).scalar_one()
    # The remaining rows link perfectly; only the anchor knows entries existed past them.
    assert result == {"ok": False, "entries": remaining, "first_bad_index": head - 1}
    assert _verify(world)["ok"] is True


def test_a_rewritten_anchored_tail_is_caught_by_the_anchor_hash(world: World, admin_engine: Any, head: int) -> None:
    from secrets_broker.audit.chain import entry_hash

    row = _rows(admin_engine, [head])[0]
    forged = row["canonical"].replace('"actor":"tamper-', '"actor":"forger-')
    rewrite = (
        'UPDATE secrets_broker.audit_entries SET canonical = :c, hash = :h WHERE "index" = :k',
        {"c": forged, "h": entry_hash(row["prev_hash"], forged), "k": head},
    )
    with tampered(admin_engine, [head], rewrite):
        result = _verify(world)
    assert result["ok"] is False and result["first_bad_index"] == head
