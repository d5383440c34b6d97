"""Benchmark: intake's `POST /v1/requests` against three baselines, side by side in one run.

    .venv/bin/python benchmarks/intake_create.py [--rounds 3] [--duration 5] [--old-tree DIR] [--gc-variant]

Every server runs under uvicorn in its own subprocess with the same worker count, against the same
PostgreSQL (a private dev stack started for the run, or the one named by `--devstack`), and `wrk`
drives each with the same settings; a Lua script gives every request its own Idempotency-Key. The
request is a purchase under the client's threshold: one request, one `ready` task, one
`task.created` outbox row and one idempotency row. The targets:

- `intake`: `uvicorn intake.main:app` as deployed (auth with a client_user token, validation, the
  ordinary route and its one transaction);
- `bare` (the floor): one asyncpg INSERT of the raw body into a table of its own, nothing else;
- `fair` (the fair floor): asyncpg, the same four rows as intake (idempotency key, request, task,
  outbox; plus the approval when the purchase is over the threshold) in one transaction, prepared
  statements, no auth and no validation;
- `peer` (the template-style peer): a sync `def` route with a SQLModel session dependency, the body
  validated by intake's own models, the rows added to the session and one commit, then
  `session.refresh` (fastapi/full-stack-fastapi-template's `create_item`), on intake's engine;
- `old` (with `--old-tree DIR`, e.g. `git worktree add --detach /tmp/intake-old <commit>`): the
  same intake app from that tree, to compare create throughput before and after a change;
- `intake-nogc` (with `--gc-variant`): intake with `mspkit.gctune` switched off, to see whether the
  GC tuning still pays.

Each baseline process gets the same GC settings as intake (`mspkit.gctune`). Rounds alternate the
targets, so outside load on the shared machine hits them alike. Afterwards the rows are reconciled:
each target that writes intake's tables must have written one request, one task and one
`task.created` outbox row per accepted request (each target has a client of its own).

Needs `wrk` (apt-get install -y wrk).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from mspctl.ports import free_port

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BARE_TABLE = "bench.bare_requests"
PURCHASE = {
    "type": "purchase",
    "items": [{"description": "Wireless keyboard", "quantity": 2, "unit_price_cents": 2_500}],
    "justification": "The reception keyboard is broken.",
    "supplier": {"name": "Office Supplies Ltd", "contact_email": "sales@office-supplies.example"},
}
THRESHOLD_CENTS = 1_000_000

# ---- the baseline apps (imported by uvicorn as `intake_create:<name>`) ----------------------------------

try:
    import hashlib
    from contextlib import asynccontextmanager
    from typing import Annotated

    from fastapi import Body, Depends, FastAPI, Header, Request
    from fastapi.responses import Response
    from sqlalchemy import insert
    from sqlmodel import Session

    from intake.clients.models import Client  # noqa: F401 - the requests' foreign key names its table
    from intake.db import KIT, get_engine
    from intake.idempotency.models import IdempotencyKey
    from intake.requests.expansion import expand
    from intake.requests.models import ServiceRequest
    from intake.requests.schemas import RequestCreate, RequestPublic
    from intake.tasks.models import Task
    from mspkit import gctune
    from mspkit.ids import new_id
    from mspkit.outbox import make_envelope
    from mspkit.schemas import utcnow

    @asynccontextmanager
    async def _asyncpg_lifespan(app: FastAPI) -> Any:
        import asyncpg

        gctune.tune()
        app.state.pool = await asyncpg.create_pool(os.environ["BENCH_DSN"], min_size=4, max_size=20)
        yield
        await app.state.pool.close()

    bare_app = FastAPI(lifespan=_asyncpg_lifespan)

    @bare_app.post("/bare")
    async def bare_insert(request: Request) -> Response:
        """One INSERT of the raw body, nothing else."""
        body = await request.body()
        row_id = new_id()  # the same time-ordered ids as intake's rows
        await request.app.state.pool.execute(
            f"INSERT INTO {BARE_TABLE} (id, body) VALUES ($1, $2::jsonb)", row_id, body.decode()
        )
        return Response(b'{"id":"' + str(row_id).encode() + b'"}', status_code=201, media_type="application/json")

    FAIR_SQL = (
        "INSERT INTO intake.idempotency_keys (scope, key, body_hash, status_code, response_body, request_id,"
        " created_at) VALUES ($1, $2, $3, 201, $4, $5, now())",
        "INSERT INTO intake.requests (id, client_id, type, status, body, created_by, created_at, updated_at)"
        " VALUES ($1, $2, 'purchase', 'open', $3::jsonb, 'bench', now(), now())",
        "INSERT INTO intake.tasks (id, request_id, client_id, type, title, status, credential_categories,"
        " vendor_account_ids, credential_ids, created_by, created_at, updated_at) VALUES ($1, $2, $3, 'purchase',"
        " 'Purchase', $4, '[]', '[]', '[]', 'bench', now(), now())",
        "INSERT INTO intake.approvals (id, task_id, client_id, status, recipient_name, party_category,"
        " information_categories, credential_ids, expires_at, created_by, created_at, updated_at) VALUES ($1, $2,"
        " $3, 'pending', 'Supplier', 'provider_for_client', '[\"billing\"]', '[]', now() + interval '14 days',"
        " 'bench', now(), now())",
        "INSERT INTO intake.outbox (event_id, type, envelope) VALUES ($1, 'task.created', $2::jsonb)",
    )

    fair_app = FastAPI(lifespan=_asyncpg_lifespan)

    @fair_app.post("/fair")
    async def fair_insert(request: Request) -> Response:
        """intake's rows for one request in one transaction, with no auth, validation or framework help."""
        raw = await request.body()
        body = json.loads(raw)
        client_id = uuid.UUID(request.headers["x-bench-client"])
        total = sum(i["quantity"] * i["unit_price_cents"] for i in body["items"])
        status = "awaiting_approval" if total > THRESHOLD_CENTS else "ready"
        request_id, task_id, event_id = new_id(), new_id(), new_id()
        answer = json.dumps({"id": str(request_id), "task_ids": [str(task_id)]})
        data = {"task_id": str(task_id), "status": status}
        envelope = json.dumps({"event_id": str(event_id), "client_id": str(client_id), "data": data})
        key_sql, request_sql, task_sql, approval_sql, outbox_sql = FAIR_SQL
        async with request.app.state.pool.acquire() as conn, conn.transaction():
            scope = f"client:{client_id}"
            digest = hashlib.sha256(raw).hexdigest()
            await conn.execute(key_sql, scope, request.headers["idempotency-key"], digest, answer, request_id)
            await conn.execute(request_sql, request_id, client_id, raw.decode())
            await conn.execute(task_sql, task_id, request_id, client_id, status)
            if status == "awaiting_approval":
                await conn.execute(approval_sql, new_id(), task_id, client_id)
            await conn.execute(outbox_sql, event_id, envelope)
        return Response(answer.encode(), status_code=201, media_type="application/json")

    def _peer_session() -> Iterator[Session]:
        with Session(get_engine()) as session:  # the template's `get_db`, on intake's engine and pool
            yield session

    @asynccontextmanager
    async def _peer_lifespan(app: FastAPI) -> Any:
        gctune.tune()
        yield

    peer_app = FastAPI(lifespan=_peer_lifespan)

    @peer_app.post("/peer", status_code=201)
    def peer_create(
        body: Annotated[RequestCreate, Body()],
        session: Annotated[Session, Depends(_peer_session)],
        idempotency_key: Annotated[str, Header(alias="Idempotency-Key")],
        x_bench_client: Annotated[uuid.UUID, Header()],
    ) -> RequestPublic:
        """The template's unit of work: add the rows, commit once, refresh, return the model."""
        [plan] = expand(body).tasks
        now = utcnow()
        common = {"client_id": x_bench_client, "created_by": "bench", "created_at": now, "updated_at": now}
        request = ServiceRequest(
            id=new_id(), type=body.type, status="open", body=body.model_dump(mode="json"), **common
        )
        status = plan.initial_status(THRESHOLD_CENTS)
        task = Task(
            id=new_id(),
            request_id=request.id,
            type=plan.type,
            title=plan.title,
            status=status,
            credential_categories=[],
            vendor_account_ids=[],
            credential_ids=[],
            **common,
        )
        key = IdempotencyKey(
            scope=f"client:{x_bench_client}",
            key=idempotency_key,
            body_hash=hashlib.sha256(body.model_dump_json().encode()).hexdigest(),
            status_code=201,
            response_body="{}",
            request_id=request.id,
            created_at=now,
        )
        task_id = task.id
        session.add_all([key, request, task])
        envelope = make_envelope(
            type="task.created", client_id=x_bench_client, aggregate_id=task_id, data={"status": status}
        )
        session.execute(
            insert(KIT.outbox).values(event_id=uuid.UUID(envelope["event_id"]), type="task.created", envelope=envelope)
        )
        session.commit()
        session.refresh(request)
        return RequestPublic(
            id=request.id,
            type=body.type,
            client_id=request.client_id,
            status="open",
            task_ids=[task_id],
            created_at=request.created_at,
        )

    def _intake_without_gc_tuning() -> Any:
        gctune._tuned = True  # tune() then does nothing: the interpreter's default collector settings
        from intake.main import app

        return app

    intake_nogc = _intake_without_gc_tuning() if os.environ.get("BENCH_NOGC") else None

