"""Benchmark: RDAP refreshes of 10,000 domains through vendor_sim under a shared rate limit.

It starts a private dev stack (PostgreSQL, Redis, vendor_sim) in a temporary dir, migrates the
vendor_sync schema, inserts the domains (all due), sets the simulator's latency, starts N real Celery
worker processes, runs the scheduler tick once in-process (the code beat runs) to queue and publish
every refresh, and waits until every sync run has finished. Then, from the simulator's own request log:

- drain time vs the limit: the ideal drain is calls / min(rate, slots / latency), where slots is the
  number of concurrent jobs (workers x concurrency);
- over-limit calls: calls that found more than `rate` calls (themselves included) in the 1 s window
  ending at them, i.e. counted in every sliding 1 s window;
- duplicate calls: RDAP domain requests beyond one per sync run.

Usage:
    .venv/bin/python benchmarks/sync_throughput.py [--domains 10000] [--rate 100] [--latency-ms 50]
        [--headroom 0.1] [--workers 2] [--concurrency 4] [--pool prefork] [--json]
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
# google.com is left out: its registrar `related` link makes two calls per refresh.
NAMES = ("norway.no", "example.cz", "lemonde.fr", "example.com", "microsoft.click", "xn--fo-5ja.example")
_SCRUBBED = ("MSP_", "INTAKE_", "VENDOR_SYNC_", "SECRETS_BROKER_", "VAULT_", "BAO_")


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


def _insert_domains(database_url: str, count: int) -> None:
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    now = datetime.now(UTC)
    clients = [uuid.uuid4() for _ in range(math.ceil(count / len(NAMES)))]
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy("COPY vendor_sync.domains (id, client_id, name, unicode_name, next_check_at) FROM STDIN") as cp:
            for i in range(count):
                name = NAMES[i % len(NAMES)]
                cp.write_row((uuid.uuid4(), clients[i // len(NAMES)], name, name, now))
        conn.commit()


def _start_worker(env: dict[str, str], args: argparse.Namespace, index: int, log_dir: Path) -> subprocess.Popen[bytes]:
    log = open(log_dir / f"worker-{index}.log", "wb")
    return subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "vendor_sync.celery_app", "worker", "-Q", "vendor_sync",
            "--pool", args.pool, "-c", str(args.concurrency), "--loglevel", "WARNING",
            "--without-mingle", "--without-gossip", "--without-heartbeat", "--hostname", f"bench{index}@%h",
        ],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )


def _wait_ready(log_dir: Path, workers: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        ready = sum("ready." in (log_dir / f"worker-{i}.log").read_text(errors="replace") for i in range(workers))
        if ready == workers:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {ready}/{workers} workers became ready; see {log_dir}")
        time.sleep(0.2)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark once and return its figures."""
    from mspctl.stack import Stack

    root = Path(tempfile.mkdtemp(prefix="msp-bench-"))
    stack = Stack(root, ports="auto", externals={})
    workers: list[subprocess.Popen[bytes]] = []
    try:
        stack.up(only=["postgres", "redis", "vendor_sim"])
        service_env = stack.service_env("vendor_sync")
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED)}
        env.update(service_env)
        env.update(
            {
                "MSP_DEVSTACK_DIR": str(root),
                "VENDOR_SYNC_RDAP_RATE_LIMIT": f"{args.rate}/second",
                "VENDOR_SYNC_RATE_LIMIT_HEADROOM": str(args.headroom),
                "VENDOR_SYNC_TICK_BATCH_SIZE": "500",
                "VENDOR_SYNC_TICK_MAX_BATCHES": str(math.ceil(args.domains / 500) + 1),
                "VENDOR_SYNC_DB_POOL_SIZE": str(max(4, args.concurrency + 2)),
            }
        )
        subprocess.run([sys.executable, "-m", "vendor_sync.migrate"], cwd=REPO, env=env, check=True)
        os.environ.update(env)  # the in-process tick reads the same settings as the workers

        sim = service_env["MSP_VENDOR_SIM_URL"]
        _insert_domains(service_env["VENDOR_SYNC_DATABASE_URL"], args.domains)
        httpx.post(f"{sim}/_sim/reset", timeout=10).raise_for_status()
        httpx.post(f"{sim}/_sim/latency", json={"ms": args.latency_ms}, timeout=10).raise_for_status()

        log_dir = root / "bench-logs"
        log_dir.mkdir()
        workers = [_start_worker(env, args, i, log_dir) for i in range(args.workers)]
        _wait_ready(log_dir, args.workers)

        from sqlalchemy import text

        from vendor_sync.db import get_engine
        from vendor_sync.settings import get_settings
        from vendor_sync.sync.schedule import tick

        engine = get_engine()
        started = time.time()
        queued = tick(engine=engine, settings=get_settings())
        enqueue_s = time.time() - started
        slots = args.workers * args.concurrency
        ideal_rate = min(float(args.rate), slots / (args.latency_ms / 1000))
        deadline = time.monotonic() + 3 * args.domains / ideal_rate + 120
        while True:
            with engine.connect() as conn:
                open_runs = conn.execute(
                    text("SELECT count(*) FROM vendor_sync.sync_runs WHERE status IN ('queued', 'running')")
                ).scalar_one()
            if open_runs == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{open_runs} runs still open; see {log_dir}")
            time.sleep(0.5)
        with engine.connect() as conn:
            finished_at, by_status, attempts = conn.execute(
                text(
                    "SELECT max(finished_at), jsonb_object_agg(status, n), sum(a) FROM (SELECT status, count(*) n,"
                    " sum(attempts) a, max(finished_at) finished_at FROM vendor_sync.sync_runs GROUP BY status) s"
                )
            ).one()
        drain_s = finished_at.timestamp() - started
        calls = httpx.get(f"{sim}/_sim/requests", params={"path_prefix": "/rdap"}, timeout=60).json()["items"]
        calls = [c for c in calls if c["t"] >= started - 1]
        domain_calls = [c for c in calls if c["path"].startswith("/rdap/domain/")]
        times = [c["t"] for c in calls]
        over, busiest = over_limit_calls(times, args.rate)
        ideal_s = len(calls) / ideal_rate
        logs = "".join((log_dir / f"worker-{i}.log").read_text(errors="replace") for i in range(args.workers))
        result = {
            "domains": args.domains,
            "runs": by_status,
            "rate_limit_per_s": args.rate,
            "headroom": args.headroom,
            "latency_ms": args.latency_ms,
            "workers": args.workers,
            "pool": args.pool,
            "concurrency_per_worker": args.concurrency,
            "limit_set_by": "rate" if args.rate <= slots / (args.latency_ms / 1000) else "concurrency",
            "limit_calls_per_s": round(ideal_rate, 1),
            "enqueue_s": round(enqueue_s, 2),
            "tick": queued.as_dict(),
            "vendor_calls": len(calls),
            "vendor_domain_calls": len(domain_calls),
            "drain_s": round(drain_s, 2),
            "ideal_drain_s": round(ideal_s, 2),
            "achieved_calls_per_s": round(len(calls) / drain_s, 1),
            "fraction_of_limit": round(ideal_s / drain_s, 3),
            "over_limit_calls": over,
            "busiest_1s_window": busiest,
            "duplicate_calls": len(domain_calls) - args.domains,
            "attempts_total": int(attempts or 0),
            "tracebacks_in_worker_logs": logs.count("Traceback"),
        }
        return result
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        stack.down()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}", file=sys.stderr)


def main() -> None:
    """Parse arguments, run once, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=100, help="shared RDAP rate limit, calls per second")
    parser.add_argument(
        "--headroom", type=float, default=0.1, help="share of the limit left unused (VENDOR_SYNC_RATE_LIMIT_HEADROOM)"
    )
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="jobs per worker process")
    parser.add_argument("--pool", default="prefork", choices=["threads", "prefork"])
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--keep", action="store_true", help="keep the temporary devstack dir and logs")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    ok = result["fraction_of_limit"] >= 0.8 and result["over_limit_calls"] == 0 and result["duplicate_calls"] == 0
    print(f"{'target met':<{width}}  {ok} (>= 80% of the limit, 0 over-limit, 0 duplicates)")


if __name__ == "__main__":
    main()
