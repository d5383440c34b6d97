"""The audit chain as stored: links, concurrency, listing, verification and the Vault anchor."""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from broker_helpers import World
from sqlalchemy import text
from sqlmodel import Session


def _append(engine: Any, **kw: Any) -> Any:
    from secrets_broker.audit.service import Entry, append

    with Session(engine, expire_on_commit=False) as session:
        index = append(session, Entry(**kw))
        session.commit()
        return index


def test_entries_link_and_hash_their_canonical_text(engine: Any) -> None:
    from secrets_broker.audit.chain import entry_hash

    client_id = uuid.uuid4()
    first = _append(engine, action="credential.created", actor="admin-1", client_id=client_id)
    second = _append(engine, action="release.denied", actor="tech-1", client_id=client_id, rule="out_of_scope")

    assert second > first
    with engine.connect() as conn:
        rows = conn.execute(
            text('SELECT "index", canonical, prev_hash, hash FROM audit_entries WHERE client_id = :c ORDER BY "index"'),
            {"c": client_id},
        ).all()
    for row in rows:
        assert row.hash == entry_hash(row.prev_hash, row.canonical)
        doc = json.loads(row.canonical)
        assert doc["index"] == row.index and doc["client_id"] == str(client_id)
    assert json.loads(rows[1].canonical)["rule"] == "out_of_scope"


def test_concurrent_writers_never_fork_the_chain(engine: Any) -> None:
    client_id = uuid.uuid4()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(5):
                _append(engine, action="unwrap.refused", actor=f"w{n}", client_id=client_id, details={"i": i})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    with engine.connect() as conn:
        rows = conn.execute(text('SELECT "index", prev_hash, hash FROM audit_entries ORDER BY "index"')).all()
    assert [r.index for r in rows] == list(range(len(rows)))
    for prev, row in itertools.pairwise(rows):
        assert row.prev_hash == prev.hash
    assert sum(1 for _ in rows) >= 30


def test_listing_filters_and_tenancy(world: World) -> None:
    client_id = world.new_client()
    credential_id, _ = world.new_credential(client_id)
    other_client = world.new_client()
    world.new_credential(other_client)

    admin_view = world.broker.get("/v1/audit", params={"client_id": str(client_id)}, headers=world.admin)
    assert admin_view.status_code == 200
    items = admin_view.json()["items"]
    assert [(i["action"], i["credential_id"]) for i in items] == [("credential.created", str(credential_id))]
    assert items[0]["details"]["category"] == "isp"
    assert set(items[0]) >= {"index", "action", "actor", "task_id", "credential_id", "rule", "created_at"}

    boss = world.auth("client_admin", "boss", client_id)
    own = world.broker.get("/v1/audit", headers=boss).json()["items"]
    assert {i["client_id"] for i in own} == {str(client_id)}
    # Naming another client is the 404 of a missing client (the contract), not a silently narrowed list.
    foreign = world.broker.get("/v1/audit", params={"client_id": str(other_client)}, headers=boss)
    assert (foreign.status_code, foreign.json()) == (404, {"error": "not_found", "detail": "client not found"})
    assert world.broker.get("/v1/audit", headers=world.tech("tech-1")).status_code == 403
    bad = world.broker.get("/v1/audit", params={"cursor": "bm9wZQ=="}, headers=world.admin)
    assert (bad.status_code, bad.json()["field"]) == (422, "cursor")


def test_listing_pages_in_chain_order(world: World, engine: Any) -> None:
    client_id = uuid.uuid4()
    for _ in range(5):
        _append(engine, action="unwrap.refused", actor="x", client_id=client_id)
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"client_id": str(client_id), "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = world.broker.get("/v1/audit", params=params, headers=world.admin).json()
        seen += [i["index"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 5 and seen == sorted(seen)


def test_verify_walks_the_whole_chain(world: World, engine: Any) -> None:
    world.new_credential(world.new_client())
    r = world.broker.get("/v1/audit/verify", headers=world.admin)
    assert r.status_code == 200
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM audit_entries")).scalar_one()
    assert r.json() == {"ok": True, "entries": count, "first_bad_index": None}
    boss = world.auth("client_admin", "boss", uuid.uuid4())
    assert world.broker.get("/v1/audit/verify", headers=boss).json()["ok"] is True
    assert world.broker.get("/v1/audit/verify", headers=world.tech("t")).status_code == 403


def test_anchor_cadence_and_content(engine: Any, gateway: Any) -> None:
    from secrets_broker.audit.anchor import maybe_anchor

    t0 = datetime.now(UTC)
    _append(engine, action="unwrap.refused", actor="anchor-test")
    assert maybe_anchor(engine, gateway, force=True, now=t0)
    with engine.connect() as conn:
        head = conn.execute(text('SELECT "index", hash FROM audit_entries ORDER BY "index" DESC LIMIT 1')).one()
    latest = gateway.read_anchors()[-1]
    assert (latest["index"], latest["hash"]) == (head.index, head.hash)

    # Nothing new: nothing to anchor, even when due.
    assert not maybe_anchor(engine, gateway, now=t0 + timedelta(seconds=5))
    _append(engine, action="unwrap.refused", actor="anchor-test")
    # Within the second and under 100 entries: not yet.
    assert not maybe_anchor(engine, gateway, interval_s=1.0, every=100, now=t0 + timedelta(milliseconds=500))
    # Over 100 entries' worth (here: every=1) within the second: now.
    assert maybe_anchor(engine, gateway, interval_s=1.0, every=1, now=t0 + timedelta(milliseconds=600))
    _append(engine, action="unwrap.refused", actor="anchor-test")
    assert maybe_anchor(engine, gateway, interval_s=1.0, every=100, now=t0 + timedelta(seconds=2))
    assert gateway.read_anchors()[-1]["index"] == head.index + 2
