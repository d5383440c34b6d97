"""Benchmark: `POST /v1/releases` next to its floor, in the same run.

It starts a private dev stack (PostgreSQL, Redis, OpenBao, issuer, mail) in a temporary dir, migrates
intake and the broker, and runs both APIs under uvicorn as subprocesses (the broker logged in as
`msp-broker-api` with a launcher-minted wrapped secret id, its per-task quota raised by
`SECRETS_BROKER_RELEASE_QUOTA_PER_HOUR`). One credential, in scope of `--tasks` in-progress tasks,
each assigned to its own technician; operation i uses task i mod `--tasks`. Releases of one task
are serialised by the task's advisory lock (by design: quota and tombstones), so `--tasks 1`
measures that lock and `--tasks` = `--concurrency` measures the service.

Measured, alternately, in rounds, with the same number of client threads:

- release: one `POST /v1/releases` (the broker locks the task, reads intake's authorization, decides,
  mints a wrapped token, re-reads intake, writes the release row, outbox row and audit entry, commits);
- floor: what a release cannot avoid, done bare: one hvac wrapped read of the same secret (same
  AppRole policy) plus one GET of intake's authorization view (same service token).

It reports ops/s and p50/p95 latency of both and the ratios (release / floor; target ≤ 2.5), and
checks that every release has exactly one `release.granted` audit entry and nothing else was audited.

`--statements` measures instead, in this process against a private PostgreSQL, the CPU per call of
the release path's statements as the broker writes them (built once at import, or one SQL text)
next to the same queries built per call through the ORM: the figures that decide which of them stay
prebuilt (docs/benchmarks.md, secrets_broker).

Usage:
    .venv/bin/python benchmarks/broker_release.py [--releases 300] [--concurrency 8] [--tasks 8] [--rounds 2]
        [--json]
    .venv/bin/python benchmarks/broker_release.py --statements [--calls 300]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from mspctl.ports import free_port

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
INFRA = ["postgres", "redis", "openbao", "issuer", "mail"]
# PYTHONPATH: to measure another checkout of a service against this one (see docs/benchmarks.md).
_PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH")
TARGET_RATIO = 2.5


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class CpuMeter:
    """CPU seconds used by each part of the stack (process trees), to explain where an operation's cost goes."""

    def __init__(self, parts: dict[str, int]) -> None:
        import psutil

        self.parts = {name: psutil.Process(pid) for name, pid in parts.items()}

    def sample(self) -> dict[str, float]:
        """Cumulative CPU seconds per part (children included)."""
        import psutil

        out: dict[str, float] = {}
        for name, root in self.parts.items():
            total = 0.0
            # This process's children are the APIs, measured on their own.
            procs = [root] if root.pid == os.getpid() else [root, *root.children(recursive=True)]
            for proc in procs:
                try:
                    times = proc.cpu_times()
                except psutil.Error:
                    continue
                total += times.user + times.system
            out[name] = total
        return out


