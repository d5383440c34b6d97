"""Fail closed: intake unreachable, slow, malformed or changing under the release; audit insert refused."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from broker_helpers import MintingSource, World
from sqlalchemy import text
from vault_audit import vault_ops

Reply = tuple[int, bytes, float]


class FakeIntake:
    """A tiny HTTP server answering each authorization request with the next scripted reply."""

    def __init__(self) -> None:
        self.replies: list[Callable[[str], Reply]] = []
        self.calls = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/internal/clients/"):
                    # Storing a credential asks whether its client exists: every client does here.
                    client = {"id": self.path.rsplit("/", 1)[1], "status": "active"}
                    status, body, delay = 200, json.dumps(client).encode(), 0.0
                else:
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


@pytest.fixture(scope="module")
def revoker(devstack_dir: Path, vault_addr: str) -> Any:
    """A gateway logged in as the revoker role, as the broker worker is."""
    from secrets_broker.vault.gateway import VaultGateway

    gateway = VaultGateway(
        addr=vault_addr, role="msp-broker-revoker", source=MintingSource(devstack_dir, "msp-broker-revoker")
    )
    gateway.login()
    return gateway


@dataclass
class Trace:
    """Everything a release attempt on one credential can leave behind, counted from a starting point.

    Each test stores a fresh credential of a fresh client, so rows, events, entries and Vault reads
    about it are this test's alone.
    """

    engine: Any
    devstack_dir: Path
    client_id: uuid.UUID
    credential_id: uuid.UUID
    outbox_before: int = 0
    audit_before: int = 0
    vault_before: int = 0

    def __post_init__(self) -> None:
        self.outbox_before = len(self.outbox())
        self.audit_before = len(self.audit())
        self.vault_before = len(self._vault())

    def _vault(self) -> list[Any]:
        from secrets_broker.vault.gateway import credential_path, data_path

        return vault_ops(self.devstack_dir, data_path(credential_path(self.client_id, self.credential_id)))

    def releases(self) -> int:
        return _count(self.engine, "SELECT count(*) FROM releases WHERE credential_id = :c", c=self.credential_id)

    def outbox(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    text("SELECT envelope FROM outbox WHERE envelope->>'client_id' = :c ORDER BY id"),
                    {"c": str(self.client_id)},
                ).scalars()
            )

    def new_events(self) -> list[str]:
        return [e["type"] for e in self.outbox()[self.outbox_before :]]

    def audit(self) -> list[tuple[str, str | None]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT action, rule FROM audit_entries WHERE credential_id = :c ORDER BY index"),
                {"c": self.credential_id},
            )
            return [(row.action, row.rule) for row in rows]

    def new_entries(self) -> list[tuple[str, str | None]]:
        return self.audit()[self.audit_before :]

    def tokens_minted(self) -> int:
        """Response-wrapped reads of the credential since the start: each one minted a token."""
        return sum(op.wrapped for op in self._vault()[self.vault_before :])

    def queued_accessors(self) -> list[str]:
        """The accessors queued for revocation by this attempt (named by its outbox events)."""
        ids = [
            e["data"]["pending_revocation_id"]
            for e in self.outbox()[self.outbox_before :]
            if e["type"] == "release.revoke_requested"
        ]
        with self.engine.connect() as conn:
            return [
                conn.execute(text("SELECT accessor FROM pending_revocations WHERE id = :i"), {"i": i}).scalar_one()
                for i in ids
            ]

    def assert_nothing_changed(self, *, denied: str | None = None) -> None:
        """No release, no token minted; only a denial's own entry and event (when `denied` names its rule)."""
        assert self.releases() == 0
        assert self.tokens_minted() == 0
        assert self.new_entries() == ([("release.denied", denied)] if denied else [])
        assert self.new_events() == (["release.denied"] if denied else [])


