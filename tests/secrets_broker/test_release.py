"""Releases against a real intake and a real OpenBao: the rules, the token, the records."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime
from typing import Any

from broker_helpers import STRONG_REASON, World, lookup_at_vault, unwrap_at_vault
from sqlalchemy import text


def _audit_for(engine: Any, task_id: uuid.UUID) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT action, rule, actor, release_id FROM audit_entries WHERE task_id = :t ORDER BY index"),
                {"t": task_id},
            )
        )


def _outbox_types(engine: Any, aggregate_or_task: uuid.UUID) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT type FROM outbox WHERE envelope->>'aggregate_id' = :a "
                "OR envelope->'data'->>'task_id' = :a ORDER BY id"
            ),
            {"a": str(aggregate_or_task)},
        )
        return [r[0] for r in rows]


def test_authorized_release_unwraps_once_to_the_stored_secret(world: World, vault_addr: str, engine: Any) -> None:
    _client_id, credential_id, secret, task_id, sub = world.ready()

    r = world.release(sub, task_id, credential_id)

    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["wrap_ttl"] == 120
    token = body["wrap_token"]
    assert token and secret not in r.text
    expires_at = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert 100 < (expires_at - datetime.now(UTC)).total_seconds() <= 121

    first = unwrap_at_vault(vault_addr, token)
    assert first.status_code == 200
    assert first.json()["data"]["data"]["secret"] == secret
    second = unwrap_at_vault(vault_addr, token)
    assert second.status_code == 400

    release_id = uuid.UUID(body["release_id"])
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT technician, recipient_type, status, token_fingerprint, wrap_accessor "
                "FROM releases WHERE id = :i"
            ),
            {"i": release_id},
        ).one()
    assert row.technician == sub and row.recipient_type == "technician" and row.status == "issued"
    from secrets_broker.settings import get_settings

    expected = hmac.new(get_settings().fingerprint_key_bytes(), token.encode(), hashlib.sha256).hexdigest()
    assert row.token_fingerprint == expected
    assert token not in (row.token_fingerprint, row.wrap_accessor)

    assert [(a.action, a.rule, a.actor, a.release_id) for a in _audit_for(engine, task_id)] == [
        ("release.granted", None, sub, release_id)
    ]
    assert "release.granted" in _outbox_types(engine, release_id)


def _cited_entries(engine: Any, task_id: uuid.UUID) -> list[tuple[str, str, Any, Any]]:
    """(event type, audit action, event's audit_index, the entry's index) for each release event of the task."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT o.type, a.action, o.envelope->'data'->'audit_index', a.index FROM outbox o"
                " JOIN audit_entries a ON a.index = (o.envelope->'data'->>'audit_index')::bigint"
                " WHERE o.envelope->'data'->>'task_id' = :t AND o.type LIKE 'release.%' ORDER BY o.id"
            ),
            {"t": str(task_id)},
        )
        return [tuple(r) for r in rows]


def test_release_events_cite_the_audit_entry_they_are_about(world: World, engine: Any) -> None:
    _, credential_id, _, task_id, sub = world.ready()
    assert world.release("tech-intruder", task_id, credential_id).status_code == 403
    assert world.release(sub, task_id, credential_id).status_code == 201
    cited = _cited_entries(engine, task_id)
    # Each event names its own entry: the refusal's, then the grant's (the PSA's note cites it).
    assert [(t, action) for t, action, _, _ in cited] == [
        ("release.denied", "release.denied"),
        ("release.granted", "release.granted"),
    ]
    assert all(isinstance(given, int) and given == index for _, _, given, index in cited)
    with engine.connect() as conn:
        task_entries = (
            conn.execute(text("SELECT index FROM audit_entries WHERE task_id = :t ORDER BY index"), {"t": task_id})
            .scalars()
            .all()
        )
    assert [index for _, _, _, index in cited] == list(task_entries)


def test_release_is_readable_by_its_technician_and_admin_only(world: World) -> None:
    _, credential_id, _, task_id, sub = world.ready()
    release_id = world.release(sub, task_id, credential_id).json()["release_id"]

    mine = world.broker.get(f"/v1/releases/{release_id}", headers=world.tech(sub))
    assert mine.status_code == 200
    assert mine.json()["status"] == "issued"
    assert mine.json()["recipient"] == {
        "kind": "technician",
        "type": "technician",
        "sub": sub,
        "name": None,
        "party_category": None,
    }
    assert mine.json()["reason"] == STRONG_REASON
    assert "wrap_token" not in mine.json()
    assert world.broker.get(f"/v1/releases/{release_id}", headers=world.admin).status_code == 200
    other = world.broker.get(f"/v1/releases/{release_id}", headers=world.tech("tech-someone-else"))
    assert other.status_code == 404
    missing = world.broker.get(f"/v1/releases/{uuid.uuid4()}", headers=world.tech(sub))
    assert missing.status_code == 404


