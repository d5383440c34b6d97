"""POST /v1/requests as deployed (real commits on the app's own engine), for every kind of plan."""

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
def test_every_plan_commits_its_rows_once(live_api, admin_h, tenant, admin_engine, body, status, approvals):
    client, user = tenant
    response = submit(live_api, user, body, key="k")
    assert response.status_code == 201, response.text
    task = get_task(live_api, admin_h, response.json()["task_ids"][0])
    assert task["status"] == status
    assert len(task["approvals"]) == approvals
    assert _rows(admin_engine, client["id"]) == {
        "requests": 1,
        "tasks": 1,
        "approvals": approvals,
        # task.created, and approval.created for each approval the expansion made
        "outbox": 1 + approvals,
    }
    replay = submit(live_api, user, body, key="k")
    assert (replay.status_code, replay.content) == (201, response.content)
    other = submit(live_api, user, purchase_body(justification="Another body under the same key"), key="k")
    assert other.status_code == 409
    assert _rows(admin_engine, client["id"])["requests"] == 1


def test_vendor_contact_update_commits(live_api, admin_h, tenant, vendor_sync_live, auth, admin_engine):
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


def test_missing_and_inactive_clients_write_nothing(live_api, admin_h, auth, tenant, admin_engine):
    missing = submit(live_api, auth("client_user", "u", uuid.uuid4()), purchase_body())
    assert (missing.status_code, missing.json()["field"]) == (404, "client_id")
    client, user = tenant
    live_api.patch(f"/v1/clients/{client['id']}", json={"status": "inactive"}, headers=admin_h)
    inactive = submit(live_api, user, purchase_body())
    assert inactive.status_code == 409
    assert _rows(admin_engine, client["id"]) == {"requests": 0, "tasks": 0, "approvals": 0, "outbox": 1}