def assert_no_live_token(trace: Trace, revoker: Any, vault_addr: str, devstack_dir: Path) -> None:
    """Every token the attempt minted was queued for revocation, and is dead once the worker ran."""
    from secrets_broker.revocation.service import sweep

    accessors = trace.queued_accessors()
    assert len(accessors) == trace.tokens_minted() >= 1
    sweep(trace.engine, gateway=revoker, backoff_max_s=5)
    root = (devstack_dir / "bao" / "root-token").read_text().strip()
    for accessor in accessors:
        looked_up = requests.post(
            f"{vault_addr}/v1/auth/token/lookup-accessor",
            headers={"X-Vault-Token": root},
            json={"accessor": accessor},
            timeout=5,
        )
        assert looked_up.status_code == 400, looked_up.text


def _trace(world: World, engine: Any, devstack_dir: Path) -> tuple[Trace, str]:
    """A fresh credential and the trace of everything about it; returns (trace, its secret)."""
    client_id, credential_id, secret = _stored_credential(world)
    return Trace(engine, devstack_dir, client_id, credential_id), secret


def test_intake_unreachable_is_503(world: World, broker_app: Any, engine: Any, devstack_dir: Path) -> None:
    from secrets_broker.deps import intake_dep
    from secrets_broker.intake_client import IntakeClient, get_intake

    trace, secret = _trace(world, engine, devstack_dir)
    real = get_intake()
    broker_app.dependency_overrides[intake_dep] = lambda: IntakeClient(
        base_url="http://127.0.0.1:9", tokens=real._http.tokens
    )

    r = world.release("tech-a", uuid.uuid4(), trace.credential_id)

    assert (r.status_code, r.json()["error"]) == (503, "unavailable")
    assert "wrap_token" not in r.json() and secret not in r.text
    trace.assert_nothing_changed()


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
def test_intake_malformed_or_failing_is_503(
    world: World, fake_intake: FakeIntake, engine: Any, devstack_dir: Path, reply: Reply
) -> None:
    trace, secret = _trace(world, engine, devstack_dir)
    fake_intake.replies = [lambda _path: reply]

    r = _release(world, "tech-a", uuid.uuid4(), trace.credential_id)

    assert (r.status_code, r.json()["error"]) == (503, "unavailable")
    assert "wrap_token" not in r.json() and secret not in r.text
    trace.assert_nothing_changed()


def test_intake_slower_than_two_seconds_is_503(
    world: World, fake_intake: FakeIntake, engine: Any, devstack_dir: Path
) -> None:
    trace, _ = _trace(world, engine, devstack_dir)
    task_id = uuid.uuid4()
    fake_intake.replies = [lambda _path: (200, view(task_id, trace.client_id, trace.credential_id, "tech-a"), 2.3)]

    r = _release(world, "tech-a", task_id, trace.credential_id)

    assert (r.status_code, r.json()["error"]) == (503, "unavailable")
    assert "wrap_token" not in r.json()
    trace.assert_nothing_changed()


def test_intake_404_is_404(world: World, fake_intake: FakeIntake, engine: Any, devstack_dir: Path) -> None:
    trace, _ = _trace(world, engine, devstack_dir)
    fake_intake.replies = [lambda _path: (404, b'{"error": "not_found", "detail": "task not found"}', 0.0)]

    r = _release(world, "tech-a", uuid.uuid4(), trace.credential_id)

    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    assert "wrap_token" not in r.json()
    trace.assert_nothing_changed()


