"""Revocation follows intake through real processes: intake, its relay, Redis, the broker's Celery
worker (logged in as `msp-broker-revoker`), OpenBao.

Each test issues tokens, changes the task or client at intake, and polls OpenBao (a lookup, which
never consumes) for up to 10 s until the tokens are gone; the measured delay is printed and
appended to `<devstack>/e2e-results.jsonl`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from broker_helpers import World, unwrap_at_vault
from procs import json_line, wait_all_gone, wrap_gone

pytestmark = pytest.mark.slow
POLL_S = 10.0


def _token(world: World, sub: str, task_id: uuid.UUID, credential_id: uuid.UUID) -> str:
    r = world.release(sub, task_id, credential_id)
    assert r.status_code == 201, r.text
    return str(r.json()["wrap_token"])


def _record(e2e: Any, case: str, delay: float | None, tokens: int) -> None:
    print(f"\nrevocation delay [{case}]: {f'{delay:.3f} s' if delay is not None else 'NOT WITHIN 10 s'} "
          f"({tokens} tokens)")
    json_line(e2e.results, {"test": "revocation_delay", "case": case, "delay_s": delay, "tokens": tokens})


@pytest.mark.parametrize("change", ["on_hold", "done", "cancelled", "reassigned"])
def test_tokens_issued_before_a_change_stop_unwrapping_once_it_is_processed(
    e2e: Any, world: World, change: str
) -> None:
    _, credential_id, _, task_id, sub = world.ready()
    tokens = [_token(world, sub, task_id, credential_id) for _ in range(3)]

    if change == "reassigned":
        world.assign(task_id, f"tech-{uuid.uuid4().hex[:8]}")
    else:
        world.transition(task_id, change, world.admin if change == "cancelled" else world.tech(sub))
    changed = time.monotonic()
    delay = wait_all_gone(e2e.vault_addr, tokens, changed, timeout=POLL_S)
    _record(e2e, change, delay, len(tokens))

    assert delay is not None, "tokens still live at OpenBao 10 s after the change"
    for token in tokens:
        assert unwrap_at_vault(e2e.vault_addr, token).status_code == 400
        r = world.unwrap(sub, token)
        assert (r.status_code, r.json()["error"]) == (410, "wrap_token_invalid")


def test_a_new_release_is_refused_at_once_while_the_event_is_in_flight(e2e: Any, world: World) -> None:
    _, credential_id, _, task_id, sub = world.ready()
    before = _token(world, sub, task_id, credential_id)
    e2e.intake_relay.stop()
    try:
        world.transition(task_id, "on_hold", world.tech(sub))
        # The event sits in intake's outbox: the worker knows nothing yet, the token is still live...
        assert e2e.intake_relay.pending() >= 1
        assert not wrap_gone(e2e.vault_addr, before)
        # ...yet the live check refuses a new release and the unwrap of the old token.
        release = world.release(sub, task_id, credential_id)
        assert (release.status_code, release.json()["rule"]) == (403, "task_not_in_progress")
        unwrap = world.unwrap(sub, before)
        assert (unwrap.status_code, unwrap.json()["rule"]) == (403, "task_not_in_progress")
        assert not wrap_gone(e2e.vault_addr, before)  # refusals consume nothing
    finally:
        e2e.intake_relay.start()
    delay = wait_all_gone(e2e.vault_addr, [before], time.monotonic(), timeout=POLL_S)
    _record(e2e, "in_flight_then_delivered", delay, 1)
    assert delay is not None


def test_a_task_back_in_progress_keeps_releasing_after_revocation(e2e: Any, world: World) -> None:
    _, credential_id, secret, task_id, sub = world.ready()
    old = _token(world, sub, task_id, credential_id)
    world.transition(task_id, "on_hold", world.tech(sub))
    assert wait_all_gone(e2e.vault_addr, [old], time.monotonic(), timeout=POLL_S) is not None
    world.transition(task_id, "in_progress", world.tech(sub))

    new = _token(world, sub, task_id, credential_id)

    r = world.unwrap(sub, new)
    assert r.status_code == 200 and r.json()["secret"] == secret


def test_a_client_closed_by_an_admin_loses_all_its_outstanding_tokens(e2e: Any, world: World) -> None:
    client_id = world.new_client()
    tokens = []
    for _ in range(3):
        credential_id, _ = world.new_credential(client_id)
        sub = f"tech-{uuid.uuid4().hex[:8]}"
        task_id = world.new_task(client_id, assignee=sub, credential_ids=[credential_id])
        tokens += [_token(world, sub, task_id, credential_id) for _ in range(2)]
    # And a third party's mailed link.
    contact = f"isp-{uuid.uuid4().hex[:8]}@fibre.example.net"
    approval_id = world.request_approval(task_id, credential_ids=[credential_id], categories=["credentials"],
                                         contact_email=contact)
    world.decide_approval(approval_id, client_id, "approved")
    assert world.release(sub, task_id, credential_id, approval_id=approval_id).status_code == 201
    tokens.append(world.mailed_token(contact))

    r = world.intake.patch(f"/v1/clients/{client_id}", headers=world.admin, json={"status": "closed"})
    assert r.status_code == 200, r.text
    delay = wait_all_gone(e2e.vault_addr, tokens, time.monotonic(), timeout=POLL_S)
    _record(e2e, "client_closed", delay, len(tokens))

    assert delay is not None, "some tokens of the closed client are still live"
    assert all(unwrap_at_vault(e2e.vault_addr, t).status_code == 400 for t in tokens)
    assert world.reveal(tokens[-1]).status_code == 410


def test_the_worker_logged_in_as_the_revoker(e2e: Any) -> None:
    lines = [line for line in e2e.worker.log_text().splitlines() if '"vault_login"' in line]
    assert lines and all("msp-broker-revoker" in line for line in lines)
    assert "msp-broker-api" not in "\n".join(lines)


def test_the_broker_relay_delivers_release_events_and_revocation_requests(e2e: Any, world: World) -> None:
    from sqlalchemy import text
    from sqlmodel import Session

    from secrets_broker.db import get_engine
    from secrets_broker.release.pending import request_revocation

    client_id, credential_id, _, task_id, sub = world.ready()
    r = world.release(sub, task_id, credential_id)
    assert r.status_code == 201
    release_id, token = r.json()["release_id"], r.json()["wrap_token"]
    engine = get_engine()

    # release.granted routes nowhere yet (no consumer exists): the relay marks it sent.
    deadline = time.monotonic() + POLL_S
    sent = None
    while time.monotonic() < deadline and sent is None:
        with engine.connect() as conn:
            sent = conn.execute(
                text("SELECT sent_at FROM outbox WHERE type = 'release.granted' AND envelope->>'aggregate_id' = :r"),
                {"r": release_id},
            ).scalar_one()
        time.sleep(0.05)
    assert sent is not None

    # A revocation the API queues (as after a failed re-check) reaches the worker through the relay.
    with engine.connect() as conn:
        accessor = conn.execute(text("SELECT wrap_accessor FROM releases WHERE id = :r"), {"r": release_id}).scalar()
    with Session(engine) as session, session.begin():
        pending_id = request_revocation(
            session, accessor=accessor, release_id=None, client_id=client_id, reason="task_changed"
        ).id
    delay = wait_all_gone(e2e.vault_addr, [token], time.monotonic(), timeout=POLL_S)
    _record(e2e, "api_requested_revocation", delay, 1)
    assert delay is not None
    deadline = time.monotonic() + POLL_S
    while time.monotonic() < deadline and "secrets_broker.revocation.revoke_requested" not in e2e.worker.log_text():
        time.sleep(0.05)
    assert "secrets_broker.revocation.revoke_requested" in e2e.worker.log_text()
    # The row is marked done in the worker's own commit, just after Vault revoked: poll for it.
    done = None
    deadline = time.monotonic() + POLL_S
    while time.monotonic() < deadline and done is None:
        with engine.connect() as conn:
            query = text("SELECT done_at FROM pending_revocations WHERE id = :i")
            done = conn.execute(query, {"i": pending_id}).scalar()
        time.sleep(0.05)
    assert done is not None
