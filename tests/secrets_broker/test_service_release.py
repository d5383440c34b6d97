"""`POST /internal/service-releases`: vendor_sync gets a vendor account's API key, nothing else."""

from __future__ import annotations

import uuid
from typing import Any

from broker_helpers import World, unwrap_at_vault
from sqlalchemy import text


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


def test_api_key_of_the_named_vendor_account_is_released(world: World, vault_addr: str, engine: Any) -> None:
    client_id = world.new_client()
    account = uuid.uuid4()
    credential_id, secret = world.new_credential(client_id, kind="api_key", vendor_account_id=account)

    r = _ask(world, credential_id, account)

    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    assert set(r.json()) == {"wrap_token", "wrap_ttl"}
    assert unwrap_at_vault(vault_addr, r.json()["wrap_token"]).json()["data"]["data"]["secret"] == secret
    assert _audit(engine, credential_id)[-1] == ("service_release.granted", None, "svc:vendor_sync")


def test_refusals_name_their_rule_and_are_audited(world: World, engine: Any) -> None:
    client_id = world.new_client()
    account = uuid.uuid4()
    password, _ = world.new_credential(client_id, kind="password", vendor_account_id=account)
    api_key, _ = world.new_credential(client_id, kind="api_key", vendor_account_id=account)

    not_key = _ask(world, password, account)
    assert (not_key.status_code, not_key.json()["rule"]) == (403, "not_api_key")
    mismatch = _ask(world, api_key, uuid.uuid4())
    assert (mismatch.status_code, mismatch.json()["rule"]) == (403, "vendor_account_mismatch")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO tombstones (id, client_id, reason, created_at) VALUES (:i, :c, 'client.closed', now())"),
            {"i": uuid.uuid4(), "c": client_id},
        )
    inactive = _ask(world, api_key, account)
    assert (inactive.status_code, inactive.json()["rule"]) == (403, "client_not_active")

    assert _audit(engine, password)[-1] == ("service_release.denied", "not_api_key", "svc:vendor_sync")
    assert [a[:2] for a in _audit(engine, api_key)[-2:]] == [
        ("service_release.denied", "vendor_account_mismatch"),
        ("service_release.denied", "client_not_active"),
    ]


def test_only_vendor_sync_may_call(world: World) -> None:
    client_id = world.new_client()
    account = uuid.uuid4()
    api_key, _ = world.new_credential(client_id, kind="api_key", vendor_account_id=account)

    for headers in (world.auth("service", "svc:intake"), world.tech("tech-1"), world.admin):
        r = _ask(world, api_key, account, headers)
        assert (r.status_code, r.json()["error"]) == (403, "forbidden")
    assert _ask(world, uuid.uuid4(), account).status_code == 404
