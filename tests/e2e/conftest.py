"""End-to-end stack for the broker lifecycle: real processes on the session's private infrastructure.

- intake under uvicorn (a subprocess, so the race's load does not share the test runner's GIL);
- the broker API under uvicorn, logged in as `msp-broker-api` with a wrapped secret id minted by
  the launcher's code (`mspctl.bao.mint_wrapped_secret_id`), its release quota raised by setting;
- the broker's Celery worker, started the way `mspctl run-with-secret-id msp-broker-revoker` starts
  it (role id and wrapped secret id in `SECRETS_BROKER_VAULT_*`);
- the broker's relay (`python -m secrets_broker.relay`), and intake's relay in a thread, so a test
  can hold intake's events in flight.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mspctl.ports import free_port

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "secrets_broker"))

from broker_helpers import World
from procs import PY, IntakeRelay, Proc, process_env, uvicorn, wait_log, wait_ready

QUOTA_FOR_TESTS = "100000"


@dataclass
class E2E:
    """Handles on the running processes."""

    devstack_dir: Path
    vault_addr: str
    redis_url: str
    intake_url: str
    broker_url: str
    intake: Proc
    broker: Proc
    worker: Proc
    broker_relay: Proc
    intake_relay: IntakeRelay
    results: Path

    def world(self, auth: Callable[..., dict[str, str]]) -> World:
        """Test helpers speaking HTTP to the real intake and broker processes."""
        return World(httpx.Client(base_url=self.broker_url, timeout=60), self.intake_url, auth, self.devstack_dir)

    def queue_length(self) -> int:
        """Messages waiting in the broker worker's queue."""
        import redis

        return int(redis.Redis.from_url(self.redis_url).llen("secrets_broker"))  # type: ignore[arg-type]

    def drain(self, timeout: float = 120) -> None:
        """Wait until intake has published everything and the worker's queue is empty."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.intake_relay.pending() == 0 and self.queue_length() == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("intake's events did not drain")


@pytest.fixture(scope="session")
def e2e(stack_env: dict[str, str], devstack_dir: Path) -> Iterator[E2E]:
    """Start intake, the broker, its worker and both relays; stop them all at the end."""
    from mspctl.bao import mint_wrapped_secret_id

    logs = devstack_dir / "logs"
    intake_url = f"http://127.0.0.1:{free_port()}"
    broker_port = free_port()
    broker_url = f"http://127.0.0.1:{broker_port}"
    urls = {"MSP_INTAKE_URL": intake_url, "MSP_SECRETS_BROKER_URL": broker_url}
    started: list[Proc] = []
    relay: IntakeRelay | None = None
    try:
        intake = uvicorn("intake", "intake.main:app", int(intake_url.rsplit(":", 1)[1]),
                         process_env(stack_env, **urls), logs).start()
        started.append(intake)
        role_id, wrapped = mint_wrapped_secret_id(devstack_dir, "msp-broker-api")
        broker = uvicorn(
            "secrets_broker",
            "secrets_broker.main:app",
            broker_port,
            process_env(
                stack_env,
                **urls,
                SECRETS_BROKER_VAULT_ROLE="msp-broker-api",
                SECRETS_BROKER_VAULT_ROLE_ID=role_id,
                SECRETS_BROKER_VAULT_WRAPPED_SECRET_ID=wrapped,
                SECRETS_BROKER_RELEASE_QUOTA_PER_HOUR=QUOTA_FOR_TESTS,
            ),
            logs,
        ).start()
        started.append(broker)
        wait_ready(intake_url, intake)
        wait_ready(broker_url, broker)

        role_id, wrapped = mint_wrapped_secret_id(devstack_dir, "msp-broker-revoker")
        worker = Proc(
            "secrets_broker-worker",
            [PY, "-m", "celery", "-A", "secrets_broker.celery_app", "worker", "-Q", "secrets_broker",
             "--loglevel", "INFO", "--hostname", f"e2e-{uuid.uuid4().hex[:6]}@%h"],
            process_env(
                stack_env,
                **urls,
                SECRETS_BROKER_VAULT_ROLE="msp-broker-revoker",
                SECRETS_BROKER_VAULT_ROLE_ID=role_id,
                SECRETS_BROKER_VAULT_WRAPPED_SECRET_ID=wrapped,
                SECRETS_BROKER_REVOCATION_SWEEP_INTERVAL_S="2",
            ),
            logs,
        ).start()
        started.append(worker)
        wait_log(worker, "ready.")
        wait_log(worker, '"vault_login"')
        broker_relay = Proc("secrets_broker-relay", [PY, "-m", "secrets_broker.relay"],
                            process_env(stack_env, **urls), logs).start()
        started.append(broker_relay)
        relay = IntakeRelay()
        relay.start()
        handles = E2E(
            devstack_dir=devstack_dir,
            vault_addr=stack_env["MSP_VAULT_ADDR"],
            redis_url=stack_env["MSP_REDIS_URL"],
            intake_url=intake_url,
            broker_url=broker_url,
            intake=intake,
            broker=broker,
            worker=worker,
            broker_relay=broker_relay,
            intake_relay=relay,
            results=devstack_dir / "e2e-results.jsonl",
        )
        # Events other suites left in intake's outbox reach the worker first; let them pass.
        handles.drain()
        yield handles
    finally:
        if relay is not None:
            relay.stop()
        for proc in reversed(started):
            proc.stop()


@pytest.fixture
def world(e2e: E2E, auth: Callable[..., dict[str, str]]) -> Iterator[World]:
    """World over HTTP to the e2e processes (its relay running)."""
    e2e.intake_relay.start()
    w = e2e.world(auth)
    yield w
    w.intake.close()
    w.broker.close()
    e2e.intake_relay.start()