except ImportError:  # pragma: no cover - only the runner needs these when run outside the venv
    pass


# ---- the runner ---------------------------------------------------------------------------------------

LUA = r"""
local counter = 0
local prefix = "__PREFIX__"
local thread_ids = 0
local tid = "0"

function setup(thread)
  thread_ids = thread_ids + 1
  thread:set("tid", tostring(thread_ids))
end

function init(args)
  tid = wrk.thread:get("tid") or "0"
end

function request()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = prefix .. "-" .. tid .. "-" .. counter
  return wrk.format(nil, nil, nil, nil)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "status_errors": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


def need_wrk() -> str:
    """The wrk binary, or exit with how to install it."""
    path = shutil.which("wrk")
    if path is None:
        sys.exit("wrk not found: install it with `apt-get install -y wrk` (Debian/Ubuntu) and run again")
    return path


@contextlib.contextmanager
def private_stack(devstack: str | None) -> Iterator[tuple[Path, dict[str, str], int | None]]:
    """(devstack dir, env, postmaster PID) of a running stack: the named one, or a private postgres+issuer one."""
    from mspctl.stack import Stack

    if devstack:
        stack = Stack(devstack)
        yield stack.root, {**stack.env, **stack.service_env("intake")}, stack.pid("postgres")
        return
    root = Path(tempfile.mkdtemp(prefix="msp-bench-"))
    stack = Stack(root, ports="auto")
    try:
        stack.up(only=["postgres", "issuer"])
        yield root, {**stack.env, **stack.service_env("intake")}, stack.pid("postgres")
    finally:
        stack.down()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def serve(app: str, port: int, env: dict[str, str], workers: int) -> Iterator[tuple[str, int]]:
    """Run `uvicorn app` on 127.0.0.1:port until the block ends; yield (base URL, PID) once it answers."""
    cmd = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    cmd += ["--no-access-log", "--log-level", "warning", "--app-dir", str(HERE)]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **env}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{app} exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/openapi.json", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{app} did not start")
            time.sleep(0.2)
        yield url, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def run_wrk(
    wrk: str,
    url: str,
    *,
    headers: dict[str, str],
    body: str | None,
    args: argparse.Namespace,
    duration: int,
    prefix: str,
) -> dict[str, Any]:
    """One wrk run (a POST of `body`, or a GET without one); the Lua `done` prints counts and latencies (µs)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(LUA.replace("__PREFIX__", prefix))
        if body is not None:
            fh.write(f"wrk.method = 'POST'\nwrk.body = {json.dumps(body)}\n")
        for name, value in headers.items():
            fh.write(f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}\n")
        script = fh.name
    cmd = [wrk, "-t", str(args.threads), "-c", str(args.connections), "-d", f"{duration}s", "--timeout", "10s"]
    try:
        out = subprocess.run([*cmd, "-s", script, url], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script)
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    result = json.loads(line.removeprefix("WRKJSON "))
    result["errors"] = sum(result[k] for k in ("status_errors", "connect", "read", "write", "timeout"))
    result["ok"] = result["requests"] - result["status_errors"]
    result["rps"] = result["ok"] / (result["duration_us"] / 1e6)
    result["command"] = " ".join([*cmd, "-s", "<script.lua>", "<url>"])
    return result


