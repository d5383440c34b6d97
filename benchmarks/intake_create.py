"""Benchmark: `POST /v1/requests` (a purchase under the threshold) against a bare one-insert FastAPI endpoint.

    .venv/bin/python benchmarks/intake_create.py [--rounds 3] [--duration 15] [--connections 32] [--workers 1]

Both servers run under uvicorn in subprocesses with the same worker count, against the same
PostgreSQL (a private dev stack started for the run, or the one named by `--devstack`). `wrk` drives
each with the same settings; a Lua script gives every intake request its own Idempotency-Key.
The bare endpoint is the fastest FastAPI endpoint we can write that does one insert: asyncpg, a
pool, a prepared INSERT of the raw body, no validation. Afterwards the rows are reconciled: intake
must have written one request, one task and one `task.created` outbox row per accepted request.

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

# ---- the bare endpoint (imported by uvicorn as `intake_create:bare_app`) -------------------------------

try:
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import Response

    from intake.store import keep_session  # the same pool reset hook as intake's hot pool
    from mspkit.ids import new_id

    @asynccontextmanager
    async def _bare_lifespan(app: FastAPI) -> Any:
        import asyncpg

        from mspkit import gctune

        gctune.tune()  # the same collector settings as every service's app (mspkit.app)

        app.state.pool = await asyncpg.create_pool(
            os.environ["BENCH_BARE_DSN"], min_size=10, max_size=20, statement_cache_size=100, reset=keep_session
        )
        yield
        await app.state.pool.close()

    bare_app = FastAPI(lifespan=_bare_lifespan)

    @bare_app.post("/bare")
    async def bare_insert(request: Request) -> Response:
        """One INSERT of the raw body, nothing else."""
        body = await request.body()
        row_id = new_id()  # the same time-ordered ids as intake's rows
        await request.app.state.pool.execute(
            f"INSERT INTO {BARE_TABLE} (id, body) VALUES ($1, $2::jsonb)", row_id, body.decode()
        )
        return Response(b'{"id":"' + str(row_id).encode() + b'"}', status_code=201, media_type="application/json")

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
def serve(
    app: str, port: int, env: dict[str, str], workers: int, app_dir: Path | None = None
) -> Iterator[tuple[str, int]]:
    """Run `uvicorn app` on 127.0.0.1:port until the block ends; yield (base URL, PID) once it answers."""
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    if app_dir is not None:
        cmd += ["--app-dir", str(app_dir)]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **env}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
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
    wrk: str, url: str, *, headers: dict[str, str], body: str, args: argparse.Namespace, duration: int, prefix: str
) -> dict[str, Any]:
    """One wrk run; the Lua `done` prints a JSON line with the counts and latency percentiles (µs)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(LUA.replace("__PREFIX__", prefix))
        fh.write(f"wrk.method = 'POST'\nwrk.body = {json.dumps(body)}\n")
        for name, value in headers.items():
            fh.write(f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}\n")
        script = fh.name
    try:
        cmd = [
            wrk,
            "-t",
            str(args.threads),
            "-c",
            str(args.connections),
            "-d",
            f"{duration}s",
            "--timeout",
            "10s",
            "-s",
            script,
            url,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script)
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    result = json.loads(line.removeprefix("WRKJSON "))
    errors = result["status_errors"] + result["connect"] + result["read"] + result["write"] + result["timeout"]
    result["ok"] = result["requests"] - result["status_errors"]
    result["errors"] = errors
    result["rps"] = result["ok"] / (result["duration_us"] / 1e6)
    result["command"] = " ".join([*cmd[:-3], "<script.lua>", url])
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


def libpq(url: str) -> str:
    """A libpq URL from a SQLAlchemy one."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def prepare_database(env: dict[str, str]) -> tuple[dict[str, str], str]:
    """Migrate intake and create the bare endpoint's table; (the env to run intake with, the admin DSN)."""
    env = {**env, "MSP_ENV": env.get("MSP_ENV", "dev"), "INTAKE_LOG_LEVEL": "WARNING"}
    admin_dsn = libpq(env["MSP_DATABASE_URL"])
    subprocess.run([sys.executable, "-m", "intake.migrate"], cwd=REPO, env={**os.environ, **env}, check=True)
    sql(admin_dsn, "CREATE SCHEMA IF NOT EXISTS bench")
    sql(
        admin_dsn,
        f"CREATE TABLE IF NOT EXISTS {BARE_TABLE} (id uuid PRIMARY KEY, body jsonb NOT NULL, "
        "created_at timestamptz NOT NULL DEFAULT now())",
    )
    return env, admin_dsn