def _run(threads: int, count: int, op: Callable[[int], None], meter: CpuMeter | None = None) -> dict[str, Any]:
    """Run `op` `count` times on `threads` threads; ops/s, latency percentiles (ms), CPU ms per op by part."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    next_index = iter(range(count))

    def worker() -> None:
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            started = time.perf_counter()
            try:
                op(i)
            except Exception as exc:
                with lock:
                    errors.append(type(exc).__name__ + ": " + str(exc)[:200])
                continue
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    cpu_before = meter.sample() if meter else {}
    began = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - began
    cpu_after = meter.sample() if meter else {}
    if errors:
        raise RuntimeError(f"{len(errors)} operations failed, first: {errors[0]}")
    return {
        "ops": count,
        "seconds": wall,
        "ops_per_s": count / wall,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p95_ms": _percentile(latencies, 0.95) * 1000,
        "cpu_ms_per_op": {k: round((cpu_after[k] - cpu_before[k]) * 1000 / count, 2) for k in cpu_after},
    }


class Bench:
    """The stack, the two API processes and the fixtures of one run."""

    def __init__(self, root: Path, quota: int) -> None:
        from mspctl.stack import Stack

        self.root = root
        self.stack = Stack(root, ports="auto")
        self.quota = quota
        self.procs: list[subprocess.Popen[bytes]] = []

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: os.environ[k] for k in _PASSTHROUGH if k in os.environ}
        env.update(self.stack.env)
        for service in ("intake", "secrets_broker"):
            env.update(self.stack.service_env(service))
        env.update(MSP_ENV="dev", MSP_INTAKE_URL=self.intake_url, MSP_SECRETS_BROKER_URL=self.broker_url)
        env.update(extra)
        return env

    def start(self) -> None:
        from mspctl.bao import mint_wrapped_secret_id

        self.stack.up(only=INFRA)
        self.intake_url = f"http://127.0.0.1:{free_port()}"
        self.broker_url = f"http://127.0.0.1:{free_port()}"
        for service in ("intake", "secrets_broker"):
            subprocess.run([PY, "-m", f"{service}.migrate"], env=self.env(), check=True, cwd=REPO)
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        self._spawn("intake", "intake.main:app", self.intake_url, self.env(), logs)
        role_id, wrapped = mint_wrapped_secret_id(self.root, "msp-broker-api")
        broker_env = self.env(
            SECRETS_BROKER_VAULT_ROLE="msp-broker-api",
            SECRETS_BROKER_VAULT_ROLE_ID=role_id,
            SECRETS_BROKER_VAULT_WRAPPED_SECRET_ID=wrapped,
            SECRETS_BROKER_RELEASE_QUOTA_PER_HOUR=str(self.quota),
        )
        self._spawn("secrets_broker", "secrets_broker.main:app", self.broker_url, broker_env, logs)
        for url in (self.intake_url, self.broker_url):
            self._wait_ready(url)

    def _spawn(self, name: str, app: str, url: str, env: dict[str, str], logs: Path) -> None:
        port = url.rsplit(":", 1)[1]
        log = (logs / f"bench-{name}.log").open("ab")
        self.procs.append(
            subprocess.Popen(
                [PY, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", port, "--no-access-log",
                 "--log-level", "warning"],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
            )
        )

    def _wait_ready(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{url} did not become ready")

    def token(self, role: str, sub: str, client_id: str | None = None) -> dict[str, str]:
        from mspctl.tokens import mint

        aud = ["intake"] if role == "service" else None  # its one service token is for intake's /internal/tasks
        return {"Authorization": f"Bearer {mint(self.root, role=role, sub=sub, client_id=client_id, aud=aud)}"}

    def setup_tasks(self, count: int) -> tuple[str, str, list[tuple[str, str]]]:
        """A client and a credential in scope of `count` in-progress tasks; (client, credential, [(task, tech)])."""
        admin = self.token("admin", "bench-admin")
        suffix = uuid.uuid4().hex[:8]
        secret = f"bench-{uuid.uuid4().hex}"
        with httpx.Client(timeout=30) as c:
            client = c.post(f"{self.intake_url}/v1/clients", headers=admin, json={
                "name": f"Bench {suffix}", "primary_domain": f"b{suffix}.example.com",
                "approver_emails": [f"boss@b{suffix}.example.com"], "purchase_approval_threshold_cents": 100000,
            })
            client.raise_for_status()
            client_id = client.json()["id"]
            credential = c.post(f"{self.broker_url}/v1/credentials", headers=admin, json={
                "client_id": client_id, "kind": "password", "owner": "client", "category": "isp",
                "name": "ISP portal", "username": "admin@example.com", "secret": secret,
            })
            credential.raise_for_status()
            credential_id = credential.json()["id"]
            tasks = [self._task(c, admin, client_id, credential_id, f"bench-tech-{i}") for i in range(count)]
        return client_id, credential_id, tasks

    def _task(self, c: httpx.Client, admin: dict[str, str], client_id: str, credential_id: str,
              tech_sub: str) -> tuple[str, str]:
        """A system task scoping the credential, made ready, assigned to `tech_sub` and started."""
        task = c.post(f"{self.intake_url}/internal/tasks", headers=self.token("service", "svc:vendor_sync"), json={
            "client_id": client_id, "type": "provisioning", "title": "Benchmark task",
            "credential_ids": [credential_id], "vendor_account_ids": [], "credential_categories": [],
        })
        task.raise_for_status()
        task_id = str(task.json()["id"])
        steps = (
            ("transition", admin, {"to": "ready"}),
            ("assign", admin, {"assignee": tech_sub}),
            ("transition", self.token("technician", tech_sub), {"to": "in_progress"}),
        )
        for action, headers, payload in steps:
            c.post(f"{self.intake_url}/v1/tasks/{task_id}/{action}", headers=headers, json=payload).raise_for_status()
        return task_id, tech_sub

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.stack.down()


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", type=int, default=300, help="operations per round, of each kind")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--tasks", type=int, default=8, help="in-progress tasks (one technician each)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating floor/release rounds")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--statements", action="store_true", help="CPU per call of the release path's statements")
    parser.add_argument("--calls", type=int, default=300, help="with --statements: calls per round of each")
    args = parser.parse_args()
    if args.statements:
        return statements(args.calls)

    root = Path(tempfile.mkdtemp(prefix="msp-bench-broker-"))
    total = args.releases * args.rounds + 50
    bench = Bench(root, quota=total * 10)
    try:
        bench.start()
        client_id, credential_id, tasks = bench.setup_tasks(args.tasks)
        figures = measure(bench, args, client_id, credential_id, tasks)
    finally:
        bench.stop()
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        report(figures)
    return 0


def statements(calls: int) -> int:
    """Print the CPU per call of each release-path statement, as shipped and built per call (3 rounds)."""
    root = Path(tempfile.mkdtemp(prefix="msp-bench-stmts-"))
    bench = Bench(root, quota=1)
    try:
        bench.stack.up(only=["postgres"])
        bench.intake_url = bench.broker_url = "http://127.0.0.1:9"  # not called
        env = bench.env()
        subprocess.run([PY, "-m", "secrets_broker.migrate"], env=env, check=True, cwd=REPO)
        os.environ.update(env)
        cases = statement_cases()
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(3):
            for name, (setup, op) in cases.items():
                cpu[name].append(_cpu_per_call(setup, op, calls))
    finally:
        bench.stack.down()
        shutil.rmtree(root, ignore_errors=True)
    print(f"CPU ms per call, median of 3 rounds of {calls} (each call in its own transaction, rolled back)")
    for name, values in cpu.items():
        print(f"  {name:44} {statistics.median(values):6.3f}   rounds {', '.join(f'{v:.3f}' for v in values)}")
    return 0


def _cpu_per_call(setup: Callable[[Any], Any], op: Callable[[Any, Any], None], calls: int) -> float:
    """Milliseconds of this process's CPU per `op`, each call in a session that has begun and is rolled back."""
    from sqlalchemy import text
    from sqlmodel import Session

    from secrets_broker.db import get_engine

    total = 0.0
    for _ in range(calls):
        with Session(get_engine(), expire_on_commit=False) as session:
            session.execute(text("SELECT 1"))  # the connection checkout is not the statement's cost
            state = setup(session)
            started = time.process_time()
            op(session, state)
            total += time.process_time() - started
            session.rollback()
    return total * 1000 / calls


