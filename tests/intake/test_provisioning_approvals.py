"""Approvals name the vendor they disclose to (`recipient.vendor_id`): request expansion makes exactly one
per recipient vendor, an approval asked on a task may name one, and the broker's view carries it.

Against the real vendor_sync registry (served over HTTP by `vendor_sync_live`) and PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from intake_factories import (
    assign,
    client_state,
    create_request,
    get_task,
    insert_client,
    insert_row,
    isp_body,
    make_client,
    move,
    purchase_body,
    spam_body,
)
from sqlalchemy import create_engine, text


@pytest.fixture(scope="module")
def registry(vendor_sync_live, auth):
    """An admin client of the live vendor_sync registry."""
    with httpx.Client(base_url=vendor_sync_live, headers=auth("admin", "appr-vs-admin"), timeout=10) as http:
        yield http


def make_vendor(registry, *, kind: str, name: str, **extra: Any) -> dict[str, Any]:
    # The registry commits for real and vendor names are unique: each test makes its own.
    response = registry.post("/v1/vendors", json={"name": f"{name} {uuid.uuid4().hex[:8]}", "kind": kind, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def make_account(registry, client_id: str, vendor_id: str) -> str:
    body = {"vendor_id": vendor_id, "account_number": f"ACCT-{uuid.uuid4().hex[:8]}"}
    response = registry.post(f"/v1/clients/{client_id}/vendor-accounts", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def decide(api, headers, approval_id: str) -> None:
    response = api.post(f"/v1/approvals/{approval_id}/decision", json={"decision": "approved"}, headers=headers)
    assert response.status_code == 200, response.text


# ---- request expansion -----------------------------------------------------------------------------


def test_one_approval_per_spam_filter_vendor_each_naming_it(api, admin_h, auth, broker_h, registry):
    client = make_client(api, admin_h)
    first = make_vendor(
        registry, kind="spam_filter", name="MailChannels", adapter="mailchannels", support_email="help@mc.example"
    )
    second = make_vendor(registry, kind="spam_filter", name="MailChannels EU", adapter="mailchannels")
    other = make_vendor(registry, kind="spam_filter", name="Other filter", adapter="otherfilter")
    # Two accounts at the first vendor are still one recipient; another provider's vendor is none.
    for vendor in (first, first, second, other):
        make_account(registry, client["id"], vendor["id"])
    user = auth("client_user", "u", client["id"])

    task_id = create_request(api, user, spam_body())["task_ids"][0]

    task = get_task(api, admin_h, task_id)
    assert task["status"] == "awaiting_approval"
    recipients = {a["recipient"]["vendor_id"]: a["recipient"] for a in task["approvals"]}
    assert len(task["approvals"]) == 2
    assert [recipients[first["id"]], recipients[second["id"]]] == [
        {
            "name": first["name"],
            "contact_email": "help@mc.example",
            "party_category": "provider_for_msp",
            "legal_reference": None,
            "vendor_id": first["id"],
        },
        {
            "name": second["name"],
            "contact_email": None,
            "party_category": "provider_for_msp",
            "legal_reference": None,
            "vendor_id": second["id"],
        },
    ]
    assert all(
        sorted(a["information_categories"]) == ["contact_info", "domain", "mail_routing"] for a in task["approvals"]
    )
    # The broker reads the same vendor ids in its live view.
    view = api.get(f"/internal/tasks/{task_id}/authorization", headers=broker_h).json()
    assert sorted(a["recipient"]["vendor_id"] for a in view["approvals"]) == sorted([first["id"], second["id"]])
    # The task waits for each recipient's decision.
    approver = auth("client_admin", "boss", client["id"])
    decide(api, approver, task["approvals"][0]["id"])
    assert get_task(api, admin_h, task_id)["status"] == "awaiting_approval"
    decide(api, approver, task["approvals"][1]["id"])
    assert get_task(api, admin_h, task_id)["status"] == "ready"


def test_an_isp_approval_names_the_isp_vendor(api, admin_h, auth, registry):
    client = make_client(api, admin_h)
    isp = make_vendor(registry, kind="isp", name="FastFiber", support_email="biz@fastfiber.example")
    make_account(registry, client["id"], isp["id"])
    user = auth("client_user", "u", client["id"])

    with_contact = get_task(api, admin_h, create_request(api, user, isp_body(isp_name=isp["name"]))["task_ids"][0])
    body = isp_body(isp_name=isp["name"].upper())
    del body["isp_contact_email"]
    without = get_task(api, admin_h, create_request(api, user, body)["task_ids"][0])

    [approval] = with_contact["approvals"]
    assert approval["recipient"]["vendor_id"] == isp["id"]
    assert approval["recipient"]["contact_email"] == "business@fastfiber.example"  # the request's own
    [approval] = without["approvals"]
    assert (approval["recipient"]["vendor_id"], approval["recipient"]["contact_email"]) == (
        isp["id"],
        "biz@fastfiber.example",
    )


def test_a_recipient_that_is_no_vendor_of_the_registry_names_none(api, admin_h, auth, registry):
    client = make_client(api, admin_h)
    user = auth("client_user", "u", client["id"])
    for body in (purchase_body(total_cents=10_000_000), spam_body(), isp_body(isp_name="Unknown ISP")):
        [approval] = get_task(api, admin_h, create_request(api, user, body)["task_ids"][0])["approvals"]
        assert approval["recipient"]["vendor_id"] is None


def test_expansion_makes_one_approval_per_recipient_vendor():
    """The pure choice: one approval per distinct vendor of the provider's filter accounts; none found, one without."""
    from intake.requests.expansion import expand
    from intake.requests.schemas import SpamFilterSetupBody
    from intake.vendors import ClientAccount

    a, b = uuid.uuid4(), uuid.uuid4()

    def account(vendor: uuid.UUID, adapter: str = "mailchannels") -> ClientAccount:
        return ClientAccount(uuid.uuid4(), vendor, "spam_filter", vendor_name=f"V{vendor}", vendor_adapter=adapter)

    body = SpamFilterSetupBody.model_validate(spam_body())
    [task] = expand(body, accounts=[account(a), account(b), account(a), account(uuid.uuid4(), "other")]).tasks
    assert [p.vendor_id for p in task.approvals] == [a, b]
    assert task.needed_approvals(0) == task.approvals
    [task] = expand(body, accounts=None).tasks
    assert [(p.recipient_name, p.vendor_id) for p in task.approvals] == [("mailchannels", None)]


