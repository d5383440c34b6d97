"""Revocation across the queue: intake's event, published on Redis, is acted on by a real broker worker.

The worker is a `celery -A secrets_broker.celery_app worker -Q secrets_broker` subprocess started the
way `mspctl run-with-secret-id msp-broker-revoker` starts it (role id and a freshly minted wrapped
secret id in its environment), so it holds the revoker's own Vault token. The test process never
calls a consumer: it changes the task or client at intake, publishes the envelope intake wrote with
intake's own Celery app and routing table (the two things intake's relay publishes with; the relay's
outbox bookkeeping is tested in tests/mspkit), and then only watches OpenBao and the broker's rows.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from broker_helpers import World, audit_rows, lookup_at_vault, release_row, unwrap_at_vault
from sqlalchemy import text

REVOKER = "msp-broker-revoker"
# Polling deadlines (how long the test waits for something to happen), not performance bounds.
START_WAIT_S = 60.0
REVOKE_WAIT_S = 20.0
_PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH")


class WorkerProcess:
    """The broker's Celery worker in a subprocess of its own session; its output goes to one log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = log_path.open("ab")
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "secrets_broker.celery_app",
            "worker",
            "-Q",
            "secrets_broker",
            "--loglevel",
            "INFO",
            "--hostname",
            f"test-{uuid.uuid4().hex[:6]}@%h",
        ]
        self.proc = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log_text(self) -> str:
        """Everything the worker logged so far."""
        return self.log_path.read_text("utf-8", "replace")

    def wait_for(self, needle: str) -> None:
        """Wait until the worker logged `needle`, or fail with its log tail."""
        deadline = time.monotonic() + START_WAIT_S
        while needle not in self.log_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the broker worker did not log {needle!r}:\n{self.log_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


@pytest.fixture(scope="module")
def worker(stack_env: dict[str, str], devstack_dir: Path) -> Iterator[WorkerProcess]:
    """The broker worker, logged in as the revoker, consuming `secrets_broker` on the stack's Redis."""
    from mspctl.bao import mint_wrapped_secret_id

    role_id, wrapped = mint_wrapped_secret_id(devstack_dir, REVOKER)
    env = {k: os.environ[k] for k in _PASSTHROUGH if k in os.environ}
    env.update(stack_env)
    env.update(
        MSP_ENV="dev",
        SECRETS_BROKER_VAULT_ROLE=REVOKER,
        SECRETS_BROKER_VAULT_ROLE_ID=role_id,
        SECRETS_BROKER_VAULT_WRAPPED_SECRET_ID=wrapped,
    )
    # Under <devstack>/logs, where the canary sweep greps every log for stored secrets.
    process = WorkerProcess(env, devstack_dir / "logs" / "test-secrets_broker-worker.log")
    try:
        process.wait_for('"vault_login"')
        process.wait_for(" ready.")
        logins = [line for line in process.log_text().splitlines() if '"vault_login"' in line]
        assert logins and all(REVOKER in line for line in logins), "the worker did not log in as the revoker"
        yield process
    finally:
        process.stop()


def _intake_event(admin_engine: Any, type_: str, aggregate_id: uuid.UUID) -> dict[str, Any]:
    """The latest envelope of this type that intake wrote to its outbox for this aggregate."""
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


def _publish_as_intakes_relay(envelope: dict[str, Any]) -> None:
    """Send the envelope to every task intake's routing table names for its type, as the relay does."""
    from intake.celery_app import app as intake_celery
    from intake.events import ROUTES

    routes = ROUTES[envelope["type"]]
    assert routes, f"intake routes {envelope['type']} nowhere"
    for task_name, queue in routes:
        intake_celery.send_task(task_name, args=[envelope], queue=queue, retry=False)


def _wait_until(condition: Callable[[], bool], what: str, worker: WorkerProcess) -> None:
    deadline = time.monotonic() + REVOKE_WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {REVOKE_WAIT_S:g} s; worker log tail:\n{worker.log_text()[-3000:]}")
        time.sleep(0.05)


def _consumed(engine: Any, event_id: str) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text("SELECT count(*) FROM inbox WHERE event_id = :e AND consumer = 'secrets_broker.revocation'"),
                {"e": event_id},
            ).scalar()
        )