def main() -> None:
    """Run both benchmarks and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per server")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers, the same for both servers")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measured runs per server")
    parser.add_argument("--devstack", help="use this running devstack dir instead of a private stack")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    wrk = need_wrk()

    from mspctl.tokens import mint

    with private_stack(args.devstack) as (root, env, pg_pid):
        env, admin_dsn = prepare_database(env)
        bare_env = {**env, "BENCH_BARE_DSN": admin_dsn}
        body = json.dumps(PURCHASE)
        with (
            serve("intake_create:bare_app", free_port(), bare_env, args.workers, app_dir=HERE) as (bare_url, bare_pid),
            serve("intake.main:app", free_port(), env, args.workers) as (intake_url, intake_pid),
        ):
            admin = mint(root, role="admin", sub="bench-admin", ttl=3600)
            client = httpx.post(
                intake_url + "/v1/clients",
                headers={"Authorization": f"Bearer {admin}"},
                json={
                    "name": f"Bench {uuid.uuid4().hex[:6]}",
                    "primary_domain": "bench.example",
                    "approver_emails": ["owner@bench.example"],
                    "purchase_approval_threshold_cents": 1_000_000,
                },
            ).json()
            token = mint(root, role="client_user", sub="bench-user", client_id=client["id"], ttl=3600)
            targets = {
                "bare": (bare_url + "/bare", {"Content-Type": "application/json"}, bare_pid),
                "intake": (
                    intake_url + "/v1/requests",
                    {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                    intake_pid,
                ),
            }
            for name, (url, headers, _) in targets.items():
                run_wrk(
                    wrk,
                    url,
                    headers=headers,
                    body=body,
                    args=args,
                    duration=args.warmup,
                    prefix=f"warm-{name}-{uuid.uuid4().hex[:8]}",
                )
            time.sleep(1)  # let requests in flight when the warm-up stopped finish
            cid = client["id"]
            counts = (
                f"SELECT (SELECT count(*) FROM {BARE_TABLE}),"
                " (SELECT count(*) FROM intake.requests WHERE client_id = %s),"
                " (SELECT count(*) FROM intake.tasks WHERE client_id = %s AND status = 'ready'),"
                " (SELECT count(*) FROM intake.outbox WHERE type = 'task.created' AND envelope->>'client_id' = %s)"
            )
            before = sql(admin_dsn, counts, cid, cid, cid)[0]
            rounds: dict[str, list[dict[str, Any]]] = {"bare": [], "intake": []}
            # Alternate the two, so a burst of outside load on the machine hits both alike.
            for r in range(args.rounds):
                for name, (url, headers, server_pid) in targets.items():
                    app_cpu, db_cpu = cpu_seconds(server_pid), cpu_seconds(pg_pid)
                    result = run_wrk(
                        wrk,
                        url,
                        headers=headers,
                        body=body,
                        args=args,
                        duration=args.duration,
                        prefix=f"run{r}-{uuid.uuid4().hex[:8]}",
                    )
                    done = max(result["requests"], 1)
                    result["app_cpu_us"] = (cpu_seconds(server_pid) - app_cpu) * 1e6 / done
                    result["db_cpu_us"] = (cpu_seconds(pg_pid) - db_cpu) * 1e6 / done
                    rounds[name].append(result)
            time.sleep(1)  # let requests in flight when wrk stopped finish
            after = sql(admin_dsn, counts, cid, cid, cid)[0]
    delta = [a - b for a, b in zip(after, before, strict=True)]
    results = {name: combine(runs) for name, runs in rounds.items()}
    results["bare"]["rows"] = delta[0]
    results["intake"]["rows"] = dict(zip(("requests", "tasks", "outbox_task_created"), delta[1:], strict=True))
    report(results, rounds, args)


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the rounds; latency percentiles are the median of the rounds' percentiles."""
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
    bare, intake = results["bare"], results["intake"]
    ratio = intake["rps"] / bare["rps"]
    rows = intake["rows"]
    # wrk stops on a deadline: requests in flight then may commit without wrk counting their response.
    in_flight = rows["requests"] - intake["ok"]
    reconciled = (
        rows["requests"] == rows["tasks"] == rows["outbox_task_created"]
        and 0 <= in_flight <= args.connections * args.rounds
        and intake["errors"] == 0
    )
    print(
        f"\nsettings: {args.rounds} rounds x {args.duration}s per server (alternating), {args.threads} wrk "
        f"threads, {args.connections} connections, {args.workers} uvicorn worker(s) per server, "
        f"{os.cpu_count()} CPUs"
    )
    for r in range(args.rounds):
        b, i = rounds["bare"][r], rounds["intake"][r]
        print(f"round {r + 1}: bare {b['rps']:.0f} req/s, intake {i['rps']:.0f} req/s, ratio {i['rps'] / b['rps']:.2f}")
    print(
        f"{'':8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ok':>8} {'errors':>7} {'app µs/req':>11} {'db µs/req':>10}"
    )
    for name, r in (("bare", bare), ("intake", intake)):
        print(
            f"{name:8} {r['rps']:9.0f} {r['p50_us'] / 1000:8.2f} {r['p99_us'] / 1000:8.2f} {r['ok']:8d} "
            f"{r['errors']:7d} {r['app_cpu_us']:11.0f} {r['db_cpu_us']:10.0f}"
        )
    print(f"ratio intake/bare: {ratio:.2f} (target >= 0.6)")
    print(f"bare rows inserted: {bare['rows']} (wrk ok {bare['ok']})")
    print(
        f"intake rows: requests {rows['requests']}, tasks {rows['tasks']}, outbox task.created "
        f"{rows['outbox_task_created']}; wrk 201s {intake['ok']}; in flight at stop {in_flight}"
    )
    print(f"reconciled: {'yes' if reconciled else 'NO'}")
    print(f"wrk: {intake['command']}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({**results, "rounds": rounds, "ratio": ratio, "reconciled": reconciled}, indent=2)
        )
    if not reconciled:
        sys.exit(1)


if __name__ == "__main__":
    main()