def statement_cases() -> dict[str, tuple[Callable[[Any], Any], Callable[[Any, Any], None]]]:
    """(setup, op) per statement: the broker's own and its per-call ORM twin, on one credential and task."""
    from datetime import timedelta

    from sqlalchemy import and_, func, or_, select, text
    from sqlmodel import Session, col

    from mspkit.outbox import make_envelope, write_event
    from secrets_broker.audit import service as audit
    from secrets_broker.audit.models import AuditEntry
    from secrets_broker.common.types import utcnow
    from secrets_broker.credentials.models import Credential
    from secrets_broker.db import KIT, SCHEMA, get_engine
    from secrets_broker.release import gate
    from secrets_broker.release import service as release_service
    from secrets_broker.release.models import Release, Tombstone
    from secrets_broker.task_auth import Scope, TaskAuth

    client_id, credential_id, task_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = utcnow()
    with Session(get_engine()) as session:
        session.add(Credential(id=credential_id, client_id=client_id, kind="password", owner="client", category="isp",
                               name="n", username="u", status="active", created_by="bench", created_at=now,
                               updated_at=now))
        session.commit()
    view = TaskAuth(task_id=task_id, status="in_progress", assignee="t", assigned_by="a", client_id=client_id,
                    client_status="active", scope=Scope(), approvals=(), updated_at=now)
    columns = [column.key for column in Credential.__table__.columns]  # type: ignore[attr-defined]
    # The single statement the broker used before (credential, task lock and client lock at once).
    locked_text = text(
        f"SELECT {', '.join(columns)}, pg_advisory_xact_lock(hashtextextended(:t, 0)) AS t_locked, "
        f"pg_advisory_xact_lock_shared(hashtextextended(:c || ':' || client_id::text, 0)) AS c_locked "
        f"FROM {SCHEMA}.credentials WHERE id = :id AND status = 'active'"
    )

    def nothing(_: Any) -> None:
        return None

    def locked_read_text(session: Any, _: Any) -> Credential:
        row = session.execute(locked_text, {"id": credential_id, "t": "t", "c": "c"}).one()._mapping
        return Credential(**{column: row[column] for column in columns})

    def release_row(_: Any) -> Release:
        at = utcnow()
        return Release(id=uuid.uuid4(), task_id=task_id, credential_id=credential_id, client_id=client_id,
                       technician="t", recipient_type="technician", token_fingerprint="f", wrap_accessor="a",
                       status="issued", expires_at=at, created_at=at, updated_at=at, auth_updated_at=at,
                       rechecked_at=at)

    def quota_and_tombstones_per_call(session: Any, _: Any) -> None:
        session.execute(select(func.count()).select_from(Release).where(
            col(Release.task_id) == task_id, col(Release.created_at) > now - timedelta(hours=1))).scalar_one()
        session.execute(select(col(Tombstone.task_id), col(Tombstone.assignee)).where(
            or_(col(Tombstone.task_id) == view.task_id,
                and_(col(Tombstone.task_id).is_(None), col(Tombstone.client_id) == view.client_id)),
            or_(col(Tombstone.effective_at).is_(None), col(Tombstone.effective_at) >= view.updated_at))).all()

    def record_as_shipped(session: Any, release: Release) -> None:
        event = make_envelope(type="release.granted", client_id=client_id, aggregate_id=release.id,
                              data=gate.release_event_data(release))
        session.execute(release_service._RECORD_RELEASE, {
            **release.model_dump(), "event_id": uuid.UUID(event["event_id"]), "event_type": event["type"],
            "envelope": json.dumps(event), "chain_key": audit.CHAIN_LOCK_KEY})

    def record_per_call(session: Any, release: Release) -> None:
        session.add(release)
        write_event(session, KIT, type="release.granted", client_id=client_id, aggregate_id=release.id,
                    data=gate.release_event_data(release))
        session.flush()
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": audit.CHAIN_LOCK_KEY})

    def append_per_call(session: Any, _: Any) -> None:
        from secrets_broker.audit.chain import GENESIS_HASH, canonical_json, entry_hash

        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": audit.CHAIN_LOCK_KEY})
        head = session.execute(select(col(AuditEntry.index), col(AuditEntry.hash))
                               .order_by(col(AuditEntry.index).desc()).limit(1)).first()
        index, prev = (0, GENESIS_HASH) if head is None else (int(head[0]) + 1, str(head[1]))
        values: dict[str, Any] = {"index": index, "action": "release.granted", "actor": "t", "client_id": client_id,
                                  "task_id": task_id, "credential_id": credential_id, "release_id": None,
                                  "rule": None, "created_at": utcnow()}
        canonical = canonical_json({**values, "details": {}})
        session.add(AuditEntry(**values, canonical=canonical, prev_hash=prev, hash=entry_hash(prev, canonical)))
        session.flush()

    entry = audit.Entry(action="release.granted", actor="t", client_id=client_id, task_id=task_id,
                        credential_id=credential_id)
    return {
        "credential read + locks, as shipped (ORM)": (
            nothing, lambda s, _: gate.locked_credential(s, credential_id=credential_id, task_id=task_id)),
        "credential read + locks, one SQL text": (nothing, locked_read_text),
        "quota + tombstones, as shipped (built once)": (
            nothing, lambda s, _: (gate.releases_last_hour(s, task_id, now), gate.tombstone_rule(s, view))),
        "quota + tombstones, built per call": (nothing, quota_and_tombstones_per_call),
        "record release, as shipped (one SQL text)": (release_row, record_as_shipped),
        "record release, ORM + kit outbox + lock": (release_row, record_per_call),
        "audit append, as shipped (built once)": (nothing, lambda s, _: audit.append(s, entry)),
        "audit append, built per call (ORM)": (nothing, append_per_call),
    }