@pytest.mark.parametrize(
    ("change", "event_type", "reason"),
    [
        ("task_done", "task.status_changed", "task_left_in_progress"),
        ("client_closed", "client.status_changed", "client_left_active"),
    ],
)
def test_an_intake_event_on_the_queue_makes_the_worker_revoke_the_live_token(
    worker: WorkerProcess,
    world: World,
    engine: Any,
    admin_engine: Any,
    vault_addr: str,
    change: str,
    event_type: str,
    reason: str,
) -> None:
    client_id, credential_id, secret, task_id, sub = world.ready()
    released = world.release(sub, task_id, credential_id)
    assert released.status_code == 201, released.text
    token, release_id = released.json()["wrap_token"], uuid.UUID(released.json()["release_id"])

    if change == "task_done":
        world.transition(task_id, "done", world.tech(sub))
        aggregate_id = task_id
    else:
        closed = world.intake.patch(f"/v1/clients/{client_id}", headers=world.admin, json={"status": "closed"})
        assert closed.status_code == 200, closed.text
        aggregate_id = client_id
    envelope = _intake_event(admin_engine, event_type, aggregate_id)

    # Until the event crosses the queue, nothing has revoked the token: intake's change alone does not.
    assert lookup_at_vault(vault_addr, token).status_code == 200
    assert release_row(engine, release_id).status == "issued"
    assert not _consumed(engine, envelope["event_id"])

    _publish_as_intakes_relay(envelope)

    _wait_until(lambda: release_row(engine, release_id).status == "revoked", "the release was not revoked", worker)
    _wait_until(lambda: lookup_at_vault(vault_addr, token).status_code == 400, "the token is still live", worker)

    # The token no longer unwraps at OpenBao, and the secret was never handed out.
    unwrapped = unwrap_at_vault(vault_addr, token)
    assert unwrapped.status_code == 400 and secret not in unwrapped.text
    row = release_row(engine, release_id)
    assert (row.status, row.closed_reason) == ("revoked", reason)
    # The worker consumed this very event once (inbox), and audited the revocation under its id.
    assert _consumed(engine, envelope["event_id"])
    revoked = audit_rows(engine, release_id=release_id, action="release.revoked")
    assert [json.loads(a.canonical)["details"]["event_id"] for a in revoked] == [envelope["event_id"]]
    # The broker refuses the token too, for the technician who was given it.
    unwrap = world.unwrap(sub, token)
    assert unwrap.status_code == 410 and secret not in unwrap.text


def test_a_request_that_causes_an_event_carries_its_id_into_the_workers_log_line_for_it(
    worker: WorkerProcess, world: World, engine: Any, admin_engine: Any
) -> None:
    _, _, _, task_id, sub = world.ready()
    request_id = f"done-{uuid.uuid4().hex}"
    world.transition(task_id, "done", {**world.tech(sub), "X-Request-ID": request_id})
    envelope = _intake_event(admin_engine, "task.status_changed", task_id)
    # intake's outbox row (what its relay publishes, verbatim) names the request that caused it.
    assert envelope["http_request_id"] == request_id

    _publish_as_intakes_relay(envelope)
    _wait_until(lambda: _consumed(engine, envelope["event_id"]), "the event was not consumed", worker)

    def consumed_lines() -> list[dict[str, Any]]:
        lines = []
        for raw in worker.log_text().splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if (line.get("event"), line.get("task")) == ("event_consumed", "secrets_broker.events.task_status_changed"):
                lines.append(line)
        return lines

    # The inbox row commits before the worker logs; wait for the line itself.
    _wait_until(lambda: any(line.get("request_id") == request_id for line in consumed_lines()),
                "the worker logged no event_consumed line with the request id", worker)
    [line] = [line for line in consumed_lines() if line.get("request_id") == request_id]
    assert line["applied"] is True
