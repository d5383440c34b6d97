"""A task's scope end to end: expansion scopes it from the live registry, an admin changes it at intake,
unwrap refuses what fell out of it, and the broker's consumer of `task.scope_changed` revokes it.

Real intake, vendor_sync and broker (served over HTTP), a real OpenBao; the consumer is the function
the worker's Celery task runs, fed the envelope intake wrote to its outbox.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from broker_helpers import (
    CREDENTIAL_FIELDS,
    STRONG_REASON,
    MintingSource,
    World,
    audit_rows,
    lookup_at_vault,
    release_row,
)
from sqlalchemy import text

from mspkit.inbox import apply_once

ISP_BODY = {
    "type": "isp_account_setup",
    "isp_contact_email": "business@fibre.example",
    "service_address": {
        "line1": "1 Main Street",
        "city": "Springfield",
        "region": "IL",
        "postal_code": "62701",
        "country": "US",
    },
    "service_tier": "Business 500",
    "site_contact": {"name": "Dana Office", "email": "dana@client.example", "phone": "+1 217 555 0100"},
}


@pytest.fixture(scope="module")
def revoker(devstack_dir: Path, vault_addr: str) -> Iterator[Any]:
    """A gateway logged in as the revoker role, as the worker is."""
    from secrets_broker.vault.gateway import VaultGateway

    gateway = VaultGateway(
        addr=vault_addr, role="msp-broker-revoker", source=MintingSource(devstack_dir, "msp-broker-revoker")
    )
    gateway.login()
    yield gateway


def intake_event(admin_engine: Any, task_id: uuid.UUID) -> dict[str, Any]:
    """The latest `task.scope_changed` envelope intake wrote for this task."""
    with admin_engine.connect() as conn:
        return dict(
            conn.execute(
                text(
                    "SELECT envelope FROM intake.outbox WHERE type = 'task.scope_changed' "
                    "AND envelope->>'aggregate_id' = :a ORDER BY id DESC LIMIT 1"
                ),
                {"a": str(task_id)},
            ).scalar_one()
        )


def consume(engine: Any, revoker: Any, envelope: dict[str, Any]) -> bool:
    """What the worker's `task_scope_changed` task does: apply once through the inbox, then revoke."""
    from secrets_broker.db import KIT
    from secrets_broker.revocation.consumers import CONSUMER, on_task_scope_changed
    from secrets_broker.revocation.service import carry_out

    queued: list[uuid.UUID] = []
    applied = apply_once(engine, KIT, CONSUMER, envelope, lambda s, e: queued.extend(on_task_scope_changed(s, e)))
    carry_out(engine, gateway=revoker, pending_ids=queued, backoff_max_s=5)
    return applied


def _request(world: World, client_id: uuid.UUID, body: dict[str, Any]) -> dict[str, Any]:
    """Submit a request as the client's admin, approve what expansion asked, and return its task (ready)."""
    boss = world.auth("client_admin", "client-boss", client_id)
    r = world.intake.post("/v1/requests", headers={**boss, "Idempotency-Key": str(uuid.uuid4())}, json=body)
    assert r.status_code == 201, r.text
    [task_id] = r.json()["task_ids"]
    task = world.intake.get(f"/v1/tasks/{task_id}", headers=world.admin).json()
    for approval in task["approvals"]:
        world.decide_approval(uuid.UUID(approval["id"]), client_id, "approved")
    task = world.intake.get(f"/v1/tasks/{task_id}", headers=world.admin).json()
    assert task["status"] == "ready", task
    return dict(task)


def _start(world: World, task_id: uuid.UUID) -> str:
    sub = f"tech-{uuid.uuid4().hex[:8]}"
    world.assign(task_id, sub)
    world.transition(task_id, "in_progress", world.tech(sub))
    return sub


def _released_secret(world: World, sub: str, task_id: uuid.UUID, credential_id: uuid.UUID) -> str:
    r = world.release(sub, task_id, credential_id)
    assert r.status_code == 201, r.text
    opened = world.unwrap(sub, r.json()["wrap_token"])
    assert opened.status_code == 200, opened.text
    return str(opened.json()["secret"])


def _denied(response: Any) -> tuple[int, str, str]:
    return response.status_code, response.json()["error"], response.json().get("rule")