def measure(bench: Bench, args: argparse.Namespace, client_id: str, credential_id: str,
            tasks: list[tuple[str, str]]) -> dict[str, Any]:
    """Alternate floor and release rounds; check the audit afterwards."""
    import hvac
    import requests
    from requests.adapters import HTTPAdapter

    from mspctl.bao import mint_wrapped_secret_id
    from mspkit.service_tokens import ServiceTokenSource

    env = bench.env()
    vault_addr = env["MSP_VAULT_ADDR"]
    # The floor logs in exactly as the broker does: AppRole, with a launcher-minted wrapped secret id.
    role_id, wrapped = mint_wrapped_secret_id(bench.root, "msp-broker-api")
    secret_id = hvac.Client(url=vault_addr, token=wrapped).write_data("sys/wrapping/unwrap")["data"]["secret_id"]
    vault_token = hvac.Client(url=vault_addr, token="").auth.approle.login(
        role_id=role_id, secret_id=secret_id, use_token=False
    )["auth"]["client_token"]
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", HTTPAdapter(pool_maxsize=args.concurrency * 2))
    vault = hvac.Client(url=vault_addr, token=vault_token, session=session, timeout=3)
    service_tokens = ServiceTokenSource(
        token_url=env["MSP_TOKEN_URL"], client_id="svc:secrets_broker",
        client_secret=env["SECRETS_BROKER_SERVICE_CLIENT_SECRET"],
    )
    intake = httpx.Client(base_url=bench.intake_url, timeout=5,
                          limits=httpx.Limits(max_connections=args.concurrency * 2))
    broker = httpx.Client(base_url=bench.broker_url, timeout=30,
                          limits=httpx.Limits(max_connections=args.concurrency * 2))
    path = f"msp-kv/data/clients/{client_id}/credentials/{credential_id}"
    techs = [bench.token("technician", sub) for _, sub in tasks]
    bodies = [{"task_id": task_id, "credential_id": credential_id, "reason": "benchmark: routine portal check"}
              for task_id, _ in tasks]
    release_ids: list[str] = []
    ids_lock = threading.Lock()

    def floor(i: int) -> None:
        wrap = vault.read(path, wrap_ttl="120s")["wrap_info"]
        assert wrap["creation_path"] == path
        r = intake.get(f"/internal/tasks/{tasks[i % len(tasks)][0]}/authorization",
                       headers={"Authorization": f"Bearer {service_tokens.token('intake')}"})
        r.raise_for_status()
        assert r.json()["status"] == "in_progress"

    def release(i: int) -> None:
        r = broker.post("/v1/releases", headers=techs[i % len(tasks)], json=bodies[i % len(tasks)])
        if r.status_code != 201:
            raise RuntimeError(f"release answered {r.status_code}: {r.text[:200]}")
        with ids_lock:
            release_ids.append(r.json()["release_id"])

    # Warm both paths (connections, the broker's token, intake's JWKS cache).
    meter = CpuMeter({
        "broker": bench.procs[1].pid,
        "intake": bench.procs[0].pid,
        "postgres": int(bench.stack.pid("postgres") or 0),
        "openbao": int(bench.stack.pid("openbao") or 0),
        "client": os.getpid(),
    })
    _run(args.concurrency, 20, floor)
    _run(args.concurrency, 20, release)
    rounds: dict[str, list[dict[str, float]]] = {"floor": [], "release": []}
    for _ in range(args.rounds):
        rounds["floor"].append(_run(args.concurrency, args.releases, floor, meter))
        rounds["release"].append(_run(args.concurrency, args.releases, release, meter))

    audit = check_audit(env["MSP_DATABASE_URL"], [task_id for task_id, _ in tasks], release_ids)

    def summary(kind: str) -> dict[str, Any]:
        rs = rounds[kind]
        return {
            "ops_per_s": statistics.median(r["ops_per_s"] for r in rs),
            "p50_ms": statistics.median(r["p50_ms"] for r in rs),
            "p95_ms": statistics.median(r["p95_ms"] for r in rs),
            "cpu_ms_per_op": {k: statistics.median(r["cpu_ms_per_op"][k] for r in rs) for k in rs[0]["cpu_ms_per_op"]},
        }

    rel, flo = summary("release"), summary("floor")
    return {
        "command": " ".join([".venv/bin/python", "benchmarks/broker_release.py", *sys.argv[1:]]),
        "concurrency": args.concurrency,
        "tasks": len(tasks),
        "ops_per_round": args.releases,
        "rounds": rounds,
        "release": rel,
        "floor": flo,
        "throughput_ratio": flo["ops_per_s"] / rel["ops_per_s"],
        "p50_ratio": rel["p50_ms"] / flo["p50_ms"],
        "p95_ratio": rel["p95_ms"] / flo["p95_ms"],
        "target_ratio": TARGET_RATIO,
        "audit": audit,
        "cpus": os.cpu_count(),
    }


