"""Revocation that follows intake, in-process: intake's real events fed to the worker's consumers.

The envelopes are the ones intake wrote to its own outbox (read as the superuser), handed to the same
functions the Celery tasks run, with a gateway logged in as `msp-broker-revoker`. A real worker
process on the queue is exercised in test_revocation_worker.py (fast) and tests/e2e (slow).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from broker_helpers import MintingSource, World, audit_rows, lookup_at_vault, release_row, unwrap_at_vault
from sqlalchemy import text

from mspkit.inbox import apply_once


@pytest.fixture(scope="module")
def revoker(devstack_dir: Path, vault_addr: str) -> Iterator[Any]:
    """A gateway logged in as the revoker role, as the worker is."""
    from secrets_broker.vault.gateway import VaultGateway

    gateway = VaultGateway(
        addr=vault_addr, role="msp-broker-revoker", source=MintingSource(devstack_dir, "msp-broker-revoker")
    )
    gateway.login()
    yield gateway


def intake_event(admin_engine: Any, type_: str, aggregate_id: uuid.UUID) -> dict[str, Any]:
    """The latest envelope of this type intake wrote for this aggregate."""
    with admin_engine.connect() as conn:
        return dict(
            conn.execute(
                text(
                    "SELECT envelope FROM intake.outbox WHERE type = :t AND envelope->>'aggregate_id' = :a "
                    "ORDER BY id DESC LIMIT 1"
                ),
                {"t": type_, "a": str(aggregate_id)},
            ).scalar_one()
        )


def consume(engine: Any, revoker: Any, envelope: dict[str, Any], handler: Callable[..., list[uuid.UUID]]) -> bool:
    """What the worker's task does: apply once through the inbox, then revoke what was queued."""
    from secrets_broker.db import KIT
    from secrets_broker.revocation.consumers import CONSUMER
    from secrets_broker.revocation.service import carry_out

    queued: list[uuid.UUID] = []
    applied = apply_once(engine, KIT, CONSUMER, envelope, lambda s, e: queued.extend(handler(s, e)))
    carry_out(engine, gateway=revoker, pending_ids=queued, backoff_max_s=5)
    return applied


def _release(world: World, sub: str, task_id: uuid.UUID, credential_id: uuid.UUID) -> tuple[str, uuid.UUID]:
    r = world.release(sub, task_id, credential_id)
    assert r.status_code == 201, r.text
    return r.json()["wrap_token"], uuid.UUID(r.json()["release_id"])


def _pending(engine: Any, release_id: uuid.UUID) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT done_at, attempts, reason FROM pending_revocations WHERE release_id = :r"), {"r": release_id}
        ).one()


@pytest.mark.parametrize("target", ["on_hold", "done", "cancelled"])
def test_leaving_in_progress_revokes_the_tasks_tokens(
    world: World, engine: Any, admin_engine: Any, revoker: Any, vault_addr: str, target: str
) -> None:
    from secrets_broker.revocation.consumers import on_task_status_changed

    _, credential_id, _, task_id, sub = world.ready()
    tokens = [_release(world, sub, task_id, credential_id) for _ in range(2)]
    world.transition(task_id, target, world.tech(sub) if target != "cancelled" else world.admin)
    envelope = intake_event(admin_engine, "task.status_changed", task_id)

    assert consume(engine, revoker, envelope, on_task_status_changed) is True

    for token, release_id in tokens:
        assert lookup_at_vault(vault_addr, token).status_code == 400
        assert unwrap_at_vault(vault_addr, token).status_code == 400
        row = release_row(engine, release_id)
        assert (row.status, row.closed_reason) == ("revoked", "task_left_in_progress")
        assert _pending(engine, release_id).done_at is not None
    revoked = audit_rows(engine, task_id=task_id, action="release.revoked")
    assert sorted(a.release_id for a in revoked) == sorted(r for _, r in tokens)
    assert {json.loads(a.canonical)["details"]["event_id"] for a in revoked} == {envelope["event_id"]}
    with engine.connect() as conn:
        tomb = conn.execute(
            text("SELECT reason, effective_at, assignee FROM tombstones WHERE task_id = :t"), {"t": task_id}
        ).one()
    assert tomb.reason == "task_left_in_progress" and tomb.assignee is None
    # In effect from the task's own `updated_at` after the change, as the event carries it.
    assert tomb.effective_at == datetime.fromisoformat(envelope["data"]["updated_at"])

    # Redelivered: the inbox absorbs it; nothing is audited twice.
    assert consume(engine, revoker, envelope, on_task_status_changed) is False
    assert len(audit_rows(engine, task_id=task_id, action="release.revoked")) == 2