def cpu_seconds(pid: int | None) -> float:
    """User+system CPU seconds of a process and all its descendants (uvicorn workers, postgres backends)."""
    if pid is None:
        return 0.0
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo.extend(children.get(current, []))
    return total


def sql(dsn: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one statement with psycopg (admin connection)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return list(cur.fetchall()) if cur.description else []


def prepare_database(env: dict[str, str]) -> tuple[dict[str, str], str]:
    """Migrate intake and create the bare endpoint's table; (the env to run the servers with, the admin DSN)."""
    env = {**env, "MSP_ENV": env.get("MSP_ENV", "dev"), "INTAKE_LOG_LEVEL": "WARNING"}
    admin_dsn = env["MSP_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://", 1)
    subprocess.run([sys.executable, "-m", "intake.migrate"], cwd=REPO, env={**os.environ, **env}, check=True)
    sql(admin_dsn, "CREATE SCHEMA IF NOT EXISTS bench")
    sql(
        admin_dsn,
        f"CREATE TABLE IF NOT EXISTS {BARE_TABLE} (id uuid PRIMARY KEY, body jsonb NOT NULL, "
        "created_at timestamptz NOT NULL DEFAULT now())",
    )
    return env, admin_dsn


def old_tree_env(tree: str) -> dict[str, str]:
    """An env whose imports of intake, mspkit and mspctl come from another checkout (ahead of the venv's)."""
    root = Path(tree).resolve()
    paths = [root / "services" / "intake", root / "libs" / "mspkit", root / "tools" / "devstack"]
    return {"PYTHONPATH": os.pathsep.join(str(p) for p in paths)}


def mint_with(env: dict[str, str], root: Path, *, client_id: str) -> str:
    """A client_user token minted by the mspctl that `env` imports (an old tree's claims may differ)."""
    code = (
        "import sys; from mspctl.tokens import mint; "
        "print(mint(sys.argv[1], role='client_user', sub='bench-user', client_id=sys.argv[2], ttl=3600))"
    )
    cmd = [sys.executable, "-c", code, str(root), client_id]
    return subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout.strip()


def make_client(intake_url: str, admin_token: str, name: str) -> str:
    """A client (threshold 1,000,000 cents) created through intake's API; its id."""
    response = httpx.post(
        intake_url + "/v1/clients",
        headers={"Authorization": f"Bearer {admin_token}"},
        json={
            "name": f"Bench {name} {uuid.uuid4().hex[:6]}",
            "primary_domain": "bench.example",
            "approver_emails": ["owner@bench.example"],
            "purchase_approval_threshold_cents": THRESHOLD_CENTS,
        },
    )
    response.raise_for_status()
    return str(response.json()["id"])


COUNTS = (
    "SELECT (SELECT count(*) FROM intake.requests WHERE client_id = %s),"
    " (SELECT count(*) FROM intake.tasks WHERE client_id = %s AND status = 'ready'),"
    " (SELECT count(*) FROM intake.outbox WHERE type = 'task.created' AND envelope->>'client_id' = %s)"
)


def main() -> None:
    """Run every target, alternating, and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per server")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers, the same for every server")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measured runs per server")
    parser.add_argument("--devstack", help="use this running devstack dir instead of a private stack")
    parser.add_argument("--old-tree", help="also run the intake app of this checkout (e.g. a git worktree)")
    parser.add_argument("--gc-variant", action="store_true", help="also run intake without mspkit.gctune")
    parser.add_argument("--only", help="comma-separated targets to run (default: all)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    wrk = need_wrk()

    from mspctl.tokens import mint

    specs: dict[str, tuple[str, dict[str, str], str]] = {
        "intake": ("intake.main:app", {}, "/v1/requests"),
        "bare": ("intake_create:bare_app", {}, "/bare"),
        "fair": ("intake_create:fair_app", {}, "/fair"),
        "peer": ("intake_create:peer_app", {}, "/peer"),
    }
    if args.old_tree:
        specs["old"] = ("intake.main:app", old_tree_env(args.old_tree), "/v1/requests")
    if args.gc_variant:
        specs["intake-nogc"] = ("intake_create:intake_nogc", {"BENCH_NOGC": "1"}, "/v1/requests")
    if args.only:
        wanted = {"intake", *args.only.split(",")}
        specs = {k: v for k, v in specs.items() if k in wanted}

    with private_stack(args.devstack) as (root, env, pg_pid), contextlib.ExitStack() as servers:
        env, admin_dsn = prepare_database(env)
        base_env = {**env, "BENCH_DSN": admin_dsn}
        urls: dict[str, tuple[str, int]] = {}
        for name, (app, extra, _) in specs.items():
            urls[name] = servers.enter_context(serve(app, free_port(), {**base_env, **extra}, args.workers))
        admin = mint(root, role="admin", sub="bench-admin", ttl=3600)
        targets: dict[str, dict[str, Any]] = {}
        for name, (_, _, path) in specs.items():
            client_id = None if name == "bare" else make_client(urls["intake"][0], admin, name)
            headers = {"Content-Type": "application/json"}
            if client_id is not None:
                token = mint_with(specs[name][1], root, client_id=client_id)
                headers |= {"Authorization": f"Bearer {token}", "X-Bench-Client": client_id}
            targets[name] = {"url": urls[name][0] + path, "pid": urls[name][1], "headers": headers, "client": client_id}
        body = json.dumps(PURCHASE)
        for name, target in targets.items():
            warm = f"warm-{name}-{uuid.uuid4().hex[:8]}"
            run_wrk(
                wrk, target["url"], headers=target["headers"], body=body, args=args, duration=args.warmup, prefix=warm
            )
        time.sleep(1)  # let requests in flight when the warm-up stopped finish
        before = {n: _counts(admin_dsn, t["client"]) for n, t in targets.items()}
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for r in range(args.rounds):
            for name, target in targets.items():
                app_cpu, db_cpu = cpu_seconds(target["pid"]), cpu_seconds(pg_pid)
                prefix = f"run{r}-{uuid.uuid4().hex[:8]}"
                result = run_wrk(
                    wrk, target["url"], headers=target["headers"], body=body, args=args, duration=args.duration,
                    prefix=prefix,
                )  # fmt: skip
                done = max(result["requests"], 1)
                result["app_cpu_us"] = (cpu_seconds(target["pid"]) - app_cpu) * 1e6 / done
                result["db_cpu_us"] = (cpu_seconds(pg_pid) - db_cpu) * 1e6 / done
                rounds[name].append(result)
        time.sleep(1)  # let requests in flight when wrk stopped finish
        after = {n: _counts(admin_dsn, t["client"]) for n, t in targets.items()}
    results = {name: combine(runs) for name, runs in rounds.items()}
    for name in results:
        results[name]["rows"] = [a - b for a, b in zip(after[name], before[name], strict=True)]
    report(results, rounds, args)


def _counts(admin_dsn: str, client_id: str | None) -> tuple[int, ...]:
    if client_id is None:
        return tuple(r[0] for r in sql(admin_dsn, f"SELECT count(*) FROM {BARE_TABLE}"))
    return tuple(sql(admin_dsn, COUNTS, client_id, client_id, client_id)[0])


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the rounds; latency percentiles and CPU per request are the medians of the rounds'."""
    ok = sum(r["ok"] for r in runs)
    seconds = sum(r["duration_us"] for r in runs) / 1e6

    def median(key: str) -> float:
        values = sorted(r[key] for r in runs)
        return float(values[len(values) // 2])

    return {
        "ok": ok,
        "errors": sum(r["errors"] for r in runs),
        "rps": ok / seconds,
        "p50_us": median("p50_us"),
        "p99_us": median("p99_us"),
        "app_cpu_us": median("app_cpu_us"),
        "db_cpu_us": median("db_cpu_us"),
        "command": runs[0]["command"],
    }


def report(results: dict[str, Any], rounds: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    """Print the comparison and the reconciliation; exit 1 if the rows do not reconcile."""
    intake = results["intake"]
    print(
        f"\nsettings: {args.rounds} rounds x {args.duration}s per server (alternating), {args.threads} wrk "
        f"threads, {args.connections} connections, {args.workers} uvicorn worker(s) per server, "
        f"{os.cpu_count()} CPUs"
    )
    for r in range(args.rounds):
        print(f"round {r + 1}: " + ", ".join(f"{n} {runs[r]['rps']:.0f}" for n, runs in rounds.items()) + " req/s")
    print(
        f"{'':12} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ok':>7} {'errors':>7} {'app µs/req':>11} {'db µs/req':>10}"
    )
    for name, r in results.items():
        print(
            f"{name:12} {r['rps']:8.0f} {r['p50_us'] / 1000:8.2f} {r['p99_us'] / 1000:8.2f} {r['ok']:7d} "
            f"{r['errors']:7d} {r['app_cpu_us']:11.0f} {r['db_cpu_us']:10.0f}"
        )
    ratios = {name: intake["rps"] / max(r["rps"], 1e-9) for name, r in results.items() if name != "intake"}
    for name, ratio in ratios.items():
        label = "new/old (create throughput kept)" if name == "old" else f"intake/{name}"
        print(f"ratio {label}: {ratio:.2f}")
    reconciled = True
    for name, r in results.items():
        if name == "bare":
            print(f"bare rows inserted: {r['rows'][0]} (wrk ok {r['ok']})")
            continue
        requests, tasks, events = r["rows"]
        # wrk stops on a deadline: requests in flight then may commit without wrk counting their response.
        in_flight = requests - r["ok"]
        ok = requests == tasks == events and 0 <= in_flight <= args.connections * args.rounds and r["errors"] == 0
        reconciled &= ok
        print(f"{name} rows: requests {requests}, tasks {tasks}, task.created {events}; wrk 201s {r['ok']} ({ok})")
    print(f"reconciled: {'yes' if reconciled else 'NO'}")
    print(f"wrk: {intake['command']}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({**results, "rounds": rounds, "ratios": ratios, "reconciled": reconciled}, indent=2)
        )
    if not reconciled:
        sys.exit(1)


if __name__ == "__main__":
    main()