def test_a_spam_filter_request_lets_its_technician_release_the_dns_host_and_filter_credentials(world: World) -> None:
    client_id = world.new_client()
    adapter = f"filter{uuid.uuid4().hex[:8]}"
    spam = world.new_vendor_account(client_id, kind="spam_filter", adapter=adapter)
    other_filter = world.new_vendor_account(client_id, kind="spam_filter", adapter="mailchannels")
    dns = world.new_vendor_account(client_id, kind="dns_host")
    spam_cred, spam_secret = world.new_credential(client_id, category="spam_filter", vendor_account_id=spam)
    dns_cred, dns_secret = world.new_credential(client_id, category="dns_host", vendor_account_id=dns)
    other_cred, _ = world.new_credential(client_id, category="spam_filter", vendor_account_id=other_filter)

    body = {
        "type": "spam_filter_setup",
        "domain": "client.example",
        "downstream_hosts": ["mx.client.example"],
        "provider": adapter,
    }
    task = _request(world, client_id, body)

    # The filter at the asked provider and the client's only DNS host; not the filter at another provider.
    assert task["scope"] == {
        "credential_categories": ["spam_filter", "dns_host"],
        "vendor_account_ids": [str(spam), str(dns)],
        "credential_ids": [],
    }
    assert task["internal_notes"] == []
    task_id = uuid.UUID(task["id"])
    sub = _start(world, task_id)
    assert _released_secret(world, sub, task_id, spam_cred) == spam_secret
    assert _released_secret(world, sub, task_id, dns_cred) == dns_secret
    assert _denied(world.release(sub, task_id, other_cred)) == (403, "release_denied", "out_of_scope")


def test_an_isp_task_releases_the_credential_of_its_isp_account(world: World) -> None:
    """Before expansion read the registry, an ISP task held a category alone and could never release."""
    client_id = world.new_client()
    name = f"FastFiber {uuid.uuid4().hex[:8]}"
    isp = world.new_vendor_account(client_id, kind="isp", name=name)
    elsewhere = world.new_vendor_account(client_id, kind="isp")
    credential_id, secret = world.new_credential(client_id, category="isp", vendor_account_id=isp)
    unrelated, _ = world.new_credential(client_id, category="isp", vendor_account_id=elsewhere)

    # The vendor's name matches whatever its case in the request.
    task = _request(world, client_id, {**ISP_BODY, "isp_name": name.upper()})

    assert task["scope"]["vendor_account_ids"] == [str(isp)]
    task_id = uuid.UUID(task["id"])
    sub = _start(world, task_id)
    assert _released_secret(world, sub, task_id, credential_id) == secret
    assert _denied(world.release(sub, task_id, unrelated)) == (403, "release_denied", "out_of_scope")


def _pending_done(engine: Any, release_id: uuid.UUID) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT done_at FROM pending_revocations WHERE release_id = :r"), {"r": release_id}
        ).scalar_one()


def test_removing_an_account_refuses_its_live_release_and_the_consumer_revokes_it(
    world: World, engine: Any, admin_engine: Any, revoker: Any, vault_addr: str
) -> None:
    client_id = world.new_client()
    account = world.new_vendor_account(client_id, kind="registrar")
    by_account, _ = world.new_credential(client_id, category="registrar", vendor_account_id=account)
    by_id, kept_secret = world.new_credential(client_id)
    sub = f"tech-{uuid.uuid4().hex[:8]}"
    task_id = world.new_task(
        client_id, assignee=sub, vendor_account_ids=[account], categories=["registrar"], credential_ids=[by_id]
    )
    gone = world.release(sub, task_id, by_account).json()
    kept = world.release(sub, task_id, by_id).json()
    gone_id, kept_id = uuid.UUID(gone["release_id"]), uuid.UUID(kept["release_id"])

    task = world.change_scope(task_id, remove={"vendor_account_ids": [str(account)]})
    assert task["scope"]["vendor_account_ids"] == []

    # Before the worker hears of it, unwrap refuses on intake's live view, and consumes nothing.
    refused = world.unwrap(sub, gone["wrap_token"])
    assert _denied(refused) == (403, "release_denied", "out_of_scope")
    assert lookup_at_vault(vault_addr, gone["wrap_token"]).status_code == 200
    assert release_row(engine, gone_id).status == "issued"

    envelope = intake_event(admin_engine, task_id)
    assert envelope["data"]["updated_at"] == datetime.fromisoformat(task["updated_at"]).isoformat()
    assert consume(engine, revoker, envelope) is True

    row = release_row(engine, gone_id)
    assert (row.status, row.closed_reason) == ("revoked", "task_scope_narrowed")
    assert _pending_done(engine, gone_id) is not None
    assert lookup_at_vault(vault_addr, gone["wrap_token"]).status_code == 400
    [revoked] = audit_rows(engine, task_id=task_id, action="release.revoked")
    assert revoked.release_id == gone_id
    assert json.loads(revoked.canonical)["details"] == {
        "reason": "task_scope_narrowed",
        "event_id": envelope["event_id"],
    }
    # The credential the scope still names keeps its release.
    assert release_row(engine, kept_id).status == "issued"
    assert world.unwrap(sub, kept["wrap_token"]).json()["secret"] == kept_secret

    # Redelivered: the inbox absorbs it.
    assert consume(engine, revoker, envelope) is False
    assert len(audit_rows(engine, task_id=task_id, action="release.revoked")) == 1