# ---- an approval asked on a task --------------------------------------------------------------------


@pytest.fixture
def working(api, admin_h, auth, tech_h):
    client = make_client(api, admin_h)
    task_id = create_request(api, auth("client_user", "u", client["id"]), purchase_body())["task_ids"][0]
    assert assign(api, tech_h, task_id, "tech-1").status_code == 200
    assert move(api, tech_h, task_id, "in_progress").status_code == 200
    return {"task": task_id, "client": client["id"]}


def disclosure(vendor_id: str | None, party_category: str = "provider_for_client") -> dict[str, Any]:
    recipient: dict[str, Any] = {
        "name": "Registrar",
        "contact_email": "help@reg.example",
        "party_category": party_category,
    }
    if party_category == "government_legal_process":
        recipient["legal_reference"] = "Case 1"
    if vendor_id is not None:
        recipient["vendor_id"] = vendor_id
    return {"recipient": recipient, "information_categories": ["contact_info"], "expires_in_s": 3600}


def test_an_approval_asked_on_a_task_may_name_its_vendor(api, tech_h, broker_h, working, registry):
    vendor = make_vendor(registry, kind="registrar", name="Registrar")
    response = api.post(f"/v1/tasks/{working['task']}/approvals", json=disclosure(vendor["id"]), headers=tech_h)
    assert response.status_code == 201, response.text
    assert response.json()["recipient"]["vendor_id"] == vendor["id"]
    view = api.get(f"/internal/tasks/{working['task']}/authorization", headers=broker_h).json()
    assert [a["recipient"]["vendor_id"] for a in view["approvals"]] == [vendor["id"]]
    # Without one, as before.
    plain = api.post(f"/v1/tasks/{working['task']}/approvals", json=disclosure(None), headers=tech_h)
    assert (plain.status_code, plain.json()["recipient"]["vendor_id"]) == (201, None)


def test_a_vendor_the_registry_does_not_know_is_422_and_changes_nothing(api, tech_h, working, registry, sql):
    state = client_state(sql, working["client"])
    response = api.post(f"/v1/tasks/{working['task']}/approvals", json=disclosure(str(uuid.uuid4())), headers=tech_h)
    assert (response.status_code, response.json()) == (
        422,
        {
            "error": "validation_error",
            "detail": "recipient.vendor_id: is not a vendor of the registry",
            "field": "recipient.vendor_id",
            "errors": [
                {"field": "recipient.vendor_id", "detail": "recipient.vendor_id: is not a vendor of the registry"}
            ],
        },
    )
    assert client_state(sql, working["client"]) == state


