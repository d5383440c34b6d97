"""The scheduler tick and vendor accounts: one scheduled sync per due, live, synced account.

In a module of its own: a worker left running by another module's fixture would take the messages
this test counts in the queue.
"""

from __future__ import annotations

import base64
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
pytest.register_assert_rewrite("fixtures_registry")
from fixtures_registry import purge_queue  # noqa: E402

pytest_plugins = ["fixtures_registry"]


@pytest.fixture
def settings():
    from vendor_sync.settings import get_settings

    return get_settings()


def _published_account_runs(redis_url: str) -> list[str]:
    client = redis.Redis.from_url(redis_url)
    ids = []
    for raw in client.lrange("vendor_sync", 0, -1):
        message = json.loads(raw)
        if message.get("headers", {}).get("task") == "vendor_sync.account.sync":
            ids.append(json.loads(base64.b64decode(message["body"]))[0][0])
    client.close()
    return ids


def _insert_account(engine, *, kind: str, adapter: str | None, key: bool, archived: bool, due: bool) -> uuid.UUID:
    vendor_id, account_id = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO vendor_sync.vendors (id, name, kind, adapter) VALUES (:id, :name, :kind, :adapter)"),
            {"id": vendor_id, "name": f"V {uuid.uuid4().hex}", "kind": kind, "adapter": adapter},
        )
        conn.execute(
            text(
                "INSERT INTO vendor_sync.vendor_accounts"
                " (id, client_id, vendor_id, account_number, api_key_credential_id, archived_at, next_sync_at)"
                " VALUES (:id, :client, :vendor, :number, :key, :archived, :next)"
            ),
            {
                "id": account_id,
                "client": uuid.uuid4(),
                "vendor": vendor_id,
                "number": uuid.uuid4().hex,
                "key": uuid.uuid4() if key else None,
                "archived": datetime.now(UTC) if archived else None,
                # Long overdue, so they come first in due order whatever else the suite left due.
                "next": datetime(2000, 1, 1, tzinfo=UTC) if due else datetime.now(UTC) + timedelta(hours=1),
            },
        )
    return account_id


def test_tick_queues_a_sync_for_each_due_live_account_with_a_key_once(vs_engine, stack_env, settings):
    from vendor_sync.sync.schedule import tick

    purge_queue(stack_env["MSP_REDIS_URL"])
    cases = {
        # label: (kind, adapter, key, archived, due)
        "dns_host": ("dns_host", "cloudflare", True, False, True),
        "registrar": ("registrar", "godaddy", True, False, True),
        "archived": ("dns_host", "cloudflare", True, True, True),
        "no_key": ("dns_host", "cloudflare", False, False, True),
        "not_synced_kind": ("spam_filter", "mailchannels", True, False, True),
        "no_adapter": ("registrar", None, True, False, True),
        "not_due": ("dns_host", "cloudflare", True, False, False),
    }
    accounts = {
        label: _insert_account(vs_engine, kind=kind, adapter=adapter, key=key, archived=archived, due=due)
        for label, (kind, adapter, key, archived, due) in cases.items()
    }
    before = datetime.now(UTC)
    tick(engine=vs_engine, settings=settings)
    tick(engine=vs_engine, settings=settings)

    def runs(account_id):
        sql = "SELECT id, trigger, status FROM vendor_sync.sync_runs WHERE vendor_account_id = :a"
        with vs_engine.connect() as conn:
            return [dict(r) for r in conn.execute(text(sql), {"a": account_id}).mappings()]

    queued = {label: runs(account_id) for label, account_id in accounts.items()}
    assert {label for label, found in queued.items() if found} == {"dns_host", "registrar"}
    assert all(len(queued[label]) == 1 for label in ("dns_host", "registrar")), "a second tick doubled a run"
    assert all(r["trigger"] == "schedule" and r["status"] == "queued" for r in queued["dns_host"] + queued["registrar"])
    published = _published_account_runs(stack_env["MSP_REDIS_URL"])
    for label in ("dns_host", "registrar"):
        assert published.count(str(queued[label][0]["id"])) == 1
    with vs_engine.connect() as conn:
        next_at = dict(
            conn.execute(
                text("SELECT id, next_sync_at FROM vendor_sync.vendor_accounts WHERE id = ANY(:ids)"),
                {"ids": [accounts["dns_host"], accounts["registrar"]]},
            ).all()
        )
    # Moved one interval on (plus up to a tenth of jitter), each by its kind's interval.
    dns_next, registrar_next = next_at[accounts["dns_host"]], next_at[accounts["registrar"]]
    assert timedelta(seconds=settings.dns_host_sync_interval_s) <= dns_next - before
    assert dns_next - before <= timedelta(seconds=settings.dns_host_sync_interval_s * 1.1 + 60)
    assert timedelta(seconds=settings.registrar_sync_interval_s) <= registrar_next - before
