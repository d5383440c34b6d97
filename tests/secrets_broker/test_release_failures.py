"""Fail closed: intake unreachable, slow, malformed or changing under the release; audit insert refused."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from broker_helpers import World
from sqlalchemy import text

Reply = tuple[int, bytes, float]


class FakeIntake:
    """A tiny HTTP server answering each authorization request with the next scripted reply."""

    def __init__(self) -> None:
        self.replies: list[Callable[[str], Reply]] = []
        self.calls = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.calls += 1
                script = fake.replies[min(fake.calls, len(fake.replies)) - 1]
                status, body, delay = script(self.path)
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_intake(broker_app: Any) -> Iterator[FakeIntake]:
    """A fake intake wired into the broker app (for this test only)."""
    from secrets_broker.deps import intake_dep
    from secrets_broker.intake_client import IntakeClient, get_intake
    from secrets_broker.settings import get_settings

    fake = FakeIntake()
    real = get_intake()
    broker_app.dependency_overrides[intake_dep] = lambda: IntakeClient(
        base_url=fake.url, tokens=real._http.tokens, timeout_s=get_settings().intake_timeout_s
    )
    yield fake
    fake.close()


def view(task_id: uuid.UUID, client_id: uuid.UUID, credential_id: uuid.UUID, sub: str, **changes: Any) -> bytes:
    """An authorization view as intake would serve it."""
    body = {
        "task_id": str(task_id),
        "status": "in_progress",
        "assignee": sub,
        "assigned_by": "admin-1",
        "client_id": str(client_id),
        "client_status": "active",
        "scope": {"credential_categories": [], "vendor_account_ids": [], "credential_ids": [str(credential_id)]},
        "approvals": [],
        "updated_at": "2025-01-01T00:00:00Z",
        **changes,
    }
    return json.dumps(body).encode()


def _stored_credential(world: World) -> tuple[uuid.UUID, uuid.UUID, str]:
    client_id = world.new_client()
    credential_id, secret = world.new_credential(client_id)
    return client_id, credential_id, secret


def _release(world: World, sub: str, task_id: uuid.UUID, credential_id: uuid.UUID) -> Any:
    return world.release(sub, task_id, credential_id)


def _count(engine: Any, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def test_intake_unreachable_is_503(world: World, broker_app: Any) -> None:
    from secrets_broker.deps import intake_dep
    from secrets_broker.intake_client import IntakeClient, get_intake

    _client_id, credential_id, _ = _stored_credential(world)
    real = get_intake()
    broker_app.dependency_overrides[intake_dep] = lambda: IntakeClient(
        base_url="http://127.0.0.1:9", tokens=real._http.tokens
    )

    r = world.release("tech-a", uuid.uuid4(), credential_id)

    assert r.status_code == 503
    assert r.json()["error"] == "unavailable"


@pytest.mark.parametrize(
    "reply",
    [
        (200, b"{not json", 0.0),
        (200, b'{"task_id": "x"}', 0.0),
        (500, b'{"error": "internal_error"}', 0.0),
        (401, b'{"error": "unauthenticated"}', 0.0),
    ],
    ids=["not-json", "wrong-shape", "5xx", "token-refused"],
)
def test_intake_malformed_or_failing_is_503(world: World, fake_intake: FakeIntake, reply: Reply) -> None:
    _, credential_id, _ = _stored_credential(world)
    fake_intake.replies = [lambda _path: reply]

    r = _release(world, "tech-a", uuid.uuid4(), credential_id)

    assert r.status_code == 503
    assert "wrap_token" not in r.json()


def test_intake_slower_than_two_seconds_is_503(world: World, fake_intake: FakeIntake) -> None:
    client_id, credential_id, _ = _stored_credential(world)
    task_id = uuid.uuid4()
    fake_intake.replies = [lambda _path: (200, view(task_id, client_id, credential_id, "tech-a"), 2.3)]

    r = _release(world, "tech-a", task_id, credential_id)

    assert r.status_code == 503


def test_intake_404_is_404(world: World, fake_intake: FakeIntake) -> None:
    _, credential_id, _ = _stored_credential(world)
    fake_intake.replies = [lambda _path: (404, b'{"error": "not_found", "detail": "task not found"}', 0.0)]

    r = _release(world, "tech-a", uuid.uuid4(), credential_id)

    assert r.status_code == 404


def test_view_for_another_task_is_503(world: World, fake_intake: FakeIntake) -> None:
    client_id, credential_id, _ = _stored_credential(world)
    fake_intake.replies = [lambda _path: (200, view(uuid.uuid4(), client_id, credential_id, "tech-a"), 0.0)]

    assert _release(world, "tech-a", uuid.uuid4(), credential_id).status_code == 503


@pytest.mark.parametrize(
    ("second", "rule"),
    [
        ({"status": "on_hold", "updated_at": "2025-01-01T00:00:05Z"}, "task_not_in_progress"),
        ({"assignee": "tech-b", "updated_at": "2025-01-01T00:00:05Z"}, "caller_not_assignee"),
        ({"updated_at": "2025-01-01T00:00:05Z"}, "task_not_in_progress"),
    ],
    ids=["put-on-hold", "reassigned", "touched"],
)
def test_task_changing_while_minting_denies_and_queues_revocation(
    world: World, fake_intake: FakeIntake, engine: Any, second: dict[str, Any], rule: str
) -> None:
    client_id, credential_id, _ = _stored_credential(world)
    task_id = uuid.uuid4()
    first = view(task_id, client_id, credential_id, "tech-a")
    changed = view(task_id, client_id, credential_id, "tech-a", **second)
    fake_intake.replies = [lambda _p: (200, first, 0.0), lambda _p: (200, changed, 0.0)]

    r = _release(world, "tech-a", task_id, credential_id)

    assert r.status_code == 403
    assert r.json()["rule"] == rule
    assert "wrap_token" not in r.json()
    assert fake_intake.calls == 2
    assert _count(engine, "SELECT count(*) FROM releases WHERE task_id = :t", t=task_id) == 0
    with engine.connect() as conn:
        revocations = list(
            conn.execute(
                text(
                    "SELECT id, reason, accessor FROM pending_revocations WHERE id IN ("
                    "SELECT (envelope->'data'->>'pending_revocation_id')::uuid FROM outbox "
                    "WHERE type = 'release.revoke_requested' AND envelope->>'client_id' = :c)"
                ),
                {"c": str(client_id)},
            )
        )
        envelopes = [
            row[0]
            for row in conn.execute(
                text(
                    "SELECT envelope FROM outbox "
                    "WHERE type = 'release.revoke_requested' AND envelope->>'client_id' = :c"
                ),
                {"c": str(client_id)},
            )
        ]
        denied = list(
            conn.execute(
                text("SELECT rule FROM audit_entries WHERE task_id = :t AND action = 'release.denied'"), {"t": task_id}
            )
        )
    assert [row.reason for row in revocations] == ["task_changed"]
    # The event names the row; the accessor itself never leaves the database.
    assert revocations[0].accessor not in json.dumps(envelopes)
    assert [d.rule for d in denied] == [rule]


def test_recheck_failure_returns_no_token_and_queues_revocation(
    world: World, fake_intake: FakeIntake, engine: Any
) -> None:
    client_id, credential_id, _ = _stored_credential(world)
    task_id = uuid.uuid4()
    first = view(task_id, client_id, credential_id, "tech-a")
    fake_intake.replies = [lambda _p: (200, first, 0.0), lambda _p: (502, b"bad gateway", 0.0)]
    before = _count(engine, "SELECT count(*) FROM pending_revocations WHERE reason = 'recheck_failed'")

    r = _release(world, "tech-a", task_id, credential_id)

    assert r.status_code == 503
    assert _count(engine, "SELECT count(*) FROM pending_revocations WHERE reason = 'recheck_failed'") == before + 1
    assert _count(engine, "SELECT count(*) FROM releases WHERE task_id = :t", t=task_id) == 0


def test_unchanged_recheck_grants(world: World, fake_intake: FakeIntake, vault_addr: str) -> None:
    client_id, credential_id, secret = _stored_credential(world)
    task_id = uuid.uuid4()
    same = view(task_id, client_id, credential_id, "tech-a")
    fake_intake.replies = [lambda _p: (200, same, 0.0)]

    r = _release(world, "tech-a", task_id, credential_id)

    assert r.status_code == 201
    assert fake_intake.calls == 2
    unwrapped = requests.post(
        f"{vault_addr}/v1/sys/wrapping/unwrap", headers={"X-Vault-Token": r.json()["wrap_token"]}, timeout=5
    )
    assert unwrapped.json()["data"]["data"]["secret"] == secret


@contextmanager
def audit_insert_revoked(admin_engine: Any) -> Iterator[None]:
    """REVOKE INSERT on the audit table from the broker's own role, then GRANT it back."""
    with admin_engine.begin() as conn:
        conn.execute(text("REVOKE INSERT ON secrets_broker.audit_entries FROM secrets_broker"))
    try:
        yield
    finally:
        with admin_engine.begin() as conn:
            conn.execute(text("GRANT INSERT ON secrets_broker.audit_entries TO secrets_broker"))