def check_audit(database_url: str, task_ids: list[str], release_ids: list[str]) -> dict[str, Any]:
    """Every release of the run has exactly one `release.granted` entry; nothing else was audited."""
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        per_release = dict(conn.execute(
            "SELECT release_id::text, count(*) FROM secrets_broker.audit_entries WHERE task_id = ANY(%s::uuid[]) "
            "GROUP BY release_id", (task_ids,),
        ).fetchall())
        actions = dict(conn.execute(
            "SELECT action, count(*) FROM secrets_broker.audit_entries WHERE task_id = ANY(%s::uuid[]) "
            "GROUP BY action", (task_ids,),
        ).fetchall())
        rows = conn.execute("SELECT count(*) FROM secrets_broker.releases WHERE task_id = ANY(%s::uuid[])",
                            (task_ids,)).fetchone()[0]
    measured = set(release_ids)
    ok = (
        all(per_release.get(r) == 1 for r in measured)
        and set(actions) == {"release.granted"}
        and actions["release.granted"] == rows == len(per_release)
    )
    return {"ok": ok, "releases_measured": len(measured), "release_rows": rows, "audit_actions": actions}


def report(f: dict[str, Any]) -> None:
    """Print the figures as a small table."""
    print(f"command: {f['command']}")
    rounds = len(f["rounds"]["release"])
    print(f"concurrency {f['concurrency']}, {f['tasks']} tasks, {f['ops_per_round']} ops per round, {rounds} rounds, "
          f"{f['cpus']} CPUs")
    print(f"{'':10} {'ops/s':>8} {'p50 ms':>8} {'p95 ms':>8}")
    for kind in ("release", "floor"):
        s = f[kind]
        print(f"{kind:10} {s['ops_per_s']:8.1f} {s['p50_ms']:8.1f} {s['p95_ms']:8.1f}")
    parts = list(f["release"]["cpu_ms_per_op"])
    print("CPU ms per op: " + ", ".join(
        f"{p} {f['release']['cpu_ms_per_op'][p]:.1f}/{f['floor']['cpu_ms_per_op'][p]:.1f}" for p in parts
    ) + "  (release/floor)")
    verdict = "met" if f["throughput_ratio"] <= TARGET_RATIO else "NOT met"
    print(f"ratio (floor ops/s / release ops/s): {f['throughput_ratio']:.2f}  target <= {TARGET_RATIO}: {verdict}")
    print(f"ratio p50 release/floor: {f['p50_ratio']:.2f}; p95: {f['p95_ratio']:.2f}")
    a = f["audit"]
    print(f"audit: {'ok' if a['ok'] else 'MISMATCH'} - {a['releases_measured']} releases measured, "
          f"{a['release_rows']} release rows, actions {a['audit_actions']}")


if __name__ == "__main__":
    raise SystemExit(main())