def test_credential_of_another_client_is_client_mismatch(world: World, engine: Any) -> None:
    _client_id, _credential_id, _, task_id, sub = world.ready()
    other_client = world.new_client()
    foreign_credential, _ = world.new_credential(other_client)

    r = world.release(sub, task_id, foreign_credential)

    assert r.status_code == 403
    assert r.json()["error"] == "release_denied"
    assert r.json()["rule"] == "client_mismatch"
    assert "wrap_token" not in r.json()
    assert [(a.action, a.rule) for a in _audit_for(engine, task_id)] == [("release.denied", "client_mismatch")]
    assert "release.denied" in _outbox_types(engine, task_id)


def test_a_technician_who_is_not_the_assignee_is_refused(world: World) -> None:
    _, credential_id, _, task_id, _ = world.ready()

    r = world.release("tech-intruder", task_id, credential_id)

    assert r.status_code == 403
    assert r.json()["rule"] == "caller_not_assignee"


def test_a_release_after_reassignment_is_refused_to_the_old_assignee(world: World, vault_addr: str) -> None:
    _, credential_id, secret, task_id, sub = world.ready()
    assert world.release(sub, task_id, credential_id).status_code == 201

    world.assign(task_id, "tech-successor")

    r = world.release(sub, task_id, credential_id)
    assert r.status_code == 403
    assert r.json()["rule"] == "caller_not_assignee"
    successor = world.release("tech-successor", task_id, credential_id)
    assert successor.status_code == 201
    assert unwrap_at_vault(vault_addr, successor.json()["wrap_token"]).json()["data"]["data"]["secret"] == secret


def test_task_not_in_progress_out_of_scope_and_reason_rules(world: World) -> None:
    client_id, credential_id, _, task_id, sub = world.ready()
    unscoped, _ = world.new_credential(client_id, category="isp")
    # A category alone never puts a credential in scope.
    category_task = world.new_task(client_id, assignee=sub, categories=["isp"])

    assert world.release(sub, task_id, unscoped).json()["rule"] == "out_of_scope"
    assert world.release(sub, category_task, unscoped).json()["rule"] == "out_of_scope"
    short = world.release(sub, task_id, credential_id, reason="because")
    assert (short.status_code, short.json()["rule"]) == (403, "reason_too_short")

    world.transition(task_id, "on_hold", world.tech(sub))
    held = world.release(sub, task_id, credential_id)
    assert (held.status_code, held.json()["rule"]) == (403, "task_not_in_progress")


def test_vendor_account_and_category_together_put_a_credential_in_scope(world: World) -> None:
    client_id = world.new_client()
    account = world.new_vendor_account(client_id)
    credential_id, _ = world.new_credential(client_id, category="registrar", vendor_account_id=account)
    sub = f"tech-{uuid.uuid4().hex[:8]}"
    wrong_category = world.new_task(client_id, assignee=sub, vendor_account_ids=[account], categories=["isp"])
    right = world.new_task(client_id, assignee=sub, vendor_account_ids=[account], categories=["registrar"])

    assert world.release(sub, wrong_category, credential_id).json()["rule"] == "out_of_scope"
    assert world.release(sub, right, credential_id).status_code == 201


def test_missing_reason_is_a_validation_error(world: World) -> None:
    _, credential_id, _, task_id, sub = world.ready()
    r = world.broker.post(
        "/v1/releases",
        headers=world.tech(sub),
        json={"task_id": str(task_id), "credential_id": str(credential_id)},
    )
    assert r.status_code == 422
    assert r.json()["field"] == "reason"
    extra = world.broker.post(
        "/v1/releases",
        headers=world.tech(sub),
        json={"task_id": str(task_id), "credential_id": str(credential_id), "reason": STRONG_REASON, "ttl": 9999},
    )
    assert (extra.status_code, extra.json()["field"]) == (422, "ttl")