def test_a_late_removal_event_spares_a_release_decided_after_the_account_came_back(
    world: World, engine: Any, admin_engine: Any, revoker: Any
) -> None:
    client_id = world.new_client()
    account = world.new_vendor_account(client_id, kind="registrar")
    credential_id, secret = world.new_credential(client_id, category="registrar", vendor_account_id=account)
    sub = f"tech-{uuid.uuid4().hex[:8]}"
    task_id = world.new_task(client_id, assignee=sub, vendor_account_ids=[account], categories=["registrar"])
    before = uuid.UUID(world.release(sub, task_id, credential_id).json()["release_id"])
    world.change_scope(task_id, remove={"vendor_account_ids": [str(account)]})
    removal = intake_event(admin_engine, task_id)
    world.change_scope(task_id, add={"vendor_account_ids": [str(account)]})
    after = world.release(sub, task_id, credential_id).json()

    # The removal reaches the worker only now: it covers the release decided before it, not the later one.
    consume(engine, revoker, removal)

    assert release_row(engine, before).status == "revoked"
    assert release_row(engine, uuid.UUID(after["release_id"])).status == "issued"
    assert world.unwrap(sub, after["wrap_token"]).json()["secret"] == secret


def test_a_third_party_release_out_of_scope_is_revoked_without_a_vault_token(
    world: World, engine: Any, admin_engine: Any, revoker: Any
) -> None:
    _, credential_id, secret, task_id, _, code = world.third_party_token()
    [release_id] = [r.release_id for r in audit_rows(engine, task_id=task_id, action="release.granted")]
    world.change_scope(task_id, remove={"credential_ids": [str(credential_id)]})

    consume(engine, revoker, intake_event(admin_engine, task_id))

    row = release_row(engine, release_id)
    assert (row.status, row.closed_reason, row.wrap_accessor) == ("revoked", "task_scope_narrowed", None)
    with engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM pending_revocations WHERE release_id = :r"), {"r": release_id}
            ).scalar_one()
            == 0
        )
    revealed = world.reveal(code)
    assert revealed.status_code == 410
    assert secret not in revealed.text


def _intake_state(admin_engine: Any, task_id: uuid.UUID) -> dict[str, Any]:
    with admin_engine.connect() as conn:
        return {
            "task": tuple(conn.execute(text("SELECT * FROM intake.tasks WHERE id = :t"), {"t": task_id}).one()),
            "notes": conn.execute(
                text("SELECT count(*) FROM intake.task_notes WHERE task_id = :t"), {"t": task_id}
            ).scalar_one(),
            "events": conn.execute(
                text("SELECT count(*) FROM intake.outbox WHERE envelope->>'aggregate_id' = :t"), {"t": str(task_id)}
            ).scalar_one(),
        }


def test_a_credential_of_another_client_or_of_nobody_is_422_and_changes_nothing(
    world: World, admin_engine: Any
) -> None:
    client_id = world.new_client()
    theirs, _ = world.new_credential(world.new_client())
    task_id = world.new_task(client_id, assignee=None)
    before = _intake_state(admin_engine, task_id)

    for credential_id in (theirs, uuid.uuid4()):
        r = world.scope_call(task_id, add={"credential_ids": [str(credential_id)]})
        assert r.status_code == 422, r.text
        detail = f"add.credential_ids: {credential_id} is not a credential of the task's client"
        assert r.json() == {
            "error": "validation_error",
            "detail": detail,
            "field": "add.credential_ids",
            "errors": [{"field": "add.credential_ids", "detail": detail}],
        }
    assert _intake_state(admin_engine, task_id) == before