def test_view_for_another_task_is_503(world: World, fake_intake: FakeIntake, engine: Any, devstack_dir: Path) -> None:
    trace, _ = _trace(world, engine, devstack_dir)
    other = view(uuid.uuid4(), trace.client_id, trace.credential_id, "tech-a")
    fake_intake.replies = [lambda _path: (200, other, 0.0)]

    r = _release(world, "tech-a", uuid.uuid4(), trace.credential_id)

    assert (r.status_code, r.json()["error"]) == (503, "unavailable")
    trace.assert_nothing_changed()


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"assignee": "tech-b"}, "caller_not_assignee"),
        ({"status": "on_hold"}, "task_not_in_progress"),
        ({"client_status": "inactive"}, "client_not_active"),
        ({"scope": {"credential_categories": [], "vendor_account_ids": [], "credential_ids": []}}, "out_of_scope"),
    ],
    ids=["not-assignee", "not-in-progress", "client-inactive", "out-of-scope"],
)
def test_a_denial_records_only_itself(
    world: World, fake_intake: FakeIntake, engine: Any, devstack_dir: Path, changes: dict[str, Any], rule: str
) -> None:
    trace, secret = _trace(world, engine, devstack_dir)
    task_id = uuid.uuid4()
    denying = view(task_id, trace.client_id, trace.credential_id, "tech-a", **changes)
    fake_intake.replies = [lambda _p: (200, denying, 0.0)]

    r = _release(world, "tech-a", task_id, trace.credential_id)

    assert r.status_code == 403
    assert r.json() == {"error": "release_denied", "rule": rule, "detail": f"release denied: {rule}"}
    assert secret not in r.text
    assert fake_intake.calls == 1  # decided on the first read: nothing minted, nothing to re-check
    trace.assert_nothing_changed(denied=rule)


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
    world: World,
    fake_intake: FakeIntake,
    engine: Any,
    devstack_dir: Path,
    revoker: Any,
    vault_addr: str,
    second: dict[str, Any],
    rule: str,
) -> None:
    trace, secret = _trace(world, engine, devstack_dir)
    task_id = uuid.uuid4()
    first = view(task_id, trace.client_id, trace.credential_id, "tech-a")
    changed = view(task_id, trace.client_id, trace.credential_id, "tech-a", **second)
    fake_intake.replies = [lambda _p: (200, first, 0.0), lambda _p: (200, changed, 0.0)]

    r = _release(world, "tech-a", task_id, trace.credential_id)

    assert r.status_code == 403
    assert r.json() == {"error": "release_denied", "rule": rule, "detail": f"release denied: {rule}"}
    assert secret not in r.text
    assert fake_intake.calls == 2
    assert trace.releases() == 0
    assert trace.new_entries() == [("release.denied", rule)]
    assert sorted(trace.new_events()) == ["release.denied", "release.revoke_requested"]
    with engine.connect() as conn:
        reasons = list(
            conn.execute(
                text(
                    "SELECT reason FROM pending_revocations WHERE id IN ("
                    "SELECT (envelope->'data'->>'pending_revocation_id')::uuid FROM outbox "
                    "WHERE type = 'release.revoke_requested' AND envelope->>'client_id' = :c)"
                ),
                {"c": str(trace.client_id)},
            ).scalars()
        )
    assert reasons == ["task_changed"]
    # The event names the row; the accessor itself never leaves the database.
    accessors = trace.queued_accessors()
    assert not any(a in json.dumps(trace.outbox()) for a in accessors)
    assert_no_live_token(trace, revoker, vault_addr, devstack_dir)


def test_recheck_failure_returns_no_token_and_queues_revocation(
    world: World, fake_intake: FakeIntake, engine: Any, devstack_dir: Path, revoker: Any, vault_addr: str
) -> None:
    trace, _ = _trace(world, engine, devstack_dir)
    task_id = uuid.uuid4()
    first = view(task_id, trace.client_id, trace.credential_id, "tech-a")
    fake_intake.replies = [lambda _p: (200, first, 0.0), lambda _p: (502, b"bad gateway", 0.0)]

    r = _release(world, "tech-a", task_id, trace.credential_id)

    assert (r.status_code, r.json()["error"]) == (503, "unavailable")
    assert "wrap_token" not in r.json()
    assert trace.releases() == 0
    assert trace.new_entries() == []
    assert trace.new_events() == ["release.revoke_requested"]
    with engine.connect() as conn:
        reason = conn.execute(
            text("SELECT reason FROM pending_revocations WHERE accessor = :a"), {"a": trace.queued_accessors()[0]}
        ).scalar_one()
    assert reason == "recheck_failed"
    assert_no_live_token(trace, revoker, vault_addr, devstack_dir)