def test_a_task_back_in_progress_releases_again_and_keeps_its_new_tokens(
    world: World, engine: Any, admin_engine: Any, revoker: Any, vault_addr: str
) -> None:
    from secrets_broker.revocation.consumers import on_task_status_changed

    _, credential_id, secret, task_id, sub = world.ready()
    old_token, old_id = _release(world, sub, task_id, credential_id)
    world.transition(task_id, "on_hold", world.tech(sub))
    on_hold = intake_event(admin_engine, "task.status_changed", task_id)
    consume(engine, revoker, on_hold, on_task_status_changed)
    world.transition(task_id, "in_progress", world.tech(sub))

    # The tombstone covers the views before on_hold, not the task now back in progress.
    new_token, new_id = _release(world, sub, task_id, credential_id)
    assert release_row(engine, old_id).status == "revoked"

    # The same event delivered late (after the new release) must still spare the new token.
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM inbox WHERE event_id = :e"), {"e": on_hold["event_id"]})
    assert consume(engine, revoker, on_hold, on_task_status_changed) is True
    assert release_row(engine, new_id).status == "issued"
    assert world.unwrap(sub, new_token).json()["secret"] == secret
    assert lookup_at_vault(vault_addr, old_token).status_code == 400


def test_intakes_task_events_carry_the_tasks_updated_at(world: World, admin_engine: Any) -> None:
    from secrets_broker.intake_client import get_intake

    _, _, _, task_id, sub = world.ready()
    started = intake_event(admin_engine, "task.status_changed", task_id)
    assert datetime.fromisoformat(started["data"]["updated_at"]) == get_intake().authorization(task_id).updated_at

    world.assign(task_id, f"tech-{uuid.uuid4().hex[:8]}")
    assigned = intake_event(admin_engine, "task.assigned", task_id)
    assert datetime.fromisoformat(assigned["data"]["updated_at"]) == get_intake().authorization(task_id).updated_at
    assert assigned["data"]["previous_assignee"] == sub


def _skewed(envelope: dict[str, Any], by: timedelta) -> dict[str, Any]:
    """The envelope as intake would have written it with its clock off by `by` at the event's write."""
    at = datetime.fromisoformat(envelope["occurred_at"].replace("Z", "+00:00")) + by
    return {**envelope, "occurred_at": at.astimezone(UTC).isoformat().replace("+00:00", "Z")}


def test_a_tombstone_follows_the_tasks_updated_at_whatever_the_events_clock_says(
    world: World, engine: Any, admin_engine: Any, revoker: Any, vault_addr: str
) -> None:
    from secrets_broker.revocation.consumers import on_task_status_changed

    _, credential_id, secret, task_id, sub = world.ready()
    old_token, old_id = _release(world, sub, task_id, credential_id)
    world.transition(task_id, "on_hold", world.tech(sub))
    on_hold = intake_event(admin_engine, "task.status_changed", task_id)
    world.transition(task_id, "in_progress", world.tech(sub))
    new_token, new_id = _release(world, sub, task_id, credential_id)

    # Written by a clock an hour behind: by `occurred_at` the change would predate the old
    # release's view, and by an hour ahead it would postdate the new one's. Neither counts.
    behind = {**_skewed(on_hold, timedelta(hours=-1)), "event_id": str(uuid.uuid4())}
    consume(engine, revoker, behind, on_task_status_changed)
    ahead = {**_skewed(on_hold, timedelta(hours=1)), "event_id": str(uuid.uuid4())}
    consume(engine, revoker, ahead, on_task_status_changed)

    assert (release_row(engine, old_id).status, release_row(engine, old_id).closed_reason) == (
        "revoked",
        "task_left_in_progress",
    )
    assert lookup_at_vault(vault_addr, old_token).status_code == 400
    assert release_row(engine, new_id).status == "issued"
    assert world.unwrap(sub, new_token).json()["secret"] == secret
    with engine.connect() as conn:
        effective = (
            conn.execute(text("SELECT DISTINCT effective_at FROM tombstones WHERE task_id = :t"), {"t": task_id})
            .scalars()
            .all()
        )
    assert effective == [datetime.fromisoformat(on_hold["data"]["updated_at"])]


def test_an_event_without_the_tasks_updated_at_falls_back_to_occurred_at(
    world: World, engine: Any, admin_engine: Any, revoker: Any
) -> None:
    from secrets_broker.revocation.consumers import on_task_status_changed

    _, credential_id, _, task_id, sub = world.ready()
    _, release_id = _release(world, sub, task_id, credential_id)
    world.transition(task_id, "done", world.tech(sub))
    envelope = intake_event(admin_engine, "task.status_changed", task_id)
    # As intake wrote it before the event carried the task's `updated_at` (still in flight).
    old = {**envelope, "data": {k: v for k, v in envelope["data"].items() if k != "updated_at"}}

    consume(engine, revoker, old, on_task_status_changed)

    assert release_row(engine, release_id).status == "revoked"
    with engine.connect() as conn:
        effective = conn.execute(
            text("SELECT effective_at FROM tombstones WHERE task_id = :t"), {"t": task_id}
        ).scalar_one()
    assert effective == datetime.fromisoformat(envelope["occurred_at"].replace("Z", "+00:00"))


