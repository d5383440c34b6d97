"""`POST /internal/service-releases`: vendor_sync gets a vendor account's API key, nothing else.

The client's status is read live from intake (`GET /internal/clients/{id}`), and every service
release is a release row (token fingerprint and accessor), so a client leaving `active` revokes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from broker_helpers import MintingSource, World, lookup_at_vault, release_row, unwrap_at_vault
from sqlalchemy import text

from mspkit.inbox import apply_once


def _ask(world: World, credential_id: Any, account: Any, headers: dict[str, str] | None = None) -> Any:
    return world.broker.post(
        "/internal/service-releases",
        headers=headers or world.vendor_sync,
        json={"credential_id": str(credential_id), "vendor_account_id": str(account), "job_id": "job-42"},
    )


def _audit(engine: Any, credential_id: Any) -> list[tuple[str, str | None, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text('SELECT action, rule, actor FROM audit_entries WHERE credential_id = :c ORDER BY "index"'),
            {"c": credential_id},
        ).all()
    return [(r.action, r.rule, r.actor) for r in rows]


def _releases(engine: Any, credential_id: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT * FROM releases WHERE credential_id = :c ORDER BY created_at"), {"c": credential_id}
            )
        )


def _api_key(world: World) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, str]:
    """A client, its vendor account and that account's API key; returns (client, account, credential, secret)."""
    client_id = world.new_client()
    account = world.new_vendor_account(client_id)
    credential_id, secret = world.new_credential(client_id, kind="api_key", vendor_account_id=account)
    return client_id, account, credential_id, secret


@pytest.fixture(scope="module")
def revoker(devstack_dir: Path, vault_addr: str) -> Iterator[Any]:
    """A gateway logged in as the revoker role, as the broker worker is."""
    from secrets_broker.vault.gateway import VaultGateway

    gateway = VaultGateway(
        addr=vault_addr, role="msp-broker-revoker", source=MintingSource(devstack_dir, "msp-broker-revoker")
    )
    gateway.login()
    yield gateway


def _consume_client_event(engine: Any, admin_engine: Any, revoker: Any, client_id: uuid.UUID) -> None:
    """What the worker does with intake's latest `client.status_changed` of this client."""
    from secrets_broker.db import KIT
    from secrets_broker.revocation.consumers import CONSUMER, on_client_status_changed
    from secrets_broker.revocation.service import carry_out

    with admin_engine.connect() as conn:
        envelope = dict(
            conn.execute(
                text(
                    "SELECT envelope FROM intake.outbox WHERE type = 'client.status_changed' "
                    "AND envelope->>'aggregate_id' = :a ORDER BY id DESC LIMIT 1"
                ),
                {"a": str(client_id)},
            ).scalar_one()
        )
    queued: list[uuid.UUID] = []
    handler: Callable[..., list[uuid.UUID]] = on_client_status_changed
    assert apply_once(engine, KIT, CONSUMER, envelope, lambda s, e: queued.extend(handler(s, e)))
    carry_out(engine, gateway=revoker, pending_ids=queued, backoff_max_s=5)


def test_api_key_of_the_named_vendor_account_is_released_and_recorded(
    world: World, vault_addr: str, engine: Any
) -> None:
    _, account, credential_id, secret = _api_key(world)

    r = _ask(world, credential_id, account)

    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    assert set(r.json()) == {"wrap_token", "wrap_ttl"}
    token = r.json()["wrap_token"]
    # Recorded like any release: the token's fingerprint and accessor, never the token.
    [row] = _releases(engine, credential_id)
    assert (row.recipient_type, row.technician, row.task_id, row.status) == (
        "service",
        "svc:vendor_sync",
        None,
        "issued",
    )
    assert row.wrap_accessor and row.token_fingerprint and token not in str(tuple(row))
    assert unwrap_at_vault(vault_addr, token).json()["data"]["data"]["secret"] == secret
    assert _audit(engine, credential_id)[-1] == ("service_release.granted", None, "svc:vendor_sync")


def test_refusals_name_their_rule_are_audited_and_record_nothing(world: World, engine: Any) -> None:
    client_id = world.new_client()
    account = world.new_vendor_account(client_id)
    password, _ = world.new_credential(client_id, kind="password", vendor_account_id=account)
    api_key, _ = world.new_credential(client_id, kind="api_key", vendor_account_id=account)

    not_key = _ask(world, password, account)
    assert not_key.status_code == 403
    assert not_key.json() == {**not_key.json(), "error": "release_denied", "rule": "not_api_key"}
    mismatch = _ask(world, api_key, uuid.uuid4())
    assert (mismatch.status_code, mismatch.json()["rule"]) == (403, "vendor_account_mismatch")
    assert "wrap_token" not in not_key.json() and "wrap_token" not in mismatch.json()

    assert _audit(engine, password)[-1] == ("service_release.denied", "not_api_key", "svc:vendor_sync")
    assert _audit(engine, api_key)[-1][:2] == ("service_release.denied", "vendor_account_mismatch")
    assert _releases(engine, password) == [] and _releases(engine, api_key) == []


