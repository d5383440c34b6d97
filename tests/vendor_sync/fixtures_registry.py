"""Fixtures and factories for vendor_sync's registry, API and job tests.

Load with `pytest_plugins = ["fixtures_registry"]` in a test module (tests/vendor_sync is on sys.path).

Public fixtures:
- `vs_api`: a TestClient on `vendor_sync.api:app` (in-process, real PostgreSQL).
- `vs_engine`: an engine on the vendor_sync role's database URL (for direct reads and setup).
- `hdr`: `hdr(role, client_id=None, sub=..., staff=True) -> headers`, a bearer token for vendor_sync
  (a technician's sub gets an active staff row for every client at intake unless `staff=False`).
- `new_client`: `new_client() -> uuid`, a client created (and committed) at the live intake, which
  vendor_sync asks whether a client in a path exists.
- `staff_technician`: `staff_technician(client_ids, active=True, sub=None) -> headers`, a technician
  whose staff row, made at the live intake (`POST /v1/staff`), names only `client_ids` (None: all).
- `intake_down`: calling it points the API's intake readers (clients, staff views) at a closed port
  (with empty in-process caches) until the test ends.
- `vault_listener`: a TCP listener standing in for Vault; `.port`, `.url`, `.connections`.
- `vs_worker`: factory starting a real `celery -A vendor_sync.celery_app worker` subprocess
  against the stack and a simulator; returns a `Worker` (log text, child PIDs, stop()).
Plain factories (no fixture needed): `make_vendor`, `make_account`, `make_domain`, `wait_for_run`,
`insert_domain`, `queue_run`, `sim_requests`, `make_contact`, `audit_rows`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from mspctl.ports import free_port

REPO = Path(__file__).resolve().parents[2]
Headers = Callable[..., dict[str, str]]


# ---- in-process API --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def vs_app(stack_env: dict[str, str], intake_live: str) -> Any:
    """The vendor_sync FastAPI app (imported after the stack's env is set), with the live intake it asks."""
    from vendor_sync.api import app

    return app


@pytest.fixture
def vs_api(vs_app: Any) -> Iterator[TestClient]:
    """A TestClient on the vendor_sync API."""
    with TestClient(vs_app) as client:
        yield client


@pytest.fixture(scope="session")
def vs_engine(stack_env: dict[str, str]) -> Iterator[Engine]:
    """An engine with the vendor_sync role (the service's own database URL)."""
    engine = create_engine(stack_env["VENDOR_SYNC_DATABASE_URL"], pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def hdr(mint_token: Callable[..., str], seed_staff: Callable[[str], None]) -> Headers:
    """Factory: headers with a vendor_sync token for a role (client roles need client_id).

    A technician comes with a staff row for every client (`staff=False`: none), as the contract asks.
    """

    def _hdr(role: str, client_id: Any = None, sub: str | None = None, *, staff: bool = True) -> dict[str, str]:
        subject = sub or ("svc:intake" if role == "service" else f"{role}-{uuid.uuid4().hex[:6]}")
        if role == "technician" and staff:
            seed_staff(subject)
        return {"Authorization": f"Bearer {mint_token(role, subject, client_id, aud=['vendor_sync'])}"}

    return _hdr


@pytest.fixture(scope="session")
def new_client(intake_live: str, mint_token: Callable[..., str]) -> Callable[[], uuid.UUID]:
    """Factory: a fresh active client at the live intake; returns its id."""
    headers = {"Authorization": f"Bearer {mint_token('admin', 'vs-test-admin', None, aud=['intake'])}"}

    def _new_client() -> uuid.UUID:
        suffix = uuid.uuid4().hex[:10]
        body = {
            "name": f"VS client {suffix}",
            "primary_domain": f"c{suffix}.example.com",
            "approver_emails": [f"boss@c{suffix}.example.com"],
            "purchase_approval_threshold_cents": 100000,
        }
        response = httpx.post(f"{intake_live}/v1/clients", json=body, headers=headers, timeout=10)
        assert response.status_code == 201, response.text
        return uuid.UUID(response.json()["id"])

    return _new_client


@pytest.fixture(scope="session")
def staff_technician(intake_live: str, mint_token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """Factory: vendor_sync headers of a technician whose staff row at intake names `client_ids` only."""
    intake_admin = {"Authorization": f"Bearer {mint_token('admin', 'vs-staff-admin', aud=['intake'])}"}

    def _technician(client_ids: list[Any] | None, *, active: bool = True, sub: str | None = None) -> dict[str, str]:
        sub = sub or f"tech-{uuid.uuid4().hex[:10]}"
        body = {
            "sub": sub,
            "display_name": "Limited Technician",
            "email": f"{sub}@msp.example",
            "role": "technician",
            "active": active,
            "client_ids": None if client_ids is None else [str(c) for c in client_ids],
        }
        created = httpx.post(f"{intake_live}/v1/staff", json=body, headers=intake_admin, timeout=10)
        assert created.status_code == 201, created.text
        return {"Authorization": f"Bearer {mint_token('technician', sub, aud=['vendor_sync'])}"}

    return _technician


@pytest.fixture
def intake_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Factory: from the call on, vendor_sync's API finds intake unreachable (a closed port).

    Both intake readers move: client existence and staff views (views already cached in Redis stay
    served until they expire, as in production).
    """
    from vendor_sync import intake_client
    from vendor_sync.settings import get_settings

    def _down() -> None:
        monkeypatch.setenv("VENDOR_SYNC_INTAKE_URL", f"http://127.0.0.1:{free_port()}")
        get_settings.cache_clear()
        intake_client.reset_intake_readers()

    yield _down
    monkeypatch.undo()
    get_settings.cache_clear()
    intake_client.reset_intake_readers()


def unique(prefix: str = "t") -> str:
    """A short unique token for names."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def make_vendor(api: TestClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    """POST /v1/vendors with sensible defaults; asserts 201."""
    body = {"name": f"Vendor {unique()}", "kind": "registrar", **overrides}
    response = api.post("/v1/vendors", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def make_account(
    api: TestClient, headers: dict[str, str], client_id: uuid.UUID, vendor_id: str, **overrides: Any
) -> dict[str, Any]:
    """POST /v1/clients/{id}/vendor-accounts; asserts 201."""
    body = {"vendor_id": vendor_id, "account_number": unique("acct-"), **overrides}
    response = api.post(f"/v1/clients/{client_id}/vendor-accounts", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def make_contact(api: TestClient, headers: dict[str, str], account_id: str, **overrides: Any) -> dict[str, Any]:
    """POST /v1/vendor-accounts/{id}/contacts; asserts 201."""
    body = {"name": f"Contact {unique()}", "role": "support", **overrides}
    response = api.post(f"/v1/vendor-accounts/{account_id}/contacts", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def audit_rows(engine: Engine, *object_ids: Any) -> list[dict[str, Any]]:
    """The audit rows of these objects (vendors, accounts, contacts), oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, at, actor, action, object_type, object_id, client_id, request_id, before, after"
                " FROM vendor_sync.audit_events WHERE object_id = ANY(:ids) ORDER BY at, id"
            ),
            {"ids": [uuid.UUID(str(i)) for i in object_ids]},
        ).mappings()
        return [dict(row) for row in rows]


def make_domain(api: TestClient, headers: dict[str, str], client_id: uuid.UUID, name: str) -> dict[str, Any]:
    """POST /v1/clients/{id}/domains; asserts 201."""
    response = api.post(f"/v1/clients/{client_id}/domains", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


# ---- direct database helpers (job tests) -------------------------------------------------------


def insert_domain(
    engine: Engine, name: str, *, client_id: uuid.UUID | None = None, due: bool = False, **fields: Any
) -> uuid.UUID:
    """Insert a domain row directly; not due unless `due` (so no tick picks it up by surprise)."""
    domain_id = uuid.uuid4()
    values = {
        "id": domain_id,
        "client_id": client_id or uuid.uuid4(),
        "name": name,
        "unicode_name": fields.pop("unicode_name", name),
        "next_check_at": datetime.now(UTC) if due else datetime(2999, 1, 1, tzinfo=UTC),
    }
    columns = {**values, **fields}
    names = ", ".join(columns)
    params = ", ".join(f":{k}" for k in columns)
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO vendor_sync.domains ({names}) VALUES ({params})"), columns)
    return domain_id


def queue_run(engine: Engine, domain_id: uuid.UUID, *, publish: bool = True) -> uuid.UUID:
    """Create a queued sync run for a domain and (after commit) publish its refresh message."""
    run_id = uuid.uuid4()
    with engine.begin() as conn:
        client_id = conn.execute(
            text("SELECT client_id FROM vendor_sync.domains WHERE id = :d"), {"d": domain_id}
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO vendor_sync.sync_runs (id, domain_id, client_id, status, enqueued_at)"
                " VALUES (:id, :d, :c, 'queued', now())"
            ),
            {"id": run_id, "d": domain_id, "c": client_id},
        )
    if publish:
        from vendor_sync.celery_app import app

        app.send_task("vendor_sync.domain.refresh", args=[str(run_id)], queue="vendor_sync")
    return run_id


def run_row(engine: Engine, run_id: uuid.UUID) -> dict[str, Any]:
    """The sync run's row as a dict."""
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM vendor_sync.sync_runs WHERE id = :id"), {"id": run_id}).mappings().one()
    return dict(row)


def wait_for_run(
    engine: Engine, run_id: uuid.UUID, *, statuses: tuple[str, ...] = ("succeeded", "failed"), timeout: float = 60
) -> dict[str, Any]:
    """Poll until the run reaches one of `statuses`; fails the test with the last row on timeout."""
    deadline = time.monotonic() + timeout
    row = run_row(engine, run_id)
    while row["status"] not in statuses:
        if time.monotonic() > deadline:
            pytest.fail(f"sync run {run_id} still {row['status']} after {timeout}s: {row}")
        time.sleep(0.1)
        row = run_row(engine, run_id)
    return row


def sim_requests(sim_url: str, path_prefix: str | None = None) -> list[dict[str, Any]]:
    """The simulator's request log (oldest first), optionally for one path prefix."""
    params = {"path_prefix": path_prefix} if path_prefix else {}
    response = httpx.get(f"{sim_url}/_sim/requests", params=params, timeout=5)
    response.raise_for_status()
    return list(response.json()["items"])


def add_fault(sim_url: str, **spec: Any) -> None:
    """Add a simulator fault rule."""
    httpx.post(f"{sim_url}/_sim/faults", json=spec, timeout=5).raise_for_status()


# ---- the "Vault" listener -----------------------------------------------------------------------


@dataclass
class Listener:
    """A TCP listener that counts connections (stands in for Vault in hostile-response tests)."""

    port: int
    connections: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def vault_listener() -> Iterator[Listener]:
    """A listener on a free port; any connection to it is recorded (none should ever come)."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    listener = Listener(port=int(server.getsockname()[1]))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            listener.connections.append(time.time())
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener
    stop.set()
    thread.join(2)
    server.close()


# ---- a real Celery worker ------------------------------------------------------------------------


@dataclass
class Worker:
    """A `celery worker` subprocess and its log."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]

    def log(self) -> str:
        """Everything the worker wrote so far."""
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[int]:
        """PIDs of the prefork pool's children."""
        try:
            return [c.pid for c in psutil.Process(self.proc.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        """Warm shutdown (TERM), then KILL if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def purge_queue(redis_url: str, queue: str = "vendor_sync") -> None:
    """Drop messages left in the queue by earlier tests (e.g. API tests that requested refreshes)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.delete(queue, "unacked", "unacked_index")
    client.close()


@pytest.fixture(scope="module")
def vs_worker(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Worker]]:
    """Factory: start `celery -A vendor_sync.celery_app worker -Q vendor_sync` with env overrides.

    Starting one stops the workers this fixture started before; all are stopped at module end.
    """
    started: list[Worker] = []

    def start(extra_env: dict[str, str], *, concurrency: int = 2, pool: str = "prefork", purge: bool = True) -> Worker:
        # One worker at a time: an earlier one would otherwise take this test's messages.
        for earlier in started:
            earlier.stop()
        if purge:
            purge_queue(stack_env["MSP_REDIS_URL"])
        env = {**os.environ, **stack_env, **extra_env}
        log_path = tmp_path_factory.mktemp("worker") / "worker.log"
        out = open(log_path, "wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "vendor_sync.celery_app",
                "worker",
                "-Q",
                "vendor_sync",
                "-c",
                str(concurrency),
                "--pool",
                pool,
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
                "--hostname",
                f"vs-test-{uuid.uuid4().hex[:6]}@%h",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = Worker(proc=proc, log_path=log_path, env=env)
        started.append(worker)
        deadline = time.monotonic() + 60
        while "ready." not in worker.log():
            if proc.poll() is not None or time.monotonic() > deadline:
                worker.stop()
                pytest.fail(f"celery worker did not start:\n{worker.log()[-3000:]}")
            time.sleep(0.2)
        return worker

    yield start
    for worker in started:
        worker.stop()


# ---- a simulator for job tests, and per-test resets ------------------------------------------------


@pytest.fixture(scope="session")
def job_sim() -> Iterator[str]:
    """A vendor_sim served by uvicorn in a thread (reachable from worker subprocesses); returns its URL."""
    from mspctl.threaded_server import ThreadedServer
    from vendor_sim.app import create_app

    served = ThreadedServer(create_app(latency_ms=0), free_port(), lifespan="auto").start()
    yield served.url
    served.stop()


def worker_env(sim_url: str, vault_url: str, **settings: Any) -> dict[str, str]:
    """Env for a worker pointed at the simulator (allowlisted) with Vault at `vault_url` (denied)."""
    env = {
        "VENDOR_SYNC_RDAP_BOOTSTRAP_URL": f"{sim_url}/rdap/bootstrap/dns.json",
        "VENDOR_SYNC_HTTP_ALLOWED_HOSTS": sim_url.removeprefix("http://"),
        "MSP_VAULT_ADDR": vault_url,
        "VENDOR_SYNC_VAULT_ADDR": vault_url,
    }
    env.update({f"VENDOR_SYNC_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def reset_vendor_state(sim_url: str, redis_url: str) -> None:
    """Simulator back to normal, and the RDAP circuit and rate window forgotten."""
    import redis

    httpx.post(f"{sim_url}/_sim/reset", timeout=5).raise_for_status()
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter("mspkit:cb:rdap:*"):
        client.delete(key)
    for key in client.scan_iter("mspkit_rl*rdap*"):
        client.delete(key)
    client.close()


def domain_row(engine: Engine, domain_id: uuid.UUID) -> dict[str, Any]:
    """The domain's row as a dict."""
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM vendor_sync.domains WHERE id = :id"), {"id": domain_id}).mappings().one()
    return dict(row)


def count_rows(engine: Engine, sql: str, **params: Any) -> int:
    """SELECT count(*) helper."""
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def wait_sim_idle(sim_url: str, timeout: float = 30) -> None:
    """Wait until every request the simulator logged has been answered (no handler left sleeping)."""
    deadline = time.monotonic() + timeout
    while any("status" not in r for r in sim_requests(sim_url)) and time.monotonic() < deadline:
        time.sleep(0.1)