def test_a_tombstone_refuses_a_stale_view_of_the_task(
    world: World, engine: Any, admin_engine: Any, revoker: Any, broker_app: Any
) -> None:
    from secrets_broker.deps import intake_dep
    from secrets_broker.intake_client import get_intake
    from secrets_broker.revocation.consumers import on_task_status_changed

    _, credential_id, _, task_id, sub = world.ready()
    token, _ = _release(world, sub, task_id, credential_id)
    stale = get_intake().authorization(task_id)  # in progress, as intake said before the change
    world.transition(task_id, "done", world.tech(sub))
    consume(engine, revoker, intake_event(admin_engine, "task.status_changed", task_id), on_task_status_changed)

    class Stale:
        def authorization(self, _task_id: Any) -> Any:
            return stale

    broker_app.dependency_overrides[intake_dep] = lambda: Stale()
    release = world.release(sub, task_id, credential_id)
    unwrap = world.unwrap(sub, token)

    assert (release.status_code, release.json()["rule"]) == (403, "task_not_in_progress")
    assert unwrap.status_code == 410  # the release was already marked revoked


def test_reassignment_revokes_only_the_previous_assignees_tokens(
    world: World, engine: Any, admin_engine: Any, revoker: Any, vault_addr: str
) -> None:
    from secrets_broker.revocation.consumers import on_task_assigned

    _, credential_id, secret, task_id, first = world.ready()
    old_token, old_id = _release(world, first, task_id, credential_id)
    second = f"tech-{uuid.uuid4().hex[:8]}"
    world.assign(task_id, second)
    # The successor releases before the worker has seen the reassignment.
    new_token, new_id = _release(world, second, task_id, credential_id)
    envelope = intake_event(admin_engine, "task.assigned", task_id)
    assert envelope["data"]["previous_assignee"] == first

    consume(engine, revoker, envelope, on_task_assigned)

    assert (release_row(engine, old_id).status, release_row(engine, old_id).closed_reason) == (
        "revoked",
        "task_reassigned",
    )
    assert lookup_at_vault(vault_addr, old_token).status_code == 400
    assert release_row(engine, new_id).status == "issued"
    assert world.unwrap(second, new_token).json()["secret"] == secret
    # The successor keeps releasing; the predecessor gets the live rule.
    assert world.release(second, task_id, credential_id).status_code == 201
    assert world.release(first, task_id, credential_id).json()["rule"] == "caller_not_assignee"


def test_first_assignment_revokes_nothing(world: World, engine: Any, admin_engine: Any, revoker: Any) -> None:
    from secrets_broker.revocation.consumers import on_task_assigned

    client_id = world.new_client()
    credential_id, _ = world.new_credential(client_id)
    sub = f"tech-{uuid.uuid4().hex[:8]}"
    task_id = world.new_task(client_id, assignee=sub, credential_ids=[credential_id])
    envelope = intake_event(admin_engine, "task.assigned", task_id)
    assert envelope["data"]["previous_assignee"] is None

    consume(engine, revoker, envelope, on_task_assigned)

    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tombstones WHERE task_id = :t"), {"t": task_id}).scalar() == 0
    assert world.release(sub, task_id, credential_id).status_code == 201


def test_a_closed_client_loses_every_token_and_service_release(
    world: World, engine: Any, admin_engine: Any, revoker: Any, vault_addr: str
) -> None:
    from secrets_broker.revocation.consumers import on_client_status_changed

    client_id = world.new_client()
    account = world.new_vendor_account(client_id)
    api_key, _ = world.new_credential(client_id, kind="api_key", vendor_account_id=account)
    tokens = []
    for _ in range(2):
        credential_id, _ = world.new_credential(client_id)
        sub = f"tech-{uuid.uuid4().hex[:8]}"
        task_id = world.new_task(client_id, assignee=sub, credential_ids=[credential_id])
        tokens.append(_release(world, sub, task_id, credential_id))
    r = world.intake.patch(f"/v1/clients/{client_id}", headers=world.admin, json={"status": "closed"})
    assert r.status_code == 200, r.text

    # Only the client event: the client-wide tombstone alone must revoke everything.
    consume(engine, revoker, intake_event(admin_engine, "client.status_changed", client_id), on_client_status_changed)

    for token, release_id in tokens:
        assert lookup_at_vault(vault_addr, token).status_code == 400
        assert (release_row(engine, release_id).status, release_row(engine, release_id).closed_reason) == (
            "revoked",
            "client_left_active",
        )
    service = world.broker.post(
        "/internal/service-releases",
        headers=world.vendor_sync,
        json={"credential_id": str(api_key), "vendor_account_id": str(account), "job_id": "job-1"},
    )
    assert (service.status_code, service.json()["rule"]) == (403, "client_not_active")

    # Active again: service releases come back (person releases follow intake's live task views).
    r = world.intake.patch(f"/v1/clients/{client_id}", headers=world.admin, json={"status": "active"})
    assert r.status_code == 200, r.text
    consume(engine, revoker, intake_event(admin_engine, "client.status_changed", client_id), on_client_status_changed)
    again = world.broker.post(
        "/internal/service-releases",
        headers=world.vendor_sync,
        json={"credential_id": str(api_key), "vendor_account_id": str(account), "job_id": "job-2"},
    )
    assert again.status_code == 201, again.text


