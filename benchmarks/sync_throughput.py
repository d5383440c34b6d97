"""Benchmark: vendor_sync's throughput under a shared vendor rate limit, through vendor_sim.

Two scenarios. Each starts its own private dev stack in a temporary dir, starts N real Celery worker
processes, runs the scheduler tick once in-process (the code beat runs) to queue and publish every
job, and waits until every sync run has finished:

- `rdap`: 10,000 RDAP domain refreshes (stack: PostgreSQL, Redis, vendor_sim).
- `cloudflare`: 200 Cloudflare account syncs of 5 clients. A "record sync" is one listing of one
  zone's records: each account has 50 zones of its own with 5 records each, so each sync is one zones
  page plus 50 record listings, 10,200 calls in all. Every account has its own API key, a broker
  credential of kind api_key that the worker gets through `POST /internal/service-releases` and
  unwraps at OpenBao, and the simulator keeps an account per key (`PUT
  /_sim/cloudflare/accounts/{fingerprint}/state`), so a key lists only its own zones. Stack: the above
  plus OpenBao, the dev issuer, intake, the broker and the vendor_sync API; the stack's own
  vendor_sync worker and beat are not started, the benchmark's workers are.

Both report from the simulator's own request log (one arrival timestamp per request):

- drain time against the ideal drain, calls / min(rate, slots / latency), where slots is the number
  of concurrent jobs (workers x concurrency); the ratio is given against the full vendor limit and
  against the budget our limiter admits after `--headroom`;
- over-limit calls: calls that found more than `rate` calls (themselves included) in the 1 s window
  ending at them, i.e. counted in every sliding 1 s window (and the simulator's own 429s);
- duplicates: RDAP domain requests beyond one per run; for Cloudflare, zone and record listings beyond
  one per account and zone (and listings missing, or outside the key's own account), writes at the
  vendor (a sync only reads), and the registry's dns_records and linked domains against the exact
  number the simulator holds;
- for Cloudflare, where each sync's time in its worker slot goes (key release, vendor calls, plan,
  apply) and the CPU each part of the stack used during the drain.

Usage:
    .venv/bin/python benchmarks/sync_throughput.py [--scenario all|rdap|cloudflare] [--rate 100]
        [--latency-ms 50] [--headroom 0.1] [--workers 2] [--concurrency 4] [--pool prefork]
        [--domains 10000] [--accounts 200] [--clients 5] [--zones 50] [--records 5] [--json] [--keep]
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = ("rdap", "cloudflare")
# google.com is left out: its registrar `related` link makes two calls per refresh.
NAMES = ("norway.no", "example.cz", "lemonde.fr", "example.com", "microsoft.click", "xn--fo-5ja.example")
_SCRUBBED = ("MSP_", "INTAKE_", "VENDOR_SYNC_", "SECRETS_BROKER_", "VAULT_", "BAO_")
CF_PREFIX = "/cloudflare/client/v4"
# The stack's parts whose CPU the Cloudflare scenario reports (the broker's launcher runs it as a child).
CPU_PARTS = ("vendor_sim", "postgres", "redis", "openbao", "secrets_broker", "intake", "issuer")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# ---- shared ---------------------------------------------------------------------------------------


def over_limit_calls(times: list[float], limit: int, window_s: float = 1.0) -> tuple[int, int]:
    """(calls that saw more than `limit` calls in the window ending at them, the busiest window's count)."""
    ordered = sorted(times)
    over = 0
    busiest = 0
    for i, t in enumerate(ordered):
        start = bisect.bisect_right(ordered, t - window_s)
        in_window = i - start + 1
        busiest = max(busiest, in_window)
        if in_window > limit:
            over += 1
    return over, busiest


def middle_rate(times: list[float]) -> float:
    """Calls per second over the middle 80 % of the calls (the steady state, without ramp-up and tail)."""
    ordered = sorted(times)
    lo, hi = int(len(ordered) * 0.1), int(len(ordered) * 0.9)
    span = ordered[hi] - ordered[lo] if hi > lo else 0.0
    return (hi - lo) / span if span > 0 else 0.0


def _psql_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _worker_env(service_env: dict[str, str], root: Path, extra: dict[str, str]) -> dict[str, str]:
    """This process's env without any MSP/service setting of its own, plus the stack's and the benchmark's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED)}
    return {**env, **service_env, "MSP_DEVSTACK_DIR": str(root), **extra}


def _start_worker(
    env: dict[str, str], args: argparse.Namespace, index: int, log_dir: Path, loglevel: str
) -> subprocess.Popen[bytes]:
    log = open(log_dir / f"worker-{index}.log", "wb")
    return subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "vendor_sync.celery_app", "worker", "-Q", "vendor_sync",
            "--pool", args.pool, "-c", str(args.concurrency), "--loglevel", loglevel,
            "--without-mingle", "--without-gossip", "--without-heartbeat", "--hostname", f"bench{index}@%h",
        ],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )


def _start_workers(
    env: dict[str, str], args: argparse.Namespace, log_dir: Path, loglevel: str = "WARNING"
) -> list[subprocess.Popen[bytes]]:
    log_dir.mkdir(exist_ok=True)
    workers = [_start_worker(env, args, i, log_dir, loglevel) for i in range(args.workers)]
    deadline = time.monotonic() + 120
    while True:
        ready = sum("ready." in (log_dir / f"worker-{i}.log").read_text(errors="replace") for i in range(args.workers))
        if ready == args.workers:
            return workers
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {ready}/{args.workers} workers became ready; see {log_dir}")
        time.sleep(0.2)


def _stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for proc in workers:
        proc.terminate()
    for proc in workers:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _worker_tracebacks(log_dir: Path, workers: int) -> int:
    return sum((log_dir / f"worker-{i}.log").read_text(errors="replace").count("Traceback") for i in range(workers))


def _wait_drained(engine: Any, subject: str, deadline_s: float, log_dir: Path) -> None:
    """Until no sync run of this subject (`domain_id` or `vendor_account_id`) is queued or running."""
    from sqlalchemy import text

    deadline = time.monotonic() + deadline_s
    query = text(
        f"SELECT count(*) FROM vendor_sync.sync_runs WHERE {subject} IS NOT NULL AND status IN ('queued', 'running')"
    )
    while True:
        with engine.connect() as conn:
            open_runs = conn.execute(query).scalar_one()
        if open_runs == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{open_runs} runs still open; see {log_dir}")
        time.sleep(0.5)


def _runs_summary(engine: Any, subject: str) -> tuple[datetime, dict[str, int], int]:
    """(latest finished_at, runs by status, attempts in all) of this subject's runs."""
    from sqlalchemy import text

    with engine.connect() as conn:
        finished_at, by_status, attempts = conn.execute(
            text(
                "SELECT max(finished_at), jsonb_object_agg(status, n), sum(a) FROM (SELECT status, count(*) n,"
                " sum(attempts) a, max(finished_at) finished_at FROM vendor_sync.sync_runs"
                f" WHERE {subject} IS NOT NULL GROUP BY status) s"
            )
        ).one()
    return finished_at, by_status, int(attempts or 0)


def _limits(args: argparse.Namespace) -> dict[str, Any]:
    """The vendor's limit, the budget our limiter admits after headroom, and what the slots allow."""
    slots = args.workers * args.concurrency
    by_slots = slots / (args.latency_ms / 1000)
    budget = max(1, math.floor(args.rate * (1 - args.headroom)))  # as vendor_sync.sync.adapter.rate_budget
    return {
        "slots": slots,
        "limit": min(float(args.rate), by_slots),
        "budget": min(float(budget), by_slots),
        "budget_per_s": budget,
        "limit_set_by": "rate" if args.rate <= by_slots else "concurrency",
    }


# ---- scenario: RDAP refreshes ---------------------------------------------------------------------


def _insert_domains(database_url: str, count: int) -> None:
    import psycopg

    now = datetime.now(UTC)
    clients = [uuid.uuid4() for _ in range(math.ceil(count / len(NAMES)))]
    with psycopg.connect(_psql_url(database_url)) as conn, conn.cursor() as cur:
        with cur.copy("COPY vendor_sync.domains (id, client_id, name, unicode_name, next_check_at) FROM STDIN") as cp:
            for i in range(count):
                name = NAMES[i % len(NAMES)]
                cp.write_row((uuid.uuid4(), clients[i // len(NAMES)], name, name, now))
        conn.commit()


def run_rdap(args: argparse.Namespace) -> dict[str, Any]:
    """Refresh `--domains` domains over RDAP once and return the figures."""
    from mspctl.stack import Stack

    root = Path(tempfile.mkdtemp(prefix="msp-bench-"))
    stack = Stack(root, ports="auto", externals={})
    workers: list[subprocess.Popen[bytes]] = []
    try:
        stack.up(only=["postgres", "redis", "vendor_sim"])
        service_env = stack.service_env("vendor_sync")
        env = _worker_env(
            service_env,
            root,
            {
                "VENDOR_SYNC_RDAP_RATE_LIMIT": f"{args.rate}/second",
                "VENDOR_SYNC_RATE_LIMIT_HEADROOM": str(args.headroom),
                "VENDOR_SYNC_TICK_BATCH_SIZE": "500",
                "VENDOR_SYNC_TICK_MAX_BATCHES": str(math.ceil(args.domains / 500) + 1),
                "VENDOR_SYNC_DB_POOL_SIZE": str(max(4, args.concurrency + 2)),
            },
        )
        subprocess.run([sys.executable, "-m", "vendor_sync.migrate"], cwd=REPO, env=env, check=True)
        os.environ.update(env)  # the in-process tick reads the same settings as the workers

        sim = service_env["MSP_VENDOR_SIM_URL"]
        _insert_domains(service_env["VENDOR_SYNC_DATABASE_URL"], args.domains)
        httpx.post(f"{sim}/_sim/reset", timeout=10).raise_for_status()
        httpx.post(f"{sim}/_sim/latency", json={"ms": args.latency_ms}, timeout=10).raise_for_status()

        log_dir = root / "bench-logs"
        workers = _start_workers(env, args, log_dir)

        from vendor_sync.db import get_engine
        from vendor_sync.settings import get_settings
        from vendor_sync.sync.schedule import tick

        engine = get_engine()
        limits = _limits(args)
        started = time.time()
        queued = tick(engine=engine, settings=get_settings())
        enqueue_s = time.time() - started
        _wait_drained(engine, "domain_id", 3 * args.domains / limits["limit"] + 120, log_dir)
        finished_at, by_status, attempts = _runs_summary(engine, "domain_id")
        drain_s = finished_at.timestamp() - started
        calls = httpx.get(f"{sim}/_sim/requests", params={"path_prefix": "/rdap"}, timeout=60).json()["items"]
        calls = [c for c in calls if c["t"] >= started - 1]
        domain_calls = [c for c in calls if c["path"].startswith("/rdap/domain/")]
        over, busiest = over_limit_calls([c["t"] for c in calls], args.rate)
        ideal_s = len(calls) / limits["limit"]
        return {
            "scenario": "rdap",
            "domains": args.domains,
            "runs": by_status,
            "rate_limit_per_s": args.rate,
            "headroom": args.headroom,
            "latency_ms": args.latency_ms,
            "workers": args.workers,
            "pool": args.pool,
            "concurrency_per_worker": args.concurrency,
            "limit_set_by": limits["limit_set_by"],
            "limit_calls_per_s": round(limits["limit"], 1),
            "enqueue_s": round(enqueue_s, 2),
            "tick": queued.as_dict(),
            "vendor_calls": len(calls),
            "vendor_domain_calls": len(domain_calls),
            "drain_s": round(drain_s, 2),
            "ideal_drain_s": round(ideal_s, 2),
            "achieved_calls_per_s": round(len(calls) / drain_s, 1),
            "fraction_of_limit": round(ideal_s / drain_s, 3),
            "fraction_of_budget": round(len(calls) / limits["budget"] / drain_s, 3),
            "over_limit_calls": over,
            "busiest_1s_window": busiest,
            "duplicate_calls": len(domain_calls) - args.domains,
            "attempts_total": attempts,
            "tracebacks_in_worker_logs": _worker_tracebacks(log_dir, args.workers),
        }
    finally:
        _stop_workers(workers)
        stack.down()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}", file=sys.stderr)


# ---- scenario: Cloudflare account syncs ------------------------------------------------------------


def _zones(account: int, count: int, records: int) -> list[dict[str, Any]]:
    """One account's `count` zones (names of its own), each with `records` records: A records and one apex MX."""
    zones = []
    for z in range(count):
        name = f"acct{account:03d}-zone{z:02d}.example"
        items: list[dict[str, Any]] = [
            {"type": "A", "name": f"h{i}.{name}", "content": f"192.0.2.{i % 250 + 1}", "ttl": 300}
            for i in range(records - 1)
        ]
        items.append({"type": "MX", "name": name, "content": "mx.mail-host.example", "ttl": 300, "priority": 10})
        zones.append({"name": name, "records": items})
    return zones


def _seed_accounts(env: dict[str, str], token: str, count: int, clients: int) -> list[dict[str, str]]:
    """`clients` clients sharing `count` Cloudflare accounts, each account with its own API key as a broker
    credential: through the services' APIs with an admin token, as the demo seeds."""
    auth = {"Authorization": f"Bearer {token}"}
    intake = httpx.Client(base_url=env["MSP_INTAKE_URL"], headers=auth, timeout=30)
    broker = httpx.Client(base_url=env["MSP_SECRETS_BROKER_URL"], headers=auth, timeout=30)
    registry = httpx.Client(base_url=env["MSP_VENDOR_SYNC_URL"], headers=auth, timeout=30)

    def ok(response: httpx.Response, what: str) -> dict[str, Any]:
        if response.status_code not in (200, 201):
            raise RuntimeError(f"{what}: {response.status_code} {response.text[:300]}")
        return dict(response.json())

    def client(i: int) -> str:
        body = {
            "name": f"Bench client {i:02d}",
            "primary_domain": f"client{i:02d}.example",
            "approver_emails": [f"it@client{i:02d}.example"],
            "purchase_approval_threshold_cents": 50000,
        }
        return str(ok(intake.post("/v1/clients", json=body), "client")["id"])

    def account(i: int) -> dict[str, str]:
        client_id = client_ids[i % len(client_ids)]
        created = ok(
            registry.post(
                f"/v1/clients/{client_id}/vendor-accounts",
                json={"vendor_id": vendor["id"], "account_number": f"CF-{i:03d}"},
            ),
            "vendor account",
        )
        secret = f"cf-bench-{i:03d}-{uuid.uuid4().hex}"
        credential = ok(
            broker.post(
                "/v1/credentials",
                json={
                    "client_id": client_id,
                    "vendor_account_id": created["id"],
                    "kind": "api_key",
                    "owner": "msp",
                    "category": "dns_host",
                    "name": "Cloudflare API token",
                    "username": "api",
                    "secret": secret,
                },
            ),
            "credential",
        )
        ok(
            registry.patch(f"/v1/vendor-accounts/{created['id']}", json={"api_key_credential_id": credential["id"]}),
            "api key",
        )
        return {"index": str(i), "client_id": client_id, "account_id": created["id"], "secret": secret}

    try:
        vendor = ok(
            registry.post("/v1/vendors", json={"name": "Cloudflare", "kind": "dns_host", "adapter": "cloudflare"}),
            "vendor",
        )
        with ThreadPoolExecutor(max_workers=6) as pool:
            client_ids = list(pool.map(client, range(clients)))
            return list(pool.map(account, range(count)))
    finally:
        for http in (intake, broker, registry):
            http.close()


def _seed_vendor(sim: str, accounts: list[dict[str, str]], zones: int, records: int) -> set[tuple[str, str]]:
    """Give each account's key its own simulated Cloudflare account; returns every (key fingerprint,
    record-listing path) a sync should call once."""
    from vendor_sim.keys import fingerprint

    def put(account: dict[str, str]) -> set[tuple[str, str]]:
        key = fingerprint(account["secret"])
        state = {"zones": _zones(int(account["index"]), zones, records)}
        answer = httpx.put(f"{sim}/_sim/cloudflare/accounts/{key}/state", json=state, timeout=60)
        answer.raise_for_status()
        return {(key, f"{CF_PREFIX}/zones/{zone['id']}/dns_records") for zone in answer.json()["zones"]}

    with ThreadPoolExecutor(max_workers=4) as pool:
        return set().union(*pool.map(put, accounts))


def _count(url: str, sql: str) -> int:
    import psycopg

    with psycopg.connect(_psql_url(url)) as conn:
        return int(conn.execute(sql).fetchone()[0])  # type: ignore[index]


def _jobs_done(log_dir: Path, workers: int) -> dict[str, float]:
    """When each account sync job ended (its `account_sync_done` line, after the apply committed), by run id.

    The run's `finished_at` is stamped before the apply's statements run, so it cannot say that.
    """
    done: dict[str, float] = {}
    for i in range(workers):
        for line in (log_dir / f"worker-{i}.log").read_text(errors="replace").splitlines():
            if '"account_sync_done"' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            stamp = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")).timestamp()
            done[entry["sync_run_id"]] = max(stamp, done.get(entry["sync_run_id"], 0.0))
    return done


def _per_sync_phases(
    runs: list[Any], done: dict[str, float], calls_by_key: dict[str, list[dict[str, Any]]], key_of: dict[str, str]
) -> dict[str, Any]:
    """Where each sync's time in a worker slot goes (medians and means in seconds, and each phase's share
    of all slot time): claim and key release until its first vendor call, the vendor calls, the plan
    until `finished_at`, and the apply and commit until the job's end."""
    phases: dict[str, list[float]] = defaultdict(list)
    for run_id, account_id, started_at, finished_at in runs:
        own = sorted(c["t"] for c in calls_by_key.get(key_of[str(account_id)], []))
        end = done.get(str(run_id))
        if not own or started_at is None or finished_at is None or end is None:
            continue
        start, finished = started_at.timestamp(), finished_at.timestamp()
        phases["claim_and_key_release_s"].append(own[0] - start)
        phases["vendor_calls_s"].append(own[-1] - own[0])
        phases["plan_s"].append(finished - own[-1])
        phases["apply_and_commit_s"].append(end - finished)
        phases["in_slot_s"].append(end - start)
        phases["per_call_gap_ms"].append(1000 * (own[-1] - own[0]) / max(1, len(own) - 1))
    total = sum(phases["in_slot_s"]) or 1.0
    out: dict[str, Any] = {}
    for name, values in phases.items():
        out[name] = {"median": round(statistics.median(values), 3), "mean": round(statistics.fmean(values), 3)}
        if name.endswith("_s") and name != "in_slot_s":
            out[name]["share_of_slot_time"] = round(sum(values) / total, 3)
    return out


def _cpu_s(pids: list[int | None], *, descendants: bool = True) -> float:
    """CPU seconds (user + system) used so far by these processes and, unless told not to, their descendants."""
    import psutil

    total = 0.0
    for pid in pids:
        if not pid:
            continue
        try:
            root = psutil.Process(pid)
            times = root.cpu_times()
            total += times.user + times.system
            if not descendants:
                continue
            total += times.children_user + times.children_system
            for child in root.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    times = child.cpu_times()
                    total += times.user + times.system
        except psutil.Error:
            continue
    return total


def run_cloudflare(args: argparse.Namespace) -> dict[str, Any]:
    """Sync `--accounts` Cloudflare accounts (of `--clients` clients) once and return the figures.

    Every account is a first sync: it links its 50 zones to the client's domains and writes their
    records (one plan of 300 creates), as a newly added account's sync does. The zone names are the
    account's own, so no two syncs touch the same registry rows.
    """
    from mspctl.stack import Stack
    from mspctl.tokens import mint
    from vendor_sim.keys import fingerprint

    root = Path(tempfile.mkdtemp(prefix="msp-bench-cf-"))
    stack = Stack(root, ports="auto", externals={})
    workers: list[subprocess.Popen[bytes]] = []
    try:
        stack.up(only=["intake", "secrets_broker", "vendor_sync", "vendor_sim"])
        stack_env = stack.env
        service_env = stack.service_env("vendor_sync")
        env = _worker_env(
            service_env,
            root,
            {
                "VENDOR_SYNC_VENDOR_RATE_LIMITS": f"cloudflare={args.rate}/second",
                "VENDOR_SYNC_RATE_LIMIT_HEADROOM": str(args.headroom),
                "VENDOR_SYNC_TICK_BATCH_SIZE": "500",
                "VENDOR_SYNC_DB_POOL_SIZE": str(max(4, args.concurrency + 2)),
            },
        )
        os.environ.update(env)  # the in-process tick reads the same settings as the workers

        seeding = time.time()
        token = mint(root, role="admin", sub="bench-admin")
        accounts = _seed_accounts(stack_env, token, args.accounts, args.clients)
        sim = service_env["MSP_VENDOR_SIM_URL"]
        httpx.post(f"{sim}/_sim/reset", timeout=10).raise_for_status()
        expected_listings = _seed_vendor(sim, accounts, args.zones, args.records)
        seed_s = time.time() - seeding
        httpx.post(
            f"{sim}/_sim/ratelimit", json={"vendor": "cloudflare", "per_second": args.rate}, timeout=10
        ).raise_for_status()
        httpx.post(f"{sim}/_sim/latency", json={"ms": args.latency_ms}, timeout=10).raise_for_status()
        httpx.delete(f"{sim}/_sim/requests", timeout=10).raise_for_status()

        log_dir = root / "bench-logs"
        # INFO: each job's `account_sync_done` line says when it really ended (see _jobs_done).
        workers = _start_workers(env, args, log_dir, loglevel="INFO")
        # CPU used during the drain, per part of the stack: what limits the drain on a small machine.
        cpu_parts = {
            "vendor_sync_workers": lambda: [w.pid for w in workers],
            **{part: (lambda part=part: [stack.pid(part)]) for part in CPU_PARTS},
        }

        from sqlalchemy import text

        from vendor_sync.db import get_engine
        from vendor_sync.settings import get_settings
        from vendor_sync.sync.schedule import tick

        engine = get_engine()
        with engine.begin() as conn:
            # Accounts became due when their key was set; make them all due at the same instant.
            conn.execute(text("UPDATE vendor_sync.vendor_accounts SET next_sync_at = now()"))
        limits = _limits(args)
        expected_calls = args.accounts * (math.ceil(args.zones / 50) + args.zones)
        cpu_before = {name: _cpu_s(pids()) for name, pids in cpu_parts.items()}
        own_cpu_before = _cpu_s([os.getpid()], descendants=False)
        started = time.time()
        queued = tick(engine=engine, settings=get_settings())
        enqueue_s = time.time() - started
        _wait_drained(engine, "vendor_account_id", 3 * expected_calls / limits["limit"] + 180, log_dir)
        cpu = {name: round(_cpu_s(pids()) - cpu_before[name], 1) for name, pids in cpu_parts.items()}
        cpu["benchmark_and_tick"] = round(_cpu_s([os.getpid()], descendants=False) - own_cpu_before, 1)
        finished_at, by_status, attempts = _runs_summary(engine, "vendor_account_id")
        time.sleep(1)  # the last job's log line follows its commit by a few milliseconds
        done = _jobs_done(log_dir, args.workers)
        drain_s = max([finished_at.timestamp(), *done.values()]) - started
        with engine.connect() as conn:
            runs = conn.execute(
                text(
                    "SELECT id, vendor_account_id, started_at, finished_at FROM vendor_sync.sync_runs"
                    " WHERE vendor_account_id IS NOT NULL"
                )
            ).all()

        slot_s = sum(done[str(r.id)] - r.started_at.timestamp() for r in runs if str(r.id) in done and r.started_at)
        calls = httpx.get(f"{sim}/_sim/requests", params={"path_prefix": "/cloudflare"}, timeout=60).json()["items"]
        calls = [c for c in calls if c["t"] >= started - 1]
        times = [c["t"] for c in calls]
        over, busiest = over_limit_calls(times, args.rate)
        calls_by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for call in calls:
            calls_by_key[call.get("key_fingerprint") or "-"].append(call)
        key_of = {a["account_id"]: fingerprint(a["secret"]) for a in accounts}
        zone_pages: Counter[str | None] = Counter()
        record_listings: Counter[tuple[str | None, str]] = Counter()
        for call in calls:
            if call["method"] != "GET":
                continue
            if call["path"] == f"{CF_PREFIX}/zones":
                zone_pages[call.get("key_fingerprint")] += 1
            elif call["path"].endswith("/dns_records"):
                record_listings[(call.get("key_fingerprint"), call["path"])] += 1
        db_url = service_env["VENDOR_SYNC_DATABASE_URL"]
        records_in_registry = _count(db_url, "SELECT count(*) FROM vendor_sync.dns_records")
        linked_domains = _count(
            db_url, "SELECT count(*) FROM vendor_sync.domains WHERE dns_host_account_id IS NOT NULL"
        )
        key_releases = _count(
            stack_env["SECRETS_BROKER_DATABASE_URL"],
            "SELECT count(*) FROM secrets_broker.releases WHERE recipient_type = 'service'",
        )
        ideal_s = len(calls) / limits["limit"]
        return {
            "scenario": "cloudflare",
            "accounts": args.accounts,
            "clients": args.clients,
            "zones_per_account": args.zones,
            "records_per_zone": args.records,
            "seed_s": round(seed_s, 1),
            "runs": by_status,
            "rate_limit_per_s": args.rate,
            "headroom": args.headroom,
            "budget_per_s": limits["budget_per_s"],
            "latency_ms": args.latency_ms,
            "workers": args.workers,
            "pool": args.pool,
            "concurrency_per_worker": args.concurrency,
            "limit_set_by": limits["limit_set_by"],
            "limit_calls_per_s": round(limits["limit"], 1),
            "enqueue_s": round(enqueue_s, 2),
            "tick": queued.as_dict(),
            "vendor_calls": len(calls),
            "expected_calls": expected_calls,
            "record_listings": sum(record_listings.values()),
            "keys_seen": len([k for k in calls_by_key if k in set(key_of.values())]),
            "key_releases": key_releases,
            "drain_s": round(drain_s, 2),
            "ideal_drain_s": round(ideal_s, 2),
            "ideal_drain_at_budget_s": round(len(calls) / limits["budget"], 2),
            "achieved_calls_per_s": round(len(calls) / drain_s, 1),
            "middle_80pct_calls_per_s": round(middle_rate(times), 1),
            "fraction_of_limit": round(ideal_s / drain_s, 3),
            "fraction_of_budget": round(len(calls) / limits["budget"] / drain_s, 3),
            "first_call_after_s": round(min(times) - started, 2) if times else None,
            "last_call_to_drained_s": round(started + drain_s - max(times), 2) if times else None,
            "over_limit_calls": over,
            "busiest_1s_window": busiest,
            "simulator_429s": sum(1 for c in calls if c.get("over_limit")),
            "writes_at_vendor": sum(1 for c in calls if c["method"] in WRITE_METHODS),
            "duplicate_zone_listings": sum(n - 1 for n in record_listings.values() if n > 1)
            + sum(n - 1 for n in zone_pages.values() if n > 1),
            "missing_zone_listings": len(expected_listings - record_listings.keys()),
            "listings_outside_own_account": len(record_listings.keys() - expected_listings),
            "dns_records_in_registry": records_in_registry,
            "dns_records_expected": args.accounts * args.zones * args.records,
            "linked_domains": linked_domains,
            "linked_domains_expected": args.accounts * args.zones,
            "attempts_total": attempts,
            "busy_slots_mean": round(slot_s / drain_s, 2),
            "per_sync": _per_sync_phases(runs, done, calls_by_key, key_of),
            "cpu_s_during_drain": {**cpu, "machine_cores": os.cpu_count()},
            "tracebacks_in_worker_logs": _worker_tracebacks(log_dir, args.workers),
        }
    finally:
        _stop_workers(workers)
        stack.down()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}", file=sys.stderr)


# ---- output -----------------------------------------------------------------------------------------


def verdict(result: dict[str, Any]) -> tuple[bool, str]:
    """Whether the scenario met its issue's target, and the target in words."""
    if result["scenario"] == "rdap":
        ok = result["fraction_of_limit"] >= 0.8 and result["over_limit_calls"] == 0 and result["duplicate_calls"] == 0
        return ok, ">= 0.8 of the limit, 0 over-limit, 0 duplicates"
    clean = (
        result["over_limit_calls"] == 0
        and result["writes_at_vendor"] == 0
        and result["duplicate_zone_listings"] == 0
        and result["missing_zone_listings"] == 0
        and result["listings_outside_own_account"] == 0
        and result["dns_records_in_registry"] == result["dns_records_expected"]
        and result["linked_domains"] == result["linked_domains_expected"]
        and set(result["runs"]) == {"succeeded"}
    )
    ceiling = result["budget_per_s"] / result["rate_limit_per_s"]
    return (
        clean and result["fraction_of_limit"] >= 0.9,
        ">= 0.9 of the limit, 0 over-limit, 0 duplicate writes or listings, every run succeeded;"
        f" the headroom caps it at {ceiling:.2f} of the limit",
    )


def _print(result: dict[str, Any]) -> None:
    width = max(len(k) for k in result) + 2
    for key, value in result.items():
        if isinstance(value, dict) and key in ("per_sync", "cpu_s_during_drain"):
            print(key)
            for phase, figures in value.items():
                print(f"  {phase:<{width - 2}}  {figures}")
        else:
            print(f"{key:<{width}}  {value}")
    ok, words = verdict(result)
    print(f"{'target met':<{width}}  {ok} ({words})")


def _child_args(args: argparse.Namespace, scenario: str) -> list[str]:
    out = ["--scenario", scenario, "--json"]
    shared = ("rate", "headroom", "latency_ms", "workers", "concurrency", "pool", "domains", "accounts", "clients")
    for name in (*shared, "zones", "records"):
        out += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return out + (["--keep"] if args.keep else [])


def main() -> None:
    """Parse arguments, run the scenario (or each in its own process), print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="all", choices=["all", *SCENARIOS])
    parser.add_argument("--rate", type=int, default=100, help="the vendor's rate limit (simulator and ours), calls/s")
    parser.add_argument(
        "--headroom", type=float, default=0.1, help="share of the limit left unused (VENDOR_SYNC_RATE_LIMIT_HEADROOM)"
    )
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="jobs per worker process")
    parser.add_argument("--pool", default="prefork", choices=["threads", "prefork"])
    parser.add_argument("--domains", type=int, default=10_000, help="rdap: domains to refresh")
    parser.add_argument("--accounts", type=int, default=200, help="cloudflare: accounts to sync")
    parser.add_argument("--clients", type=int, default=5, help="cloudflare: clients the accounts belong to")
    parser.add_argument("--zones", type=int, default=50, help="cloudflare: zones each account lists")
    parser.add_argument("--records", type=int, default=5, help="cloudflare: records per zone (the last an MX)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--keep", action="store_true", help="keep the temporary devstack dir and logs")
    args = parser.parse_args()
    if args.scenario == "all":
        # Each scenario in its own process: vendor_sync's settings, engine and Celery app are per process.
        results = []
        for scenario in SCENARIOS:
            done = subprocess.run(
                [sys.executable, __file__, *_child_args(args, scenario)], cwd=REPO, stdout=subprocess.PIPE, check=True
            )
            results.append(json.loads(done.stdout))
    else:
        results = [{"rdap": run_rdap, "cloudflare": run_cloudflare}[args.scenario](args)]
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
        return
    for index, result in enumerate(results):
        if index:
            print()
        print(f"== {result['scenario']}")
        _print(result)


if __name__ == "__main__":
    main()