def test_the_clients_status_is_read_live_from_intake(world: World, engine: Any) -> None:
    """Closed in intake, no event consumed by the broker yet: refused all the same."""
    client_id, account, credential_id, _ = _api_key(world)
    r = world.intake.patch(f"/v1/clients/{client_id}", headers=world.admin, json={"status": "inactive"})
    assert r.status_code == 200, r.text
    with engine.connect() as conn:
        tombstones = conn.execute(text("SELECT count(*) FROM tombstones WHERE client_id = :c"), {"c": client_id})
        assert tombstones.scalar() == 0

    refused = _ask(world, credential_id, account)

    assert (refused.status_code, refused.json()["error"], refused.json()["rule"]) == (
        403,
        "release_denied",
        "client_not_active",
    )
    assert "wrap_token" not in refused.json()
    assert _audit(engine, credential_id)[-1] == ("service_release.denied", "client_not_active", "svc:vendor_sync")
    assert _releases(engine, credential_id) == []

    # Active again in intake: released again, at once.
    r = world.intake.patch(f"/v1/clients/{client_id}", headers=world.admin, json={"status": "active"})
    assert r.status_code == 200, r.text
    assert _ask(world, credential_id, account).status_code == 201


def test_a_tombstone_refuses_even_when_intake_says_active(world: World, engine: Any) -> None:
    """The broker learnt the client left `active`; until it learns it came back, the answer is no."""
    client_id, account, credential_id, _ = _api_key(world)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO tombstones (id, client_id, reason, created_at) VALUES (:i, :c, 'client.closed', now())"),
            {"i": uuid.uuid4(), "c": client_id},
        )

    refused = _ask(world, credential_id, account)

    assert (refused.status_code, refused.json()["rule"]) == (403, "client_not_active")
    assert _releases(engine, credential_id) == []


def test_fails_closed_when_intake_does_not_answer(world: World, engine: Any, broker_app: Any) -> None:
    from mspctl.ports import free_port
    from mspkit.service_tokens import token_source
    from secrets_broker.deps import intake_dep
    from secrets_broker.intake_client import IntakeClient
    from secrets_broker.settings import get_settings

    _, account, credential_id, _ = _api_key(world)
    before = _audit(engine, credential_id)
    dead = IntakeClient(base_url=f"http://127.0.0.1:{free_port()}", tokens=token_source(get_settings()))
    broker_app.dependency_overrides[intake_dep] = lambda: dead

    r = _ask(world, credential_id, account)

    assert r.status_code == 503, r.text
    assert r.json()["error"] == "unavailable" and "wrap_token" not in r.json()
    assert _releases(engine, credential_id) == []
    assert _audit(engine, credential_id) == before


def test_closing_the_client_revokes_a_service_release_issued_before(
    world: World, engine: Any, admin_engine: Any, revoker: Any, vault_addr: str
) -> None:
    client_id, account, credential_id, _ = _api_key(world)
    issued = _ask(world, credential_id, account)
    assert issued.status_code == 201, issued.text
    token = issued.json()["wrap_token"]
    [row] = _releases(engine, credential_id)

    r = world.intake.patch(f"/v1/clients/{client_id}", headers=world.admin, json={"status": "closed"})
    assert r.status_code == 200, r.text
    _consume_client_event(engine, admin_engine, revoker, client_id)

    after = release_row(engine, row.id)
    assert (after.status, after.closed_reason) == ("revoked", "client_left_active")
    assert lookup_at_vault(vault_addr, token).status_code == 400
    assert unwrap_at_vault(vault_addr, token).status_code == 400


def test_only_vendor_sync_may_call(world: World, engine: Any) -> None:
    _, account, api_key, _ = _api_key(world)

    for headers in (world.auth("service", "svc:intake"), world.tech("tech-1"), world.admin):
        r = _ask(world, api_key, account, headers)
        assert (r.status_code, r.json()["error"]) == (403, "forbidden")
    missing = _ask(world, uuid.uuid4(), account)
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    assert _releases(engine, api_key) == []