def test_audit_insert_refused_returns_no_secret(
    world: World, engine: Any, admin_engine: Any, devstack_dir: Any, vault_addr: str
) -> None:
    _, credential_id, secret, task_id, sub = world.ready()

    with audit_insert_revoked(admin_engine):
        r = world.release(sub, task_id, credential_id)
        # A denial that cannot be audited is not a 403 either: nothing is decided without a record.
        denied = world.release("tech-intruder", task_id, credential_id)

    assert r.status_code == 503
    assert r.json()["error"] == "unavailable"
    assert "wrap_token" not in r.json() and secret not in r.text
    assert denied.status_code == 503
    assert _count(engine, "SELECT count(*) FROM releases WHERE task_id = :t", t=task_id) == 0
    assert _count(engine, "SELECT count(*) FROM audit_entries WHERE task_id = :t", t=task_id) == 0
    with engine.connect() as conn:
        accessor = conn.execute(
            text(
                "SELECT accessor FROM pending_revocations WHERE reason = 'release_not_recorded' "
                "ORDER BY created_at DESC LIMIT 1"
            )
        ).scalar_one()
    # Inspect with the root token: the queued accessor is the response-wrapping token just minted.
    root = (devstack_dir / "bao" / "root-token").read_text().strip()
    info = requests.post(
        f"{vault_addr}/v1/auth/token/lookup-accessor",
        headers={"X-Vault-Token": root},
        json={"accessor": accessor},
        timeout=5,
    ).json()["data"]
    assert info["policies"] == ["response-wrapping"]
    # With the grant back, the same release goes through.
    assert world.release(sub, task_id, credential_id).status_code == 201