def test_a_government_body_names_no_vendor(api, tech_h, working, sql):
    state = client_state(sql, working["client"])
    body = disclosure(str(uuid.uuid4()), "government_legal_process")
    response = api.post(f"/v1/tasks/{working['task']}/approvals", json=body, headers=tech_h)
    assert (response.status_code, response.json()["field"]) == (422, "recipient.vendor_id")
    assert client_state(sql, working["client"]) == state


def test_the_registry_is_asked_only_for_a_caller_who_may_ask(api, tech2_h, working, sql, monkeypatch):
    from intake.approvals import service

    monkeypatch.setattr(service, "get_registry", lambda: pytest.fail("the registry was asked for a refused caller"))
    state = client_state(sql, working["client"])
    response = api.post(f"/v1/tasks/{working['task']}/approvals", json=disclosure(str(uuid.uuid4())), headers=tech2_h)
    assert (response.status_code, response.json()["error"]) == (403, "forbidden")
    assert client_state(sql, working["client"]) == state


def test_a_silent_registry_is_503_and_changes_nothing(api, tech_h, working, sql, monkeypatch):
    from intake import vendors
    from intake.approvals import service
    from intake.settings import get_settings

    dead = vendors.VendorRegistry(get_settings().model_copy(update={"vendor_sync_url": "http://127.0.0.1:9"}))
    monkeypatch.setattr(service, "get_registry", lambda: dead)
    state = client_state(sql, working["client"])
    response = api.post(f"/v1/tasks/{working['task']}/approvals", json=disclosure(str(uuid.uuid4())), headers=tech_h)
    assert (response.status_code, response.json()["error"]) == (503, "unavailable")
    assert client_state(sql, working["client"]) == state


# ---- migration 0007 ----------------------------------------------------------------------------------


def test_migration_0007_leaves_old_approvals_without_a_vendor_and_steps_with_one_key(
    scratch_url: str, scratch_alembic: Any
) -> None:
    from alembic import command

    config = scratch_alembic
    command.upgrade(config, "0006")
    engine = create_engine(scratch_url)
    at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    client, task, approval, step = (uuid.uuid4() for _ in range(4))
    stamps = {"created_by": "u", "created_at": at, "updated_at": at}
    with engine.begin() as conn:
        insert_client(conn, client, at)
        insert_row(
            conn,
            "tasks",
            id=task,
            client_id=client,
            type="spam_filter_setup",
            title="T",
            status="in_progress",
            credential_categories="[]",
            vendor_account_ids="[]",
            credential_ids="[]",
            **stamps,
        )
        insert_row(
            conn,
            "approvals",
            id=approval,
            task_id=task,
            origin="request",
            client_id=client,
            status="pending",
            recipient_name="mailchannels",
            party_category="provider_for_msp",
            information_categories="[]",
            credential_ids="[]",
            expires_at=at + timedelta(days=14),
            **stamps,
        )
        insert_row(
            conn,
            "task_steps",
            id=step,
            task_id=task,
            name="domain",
            status="failed",
            idempotency_key="k",
            reported_by="svc:vendor_sync",
            created_at=at,
            updated_at=at,
        )
    # The revision itself, not head: a later migration must not change what this one is shown to do.
    command.upgrade(config, "0007")
    with engine.connect() as conn:
        vendor = conn.execute(text("SELECT recipient_vendor_id FROM intake.approvals WHERE id = :i"), {"i": approval})
        keys = conn.execute(text("SELECT later_report_keys FROM intake.task_steps WHERE id = :i"), {"i": step})
        assert (vendor.scalar_one(), keys.scalar_one()) == (None, [])
    command.downgrade(config, "0006")
    with engine.connect() as conn:
        columns = {
            row[0]
            for row in conn.execute(
                text(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'intake' "
                    "AND table_name IN ('approvals', 'task_steps')"
                )
            )
        }
        rows = conn.execute(
            text("SELECT (SELECT count(*) FROM intake.approvals), (SELECT count(*) FROM intake.task_steps)")
        ).one()
    engine.dispose()
    assert not {"recipient_vendor_id", "later_report_keys"} & columns
    assert tuple(rows) == (1, 1)