def test_sweep_revokes_what_the_api_queued_and_retries_after_a_vault_failure(
    world: World, engine: Any, gateway: Any, revoker: Any, vault_addr: str, devstack_dir: Path
) -> None:
    from sqlmodel import Session

    from secrets_broker.release.pending import request_revocation
    from secrets_broker.revocation.service import sweep
    from secrets_broker.vault.gateway import VaultGateway, credential_path

    client_id = world.new_client()
    credential_id, _ = world.new_credential(client_id)
    wrap = gateway.wrapped_read(credential_path(client_id, credential_id), ttl_s=120)
    with Session(engine) as session, session.begin():
        pending_id = request_revocation(
            session, accessor=wrap.accessor, release_id=None, client_id=client_id, reason="task_changed"
        ).id

    dead = VaultGateway(
        addr="http://127.0.0.1:1",
        role="msp-broker-revoker",
        source=MintingSource(devstack_dir, "msp-broker-revoker"),
        timeout_s=0.5,
    )
    sweep(engine, gateway=dead, backoff_max_s=5)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM pending_revocations WHERE id = :i"), {"i": pending_id}).one()
    assert row.done_at is None and row.attempts == 1 and row.last_error == "VaultUnreachable"
    assert row.next_attempt_at > row.created_at
    assert lookup_at_vault(vault_addr, wrap.token).status_code == 200

    with engine.begin() as conn:
        conn.execute(text("UPDATE pending_revocations SET next_attempt_at = now() WHERE id = :i"), {"i": pending_id})
    sweep(engine, gateway=revoker, backoff_max_s=5)

    assert lookup_at_vault(vault_addr, wrap.token).status_code == 400
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM pending_revocations WHERE id = :i"), {"i": pending_id}).one()
    assert row.done_at is not None and row.attempts == 2
    entry = [a for a in audit_rows(engine, action="release.revoked") if str(pending_id) in a.canonical]
    assert len(entry) == 1 and json.loads(entry[0].canonical)["details"]["was_live"] is True


def test_the_api_role_cannot_revoke(world: World, gateway: Any) -> None:
    from secrets_broker.vault.errors import VaultDenied
    from secrets_broker.vault.gateway import credential_path

    client_id = world.new_client()
    credential_id, _ = world.new_credential(client_id)
    wrap = gateway.wrapped_read(credential_path(client_id, credential_id), ttl_s=60)
    with pytest.raises(VaultDenied):
        gateway.revoke_accessor(wrap.accessor)


def test_celery_task_dead_letters_a_malformed_event(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from secrets_broker import jobs

    envelope = {
        "event_id": str(uuid.uuid4()),
        "type": "task.status_changed",
        "occurred_at": "yesterday",
        "client_id": None,
        "aggregate_id": None,
        "data": {"task_id": str(uuid.uuid4()), "from": "in_progress", "to": "done"},
    }
    result = jobs.task_status_changed.apply(args=[envelope])

    assert result.result is False
    with engine.connect() as conn:
        letters = conn.execute(
            text("SELECT task_name, error FROM dead_letters WHERE args->0->>'event_id' = :e"),
            {"e": envelope["event_id"]},
        ).all()
        inbox = conn.execute(
            text("SELECT count(*) FROM inbox WHERE event_id = :e"), {"e": envelope["event_id"]}
        ).scalar()
    assert [(r.task_name, r.error) for r in letters] == [
        ("secrets_broker.events.task_status_changed", "MalformedEvent")
    ]
    assert inbox == 0  # the transaction rolled back with the failed handler


def test_the_worker_refuses_to_start_with_any_role_but_the_revoker(monkeypatch: pytest.MonkeyPatch) -> None:
    from secrets_broker.revocation import sweeper
    from secrets_broker.settings import get_settings

    api_role = get_settings().model_copy(update={"vault_role": "msp-broker-api"})
    monkeypatch.setattr(sweeper, "get_settings", lambda: api_role)
    with pytest.raises(SystemExit, match="msp-broker-revoker only"):
        sweeper.start_worker()