def test_only_technicians_may_ask_for_a_release(world: World) -> None:
    _, credential_id, _, task_id, _ = world.ready()
    body = {"task_id": str(task_id), "credential_id": str(credential_id), "reason": STRONG_REASON}
    assert world.broker.post("/v1/releases", headers=world.admin, json=body).status_code == 403
    assert world.broker.post("/v1/releases", json=body).status_code == 401


def test_unknown_task_or_credential_is_404(world: World) -> None:
    _, credential_id, _, task_id, sub = world.ready()
    assert world.release(sub, uuid.uuid4(), credential_id).status_code == 404
    assert world.release(sub, task_id, uuid.uuid4()).status_code == 404


def test_quota_counts_releases_of_the_task_in_the_last_hour(world: World, broker_app: Any) -> None:
    from secrets_broker.deps import settings_dep
    from secrets_broker.settings import get_settings

    _, credential_id, _, task_id, sub = world.ready()
    broker_app.dependency_overrides[settings_dep] = lambda: get_settings().model_copy(
        update={"release_quota_per_hour": 2}
    )

    assert world.release(sub, task_id, credential_id).status_code == 201
    assert world.release(sub, task_id, credential_id).status_code == 201
    third = world.release(sub, task_id, credential_id)
    assert (third.status_code, third.json()["rule"]) == (403, "quota_exceeded")


def test_tombstones_refuse_whatever_intake_says(world: World, engine: Any) -> None:
    client_id, credential_id, _, task_id, sub = world.ready()
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO tombstones (id, task_id, reason, created_at) VALUES (:i, :t, 'task.cancelled', now())"),
            {"i": uuid.uuid4(), "t": task_id},
        )
    assert world.release(sub, task_id, credential_id).json()["rule"] == "task_not_in_progress"
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO tombstones (id, client_id, reason, created_at) VALUES (:i, :c, 'client.closed', now())"),
            {"i": uuid.uuid4(), "c": client_id},
        )
    assert world.release(sub, task_id, credential_id).json()["rule"] == "client_not_active"


def test_wrap_token_is_for_the_credential_path(world: World, vault_addr: str) -> None:
    client_id, credential_id, _, task_id, sub = world.ready()
    token = world.release(sub, task_id, credential_id).json()["wrap_token"]
    data = lookup_at_vault(vault_addr, token).json()["data"]
    assert data["creation_path"] == f"msp-kv/data/clients/{client_id}/credentials/{credential_id}"
    assert data["creation_ttl"] == 120


def test_concurrent_releases_cannot_overrun_the_quota(world: World, broker_app: Any) -> None:
    import threading

    from fastapi.testclient import TestClient

    from secrets_broker.deps import settings_dep
    from secrets_broker.settings import get_settings

    _, credential_id, _, task_id, sub = world.ready()
    broker_app.dependency_overrides[settings_dep] = lambda: get_settings().model_copy(
        update={"release_quota_per_hour": 2}
    )
    body = {"task_id": str(task_id), "credential_id": str(credential_id), "reason": STRONG_REASON}
    headers = world.tech(sub)
    statuses: list[int] = []

    def ask() -> None:
        statuses.append(TestClient(broker_app).post("/v1/releases", headers=headers, json=body).status_code)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(statuses) == [201, 201, 403, 403, 403, 403]


def test_release_records_the_view_it_was_decided_on_and_when_it_rechecked(world: World, engine: Any) -> None:
    _, credential_id, _, task_id, sub = world.ready()
    view = world.intake.get(f"/v1/tasks/{task_id}", headers=world.admin).json()
    before = datetime.now(UTC)

    r = world.release(sub, task_id, credential_id)

    after = datetime.now(UTC)
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT auth_updated_at, rechecked_at FROM releases WHERE id = :i"), {"i": r.json()["release_id"]}
        ).one()
    assert row.auth_updated_at == datetime.fromisoformat(view["updated_at"].replace("Z", "+00:00"))
    assert before <= row.rechecked_at <= after


def test_a_tombstone_older_than_the_live_view_does_not_refuse(world: World, engine: Any) -> None:
    _, credential_id, _, task_id, sub = world.ready()
    # The task left in_progress earlier and came back since: intake's newer view governs.
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tombstones (id, task_id, reason, created_at, effective_at) "
                "VALUES (:i, :t, 'task_left_in_progress', now(), now() - interval '1 hour')"
            ),
            {"i": uuid.uuid4(), "t": task_id},
        )
    assert world.release(sub, task_id, credential_id).status_code == 201