def test_the_scope_route_is_the_admins_alone(world: World, admin_engine: Any) -> None:
    client_id = world.new_client()
    credential_id, _ = world.new_credential(client_id)
    sub = f"tech-{uuid.uuid4().hex[:8]}"
    task_id = world.new_task(client_id, assignee=sub)
    before = _intake_state(admin_engine, task_id)

    for headers in (world.tech(sub), world.tech("tech-other"), world.auth("client_admin", "boss", client_id)):
        r = world.scope_call(task_id, headers, add={"credential_ids": [str(credential_id)]})
        assert (r.status_code, r.json()["error"]) == (403, "forbidden")
    assert _intake_state(admin_engine, task_id) == before
    assert _denied(world.release(sub, task_id, credential_id)) == (403, "release_denied", "out_of_scope")


@pytest.mark.parametrize("who", ["svc:intake", "svc:vendor_sync", "svc:portal", "admin"])
def test_internal_credential_metadata_is_for_intake_and_vendor_sync_and_never_holds_the_secret(
    world: World, who: str
) -> None:
    client_id = world.new_client()
    credential_id, secret = world.new_credential(client_id, notes="the notes stay in Vault")
    headers = world.auth("service", who, aud=["secrets_broker"]) if who.startswith("svc:") else world.admin

    r = world.broker.get(f"/internal/credentials/{credential_id}", headers=headers)
    unknown = world.broker.get(f"/internal/credentials/{uuid.uuid4()}", headers=headers)

    if who not in ("svc:intake", "svc:vendor_sync"):
        assert (r.status_code, unknown.status_code) == (403, 403)
        assert secret not in r.text
        return
    assert r.status_code == 200, r.text
    assert r.json()["id"] == str(credential_id) and r.json()["client_id"] == str(client_id)
    assert secret not in r.text and "the notes stay in Vault" not in r.text
    assert set(r.json()) == CREDENTIAL_FIELDS
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")


def test_a_release_still_needs_a_reason_after_a_scope_change(world: World) -> None:
    """The scope route widens nothing else: the release rules after it are the same."""
    client_id = world.new_client()
    credential_id, _ = world.new_credential(client_id)
    sub = f"tech-{uuid.uuid4().hex[:8]}"
    task_id = world.new_task(client_id, assignee=sub)
    world.change_scope(task_id, add={"credential_ids": [str(credential_id)]})
    assert _denied(world.release(sub, task_id, credential_id, reason="short")) == (
        403,
        "release_denied",
        "reason_too_short",
    )
    assert world.release(sub, task_id, credential_id, reason=STRONG_REASON).status_code == 201


def test_intake_routes_scope_changes_to_the_broker_workers_consumer() -> None:
    from intake.events import ROUTES
    from secrets_broker import jobs
    from secrets_broker.celery_app import app

    [(task_name, queue)] = ROUTES["task.scope_changed"]
    assert (task_name, queue) == (jobs.task_scope_changed.name, "secrets_broker")
    # Registered in the worker's app under that name (a typo would leave the event unconsumed).
    assert task_name in app.tasks


@pytest.mark.parametrize(
    "data",
    [
        {"task_id": str(uuid.uuid4()), "updated_at": "2026-01-01T00:00:00+00:00"},
        {"task_id": str(uuid.uuid4()), "scope": {"credential_categories": ["passwords"]}},
        {"task_id": str(uuid.uuid4()), "scope": {"credential_ids": ["not-a-uuid"]}},
        {"task_id": "nope", "scope": {}},
    ],
    ids=["no-scope", "bad-category", "bad-id", "bad-task"],
)
def test_a_malformed_scope_event_is_refused_and_changes_nothing(engine: Any, data: dict[str, Any]) -> None:
    from secrets_broker.db import KIT
    from secrets_broker.revocation.consumers import CONSUMER, MalformedEvent, on_task_scope_changed

    envelope = {
        "event_id": str(uuid.uuid4()),
        "type": "task.scope_changed",
        "occurred_at": "2026-01-01T00:00:00Z",
        "client_id": str(uuid.uuid4()),
        "aggregate_id": data["task_id"],
        "data": data,
    }
    with pytest.raises(MalformedEvent):
        apply_once(engine, KIT, CONSUMER, envelope, on_task_scope_changed)
    with engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM inbox WHERE event_id = :e"), {"e": envelope["event_id"]}
            ).scalar_one()
            == 0
        )
