"""POST /v1/requests on the production binding (asyncpg, real commits), for every statement shape."""

from __future__ import annotations

import uuid

import httpx
import pytest
from intake_factories import get_task, isp_body, make_client, purchase_body, spam_body, submit, vendor_contact_body
from sqlalchemy import text


@pytest.fixture
def tenant(live_api, admin_h, auth):
    client = make_client(live_api, admin_h, purchase_approval_threshold_cents=50_000)
    return client, auth("client_user", "u", client["id"])


def _rows(admin_engine, client_id):
    with admin_engine.connect() as conn:
        return {
            table: conn.execute(
                text(f"SELECT count(*) FROM intake.{table} WHERE client_id = :c"), {"c": client_id}
            ).scalar_one()
            for table in ("requests", "tasks", "approvals")
        } | {
            "outbox": conn.execute(
                text("SELECT count(*) FROM intake.outbox WHERE envelope->>'client_id' = :c"), {"c": client_id}
            ).scalar_one()
        }


@pytest.mark.parametrize(
    ("body", "status", "approvals"),
    [
        (purchase_body(total_cents=50_000), "ready", 0),
        (purchase_body(total_cents=50_001), "awaiting_approval", 1),
        (isp_body(), "awaiting_approval", 1),
        (spam_body(), "awaiting_approval", 1),
    ],
    ids=["purchase-under", "purchase-over", "isp", "spam"],
)
def test_every_shape_on_asyncpg(live_api, admin_h, tenant, admin_engine, body, status, approvals):
    client, user = tenant
    response = submit(live_api, user, body, key="k")
    assert response.status_code == 201, response.text
    task = get_task(live_api, admin_h, response.json()["task_ids"][0])
    assert task["status"] == status
    assert len(task["approvals"]) == approvals
    assert _rows(admin_engine, client["id"]) == {"requests": 1, "tasks": 1, "approvals": approvals, "outbox": 1}
    replay = submit(live_api, user, body, key="k")
    assert (replay.status_code, replay.content) == (201, response.content)
    other = submit(live_api, user, purchase_body(justification="Another body under the same key"), key="k")
    assert other.status_code == 409
    assert _rows(admin_engine, client["id"])["requests"] == 1


def test_vendor_contact_update_on_asyncpg(live_api, admin_h, tenant, vendor_sync_live, auth, admin_engine):
    client, user = tenant
    with httpx.Client(base_url=vendor_sync_live, headers=auth("admin", "vs-admin"), timeout=10) as registry:
        vendor = registry.post("/v1/vendors", json={"name": f"Hot {uuid.uuid4().hex[:8]}", "kind": "dns_host"}).json()
        account = registry.post(
            f"/v1/clients/{client['id']}/vendor-accounts", json={"vendor_id": vendor["id"], "account_number": "A-1"}
        ).json()
    body = vendor_contact_body(account["id"], add=[{"name": "N", "role": "tech"}])
    response = submit(live_api, user, body, key="v")
    assert response.status_code == 201, response.text
    task = get_task(live_api, admin_h, response.json()["task_ids"][0])
    assert (task["status"], task["scope"]["credential_categories"]) == ("awaiting_approval", ["dns_host"])
    assert submit(live_api, user, body, key="v").content == response.content


def test_missing_and_inactive_clients_on_asyncpg(live_api, admin_h, auth, tenant, admin_engine):
    missing = submit(live_api, auth("client_user", "u", uuid.uuid4()), purchase_body())
    assert (missing.status_code, missing.json()["field"]) == (404, "client_id")
    client, user = tenant
    live_api.patch(f"/v1/clients/{client['id']}", json={"status": "inactive"}, headers=admin_h)
    inactive = submit(live_api, user, purchase_body())
    assert inactive.status_code == 409
    assert _rows(admin_engine, client["id"]) == {"requests": 0, "tasks": 0, "approvals": 0, "outbox": 1}


def test_named_params_become_positional():
    from intake.store import positional

    sql, names = positional("SELECT :a, CAST(:b AS jsonb), '{x,y}', :a, x::text, :c_1")
    assert sql == "SELECT $1, CAST($2 AS jsonb), '{x,y}', $1, x::text, $3"
    assert names == ("a", "b", "c_1")


def test_one_store_gives_each_event_loop_its_own_pool():
    """The hot path remembers the last loop's pool; another loop (a test's, a second worker's) gets a new one."""
    import asyncio

    from intake.settings import get_settings
    from intake.store import AsyncpgStore

    store = AsyncpgStore(get_settings().database_url, max_size=1)

    async def backend_and_pool() -> tuple[int, object]:
        row = await store.fetch("SELECT pg_backend_pid() AS pid", {})
        assert row is not None
        return row["pid"], await store._get_pool()

    async def in_one_loop(close: bool) -> list[tuple[int, object]]:
        seen = [await backend_and_pool(), await backend_and_pool()]
        if close:
            await store.close()
        return seen

    loop = asyncio.new_event_loop()  # its pool stays the store's last one while another loop runs
    try:
        first = loop.run_until_complete(in_one_loop(close=False))
        assert first[0] == first[1]  # the same loop reuses its pool (and its one connection)
        second = asyncio.run(in_one_loop(close=True))
        assert second[0] == second[1]
        assert second[0][1] is not first[0][1]  # a new loop never gets the old loop's pool
    finally:
        loop.run_until_complete(store.close())
        loop.close()