class _BrokenRecheck:
    """intake's real first answer, then an error of no expected kind (a bug, a library's surprise)."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.calls = 0

    def authorization(self, task_id: uuid.UUID) -> Any:
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("unexpected failure in the re-check")
        return self._real.authorization(task_id)


@pytest.mark.parametrize("where", ["recheck", "release-row"])
def test_any_error_after_minting_queues_the_revocation(
    world: World,
    broker_app: Any,
    engine: Any,
    devstack_dir: Path,
    revoker: Any,
    vault_addr: str,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    from secrets_broker.deps import intake_dep
    from secrets_broker.intake_client import get_intake
    from secrets_broker.release import gate

    client_id, credential_id, secret, task_id, sub = world.ready()
    trace = Trace(engine, devstack_dir, client_id, credential_id)
    if where == "recheck":
        broken = _BrokenRecheck(get_intake())
        broker_app.dependency_overrides[intake_dep] = lambda: broken
    else:

        def no_fingerprint(key: bytes, token: str) -> str:
            raise ValueError("fingerprint key unusable")

        # The token's fingerprint is taken while the release row is built, after the mint.
        monkeypatch.setattr(gate, "fingerprint", no_fingerprint)

    r = world.release(sub, task_id, credential_id)

    assert (r.status_code, r.json()["error"]) == (500, "internal_error")
    assert "wrap_token" not in r.json() and secret not in r.text
    assert trace.releases() == 0
    assert trace.new_entries() == []
    assert trace.new_events() == ["release.revoke_requested"]
    assert_no_live_token(trace, revoker, vault_addr, devstack_dir)


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


def test_a_secret_missing_at_vault_is_503_naming_it(
    world: World, fake_intake: FakeIntake, engine: Any, devstack_dir: Path, vault_addr: str
) -> None:
    from secrets_broker.vault.gateway import credential_path

    trace, secret = _trace(world, engine, devstack_dir)
    task_id = uuid.uuid4()
    fake_intake.replies = [lambda _p: (200, view(task_id, trace.client_id, trace.credential_id, "tech-a"), 0.0)]
    # The metadata in PostgreSQL still says the credential exists; Vault lost its secret (every version).
    root = (devstack_dir / "bao" / "root-token").read_text().strip()
    gone = requests.delete(
        f"{vault_addr}/v1/msp-kv/metadata/{credential_path(trace.client_id, trace.credential_id)}",
        headers={"X-Vault-Token": root},
        timeout=5,
    )
    assert gone.status_code == 204, gone.text

    r = _release(world, "tech-a", task_id, trace.credential_id)

    assert r.status_code == 503
    assert r.json() == {"error": "unavailable", "detail": "the secret of this credential is missing at Vault"}
    assert secret not in r.text
    trace.assert_nothing_changed()


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
    world: World, engine: Any, admin_engine: Any, devstack_dir: Path, vault_addr: str, revoker: Any
) -> None:
    client_id, credential_id, secret, task_id, sub = world.ready()
    trace = Trace(engine, devstack_dir, client_id, credential_id)

    with audit_insert_revoked(admin_engine):
        r = world.release(sub, task_id, credential_id)
        # A denial that cannot be audited is not a 403 either: nothing is decided without a record.
        denied = world.release("tech-intruder", task_id, credential_id)

    assert (r.status_code, r.json()["error"]) == (503, "unavailable")
    assert "wrap_token" not in r.json() and secret not in r.text
    assert (denied.status_code, denied.json()["error"]) == (503, "unavailable")
    assert trace.releases() == 0
    assert trace.new_entries() == []
    # The denial's event went with its (refused) entry; only the minted token's revocation is queued.
    assert trace.new_events() == ["release.revoke_requested"]
    with engine.connect() as conn:
        reason = conn.execute(
            text("SELECT reason FROM pending_revocations WHERE accessor = :a"), {"a": trace.queued_accessors()[0]}
        ).scalar_one()
    assert reason == "release_not_recorded"
    # Inspect with the root token: the queued accessor is the response-wrapping token just minted.
    root = (devstack_dir / "bao" / "root-token").read_text().strip()
    info = requests.post(
        f"{vault_addr}/v1/auth/token/lookup-accessor",
        headers={"X-Vault-Token": root},
        json={"accessor": trace.queued_accessors()[0]},
        timeout=5,
    ).json()["data"]
    assert info["policies"] == ["response-wrapping"]
    assert_no_live_token(trace, revoker, vault_addr, devstack_dir)
    # With the grant back, the same release goes through.
    assert world.release(sub, task_id, credential_id).status_code == 201
