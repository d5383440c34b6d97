"""Benchmark: approval → `done` latency of `spam_filter_setup` provisioning, against its floor.

Starts a private dev stack in a temporary dir on free ports (`mspctl` `Stack`: PostgreSQL, Redis,
OpenBao, the dev issuer, intake's API and its outbox relay, the broker, vendor_sync's API and
vendor_sim, each the stack's own supervised process) and one real vendor_sync Celery worker
(`celery -A vendor_sync.celery_app worker -Q vendor_sync --pool prefork -c 2`: what the dev stack's
worker gets on a 2-core machine). Then, as the end-to-end test does
(tests/vendor_sync/test_provisioning_e2e.py), through the APIs:

- `--clients` clients, each with a MailChannels and a Cloudflare account whose API keys are broker
  credentials; the Cloudflare account holds a zone (an A record, one old MX) for every domain of its
  client and is synced once, so the registry knows each domain's zone;
- one `spam_filter_setup` request per domain by its client's client_user, `--requests` per round; each
  task waits in `awaiting_approval` with one approval (MailChannels as the recipient).

With the simulator at `--latency-ms` per vendor call, the client_admin approves each task
(`POST /v1/approvals/{id}/decision`). A request's clock starts when that 200 arrives and stops at the
`occurred_at` of its `task.status_changed` to `done` in intake's outbox: intake writes it in the
transaction of the step report that finishes the task, so it is exact to within that commit (a few
ms), and no polling enters the figure. Two rounds, each with its own requests:

- sequential: one approval, wait for `done`, probe one queue hop, the next approval (a realistic pace);
- burst: every approval back to back from one client, then wait for all (the queue sets the tail).

Each round starts with the vendors' shared rate-limit windows cleared (`fresh_vendor_budgets`): the
seeding's syncs are setup traffic, and each round alone stays within Cloudflare's budget. The
simulator runs without its state file (as the tests' simulators do): the dev stack's simulator saves
all its vendors' state to disk before answering each write, a cost that grows with the state and is
no vendor's latency (`--sim-state-file` keeps it, to see what it costs).

The floor of one provisioning is `vendor calls x latency + one queue hop`. Vendor calls are counted per
request from the simulator's log (sequential round: the calls between its approval and its `done`).
The queue hop is measured side by side in the sequential round, after each request, on the idle
worker: a `vendor_sync.events.task_ready` message for a task vendor_sync does not provision, from its
publish here to the start of its consumer's transaction (its inbox row's `processed_at`). The ratios
are p50 / floor and p95 / floor. The target is p95 <= 2 s and p95 / floor <= 1.5.

Where the rest goes: a median timeline per round, from the approval's 200, of `ready_event` (intake's
`task.status_changed` to ready, written before the 200), `relay_picked` (the outbox row's `sent_at`:
the start of the relay's transaction that publishes it), `consumer_start` (vendor_sync's inbox row for
that event), `run_queued` and `job_start` (the provisioning run's `enqueued_at` and `started_at`),
`claimed` (intake's event to in_progress), the first vendor call, the end of the MailChannels call,
the first Cloudflare call, the end of the last call (arrival + latency), and `done`; and the CPU each
part of the stack used per request.

Usage:
    .venv/bin/python benchmarks/provisioning.py [--requests 200] [--latency-ms 50] [--clients 10]
        [--mode both|sequential|burst] [--concurrency 2] [--sim-state-file] [--json] [--keep]
"""

from __future__ import annotations

import argparse
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
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
PARTS = ["intake", "intake-relay", "secrets_broker", "vendor_sync", "vendor_sim"]
# The parts whose CPU is reported (the broker's launcher runs it as a child).
CPU_PARTS = ("intake", "intake-relay", "secrets_broker", "vendor_sync", "vendor_sim", "postgres", "redis", "openbao")
_SCRUBBED = ("MSP_", "INTAKE_", "VENDOR_SYNC_", "SECRETS_BROKER_", "VAULT_", "BAO_")
DOWNSTREAM = "mail.backend.example"
OLD_MX = ("mx.old-host.example", 10)
CONSUMER = "vendor_sync.task_ready"
# A request's timeline, in order, in seconds from its approval's 200.
POINTS = (
    "ready_event",
    "relay_picked",
    "consumer_start",
    "run_queued",
    "job_start",
    "claimed",
    "first_call",
    "spam_call_end",
    "dns_first_call",
    "last_call_end",
    "done",
)


@dataclass
class Job:
    """One request: its task, the approval to decide, and what its provisioning measured."""

    client: int
    domain: str
    task_id: str
    approval_id: str
    approved_at: float = 0.0
    points: dict[str, float] = field(default_factory=dict)
    calls: int = 0
    status: str = ""


# ---- the stack, the worker and the database -------------------------------------------------------


def _worker_env(service_env: dict[str, str], root: Path) -> dict[str, str]:
    """This process's env without any service setting of its own, plus the stack's vendor_sync env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED)}
    return {**env, **service_env, "MSP_DEVSTACK_DIR": str(root)}


def start_worker(env: dict[str, str], concurrency: int, log: Path) -> subprocess.Popen[bytes]:
    """The vendor_sync worker as the stack's `vendor_sync-worker` program runs it, with `concurrency` slots."""
    command = [
        *(sys.executable, "-m", "celery", "-A", "vendor_sync.celery_app", "worker", "-Q", "vendor_sync"),
        *("--pool", "prefork", "-c", str(concurrency), "--loglevel", "INFO", "--hostname", "bench@%h"),
    ]
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while "ready." not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the vendor_sync worker did not start; see {log}")
        time.sleep(0.2)
    return proc


def stop_worker(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop the worker (TERM, then KILL after 30 s)."""
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


class Db:
    """The stack's PostgreSQL as its superuser (intake's and vendor_sync's tables), autocommit."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)

    def all(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Every row of a query."""
        return self.conn.execute(sql, params).fetchall()

    def one(self, sql: str, *params: Any) -> Any:
        """The first column of the first row (None when there is none)."""
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None


# ---- seeding, through the APIs --------------------------------------------------------------------


class Api:
    """The three APIs, with tokens from the stack's dev issuer."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.http = httpx.Client(timeout=30)
        self.tokens: dict[tuple[str, str, str | None], dict[str, str]] = {}
        self.admin = self.bearer("admin", "bench-admin")

    def bearer(self, role: str, sub: str, client_id: str | None = None) -> dict[str, str]:
        """An Authorization header for this person (minted once, valid for two hours)."""
        from mspctl.tokens import mint

        key = (role, sub, client_id)
        if key not in self.tokens:
            token = mint(self.root, role=role, sub=sub, client_id=client_id, ttl=7200)
            self.tokens[key] = {"Authorization": f"Bearer {token}"}
        return self.tokens[key]

    def call(self, method: str, base: str, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        """One call to MSP_<base>_URL; the JSON answer, or RuntimeError naming the call."""
        answer = self.http.request(method, self.env[f"MSP_{base}_URL"] + path, headers=headers or self.admin, **kw)
        if answer.status_code not in (200, 201, 202):
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer.json()


def make_vendors(api: Api) -> dict[str, dict[str, Any]]:
    """MailChannels (spam filter) and Cloudflare (DNS host), as the e2e test makes them."""
    tag = uuid.uuid4().hex[:6]
    kinds = {"mailchannels": "spam_filter", "cloudflare": "dns_host"}
    bodies = {a: {"name": f"{a} {tag}", "kind": k, "adapter": a} for a, k in kinds.items()}
    return {adapter: api.call("POST", "VENDOR_SYNC", "/v1/vendors", json=body) for adapter, body in bodies.items()}


def linked_account(api: Api, client_id: str, vendor: dict[str, Any], secret: str) -> dict[str, Any]:
    """A vendor account whose API key is a broker credential (kind api_key), set on the account."""
    body: dict[str, Any] = {"vendor_id": vendor["id"], "account_number": f"BENCH-{uuid.uuid4().hex[:8]}"}
    account = api.call("POST", "VENDOR_SYNC", f"/v1/clients/{client_id}/vendor-accounts", json=body)
    body = {
        "client_id": client_id,
        "vendor_account_id": account["id"],
        "kind": "api_key",
        "owner": "msp",
        "category": vendor["kind"],
        "name": f"{vendor['name']} API key",
        "username": "api",
        "secret": secret,
    }
    credential = api.call("POST", "SECRETS_BROKER", "/v1/credentials", json=body)
    body = {"api_key_credential_id": credential["id"]}
    return dict(api.call("PATCH", "VENDOR_SYNC", f"/v1/vendor-accounts/{account['id']}", json=body))


def put_zones(sim: str, secret: str, domains: list[str]) -> None:
    """The simulator's Cloudflare account of this key holds a zone per domain: an A record and the old MX."""
    from vendor_sim.keys import fingerprint

    zones = [
        {
            "name": d,
            "records": [
                {"type": "A", "name": d, "content": "192.0.2.10", "ttl": 300},
                {"type": "MX", "name": d, "content": OLD_MX[0], "ttl": 300, "priority": OLD_MX[1]},
            ],
        }
        for d in domains
    ]
    url = f"{sim}/_sim/cloudflare/accounts/{fingerprint(secret)}/state"
    httpx.put(url, json={"zones": zones}, timeout=60).raise_for_status()


def sync_account(api: Api, account_id: str) -> None:
    """Sync the DNS host account once (so each domain's zone is known) and wait for it to succeed."""
    run_id = api.call("POST", "VENDOR_SYNC", f"/v1/vendor-accounts/{account_id}/sync", json={})["sync_run_id"]
    deadline = time.monotonic() + 120
    while (run := api.call("GET", "VENDOR_SYNC", f"/v1/sync-runs/{run_id}"))["status"] in ("queued", "running"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"sync run {run_id} did not finish")
        time.sleep(0.2)
    if run["status"] != "succeeded":
        raise RuntimeError(f"sync run {run_id}: {run}")


def seed_client(api: Api, sim: str, vendors: dict[str, Any], index: int, domains: list[str]) -> str:
    """A client with its two linked accounts and the zones of its domains, synced; returns its id."""
    body = {
        "name": f"Bench client {index:02d} {uuid.uuid4().hex[:6]}",
        "primary_domain": f"bench{index:02d}.example",
        "approver_emails": [f"it@bench{index:02d}.example"],
        "purchase_approval_threshold_cents": 50000,
    }
    client_id = str(api.call("POST", "INTAKE", "/v1/clients", json=body)["id"])
    linked_account(api, client_id, vendors["mailchannels"], f"mc-bench-{uuid.uuid4().hex}")
    cf_secret = f"cf-bench-{uuid.uuid4().hex}"
    cf_account = linked_account(api, client_id, vendors["cloudflare"], cf_secret)
    put_zones(sim, cf_secret, domains)
    sync_account(api, cf_account["id"])
    return client_id


def make_request(api: Api, client_id: str, index: int, domain: str) -> Job:
    """A client_user's spam_filter_setup request; its task waits for the client_admin's approval."""
    headers = {**api.bearer("client_user", "bench-user", client_id), "Idempotency-Key": uuid.uuid4().hex}
    body = {"type": "spam_filter_setup", "domain": domain, "downstream_hosts": [DOWNSTREAM]}
    task_id = str(api.call("POST", "INTAKE", "/v1/requests", headers=headers, json=body)["task_ids"][0])
    task = api.call("GET", "INTAKE", f"/v1/tasks/{task_id}")
    if task["status"] != "awaiting_approval" or len(task["approvals"]) != 1:
        raise RuntimeError(f"task {task_id} is {task['status']} with {len(task['approvals'])} approvals")
    return Job(client=index, domain=domain, task_id=task_id, approval_id=task["approvals"][0]["id"])


def wait_settled(db: Db, waiting: int, timeout: float = 300) -> None:
    """Until intake's outbox is all sent and vendor_sync keeps a waiting run per task (from its task.created)."""
    deadline = time.monotonic() + timeout
    while True:
        unsent = db.one("SELECT count(*) FROM intake.outbox WHERE sent_at IS NULL")
        kept = db.one("SELECT count(*) FROM vendor_sync.provisioning_runs WHERE status = 'waiting'")
        if unsent == 0 and kept >= waiting:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"not settled: {unsent} outbox rows unsent, {kept}/{waiting} waiting runs")
        time.sleep(0.5)


def seed(api: Api, sim: str, args: argparse.Namespace, rounds: int) -> tuple[dict[int, str], list[list[Job]]]:
    """Clients, accounts, zones and `rounds` x `--requests` requests: ({client index: id}, jobs per round)."""
    names = [f"p{i:04d}-{uuid.uuid4().hex[:6]}.example" for i in range(rounds * args.requests)]
    vendors = make_vendors(api)
    clients = {c: seed_client(api, sim, vendors, c, names[c :: args.clients]) for c in range(args.clients)}
    jobs = [make_request(api, clients[i % args.clients], i % args.clients, name) for i, name in enumerate(names)]
    return clients, [jobs[r * args.requests : (r + 1) * args.requests] for r in range(rounds)]


# ---- measuring ------------------------------------------------------------------------------------


def approve(api: Api, job: Job, clients: dict[int, str]) -> None:
    """The client_admin approves; the request's clock starts when the 200 arrives."""
    boss = api.bearer("client_admin", "bench-boss", clients[job.client])
    api.call("POST", "INTAKE", f"/v1/approvals/{job.approval_id}/decision", headers=boss, json={"decision": "approved"})
    job.approved_at = time.time()


def wait_closed(db: Db, task_ids: list[str], timeout: float) -> None:
    """Until no task is open for provisioning any more (done, or on_hold after a failure); polls intake's table."""
    deadline = time.monotonic() + timeout
    query = (
        "SELECT count(*) FROM intake.tasks WHERE id = ANY(%s::uuid[])"
        " AND status IN ('awaiting_approval', 'ready', 'in_progress')"
    )
    while db.one(query, task_ids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"tasks still open after {timeout:.0f} s")
        time.sleep(0.01)


def probe_hop(celery: Any, db: Db) -> float:
    """One queue hop: publish a task event vendor_sync does not provision, until its consumer's transaction starts."""
    event_id = str(uuid.uuid4())
    envelope = {
        "event_id": event_id,
        "type": "task.created",
        "occurred_at": datetime.now(UTC).isoformat(),
        "client_id": str(uuid.uuid4()),
        "aggregate_id": str(uuid.uuid4()),
        "data": {"type": "purchase", "status": "ready", "request_id": str(uuid.uuid4())},
    }
    sent = time.time()
    celery.send_task("vendor_sync.events.task_ready", args=[envelope], queue="vendor_sync")
    query = "SELECT processed_at FROM vendor_sync.inbox WHERE event_id = %s::uuid AND consumer = %s"
    deadline = time.monotonic() + 30
    while (started := db.one(query, event_id, CONSUMER)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the queue-hop probe was never consumed")
        time.sleep(0.005)
    return float(started.timestamp() - sent)


def run_sequential(api: Api, db: Db, celery: Any, jobs: list[Job], clients: dict[int, str]) -> list[float]:
    """Approve one, wait for `done`, probe a queue hop on the idle worker, then the next; returns the hops."""
    hops: list[float] = []
    for job in jobs:
        approve(api, job, clients)
        wait_closed(db, [job.task_id], timeout=120)
        time.sleep(0.2)  # the worker still consumes the task's in_progress and done events: let it go idle
        hops.append(probe_hop(celery, db))
    return hops


def run_burst(api: Api, db: Db, jobs: list[Job], clients: dict[int, str]) -> list[float]:
    """Every approval back to back from one client, then wait for all the tasks (no hops measured)."""
    for job in jobs:
        approve(api, job, clients)
    wait_closed(db, [j.task_id for j in jobs], timeout=60 + 10 * len(jobs))
    return []


# ---- the timeline, from the databases and the simulator's log --------------------------------------


def _ts(value: datetime | str) -> float:
    return (value if isinstance(value, datetime) else datetime.fromisoformat(value)).timestamp()


def read_timelines(db: Db, jobs: list[Job], calls: list[dict[str, Any]] | None, latency_s: float) -> None:
    """Fill in each job's points and run status; with `calls` (jobs one at a time), its vendor calls too."""
    by_task = {j.task_id: j for j in jobs}
    ready_events: dict[str, Job] = {}
    names = {"ready": "ready_event", "in_progress": "claimed", "done": "done"}
    for task_id, to, occurred, sent, event_id in db.all(
        "SELECT envelope->>'aggregate_id', envelope->'data'->>'to', envelope->>'occurred_at', sent_at,"
        " envelope->>'event_id' FROM intake.outbox"
        " WHERE type = 'task.status_changed' AND envelope->>'aggregate_id' = ANY(%s::text[])",
        list(by_task),
    ):
        job = by_task[task_id]
        if to in names:
            job.points[names[to]] = _ts(occurred) - job.approved_at
        if to == "ready":
            ready_events[event_id] = job
            if sent is not None:
                job.points["relay_picked"] = _ts(sent) - job.approved_at
    for event_id, processed in db.all(
        "SELECT event_id::text, processed_at FROM vendor_sync.inbox WHERE consumer = %s AND event_id = ANY(%s::uuid[])",
        CONSUMER,
        list(ready_events),
    ):
        job = ready_events[event_id]
        job.points["consumer_start"] = _ts(processed) - job.approved_at
    for task_id, enqueued, started, status in db.all(
        "SELECT task_id::text, enqueued_at, started_at, status FROM vendor_sync.provisioning_runs"
        " WHERE task_id = ANY(%s::uuid[])",
        list(by_task),
    ):
        job = by_task[task_id]
        job.status = status
        for point, value in (("run_queued", enqueued), ("job_start", started)):
            if value is not None:
                job.points[point] = _ts(value) - job.approved_at
    if calls is not None:
        for job in jobs:
            _attribute_calls(job, calls, latency_s)


def _attribute_calls(job: Job, calls: list[dict[str, Any]], latency_s: float) -> None:
    """The vendor calls between the job's approval and its `done` (exact when jobs do not overlap)."""
    if "done" not in job.points:
        return
    end = job.approved_at + job.points["done"]
    mine = [c for c in calls if job.approved_at <= c["t"] <= end]
    job.calls = len(mine)
    spam = [c["t"] for c in mine if c["path"].startswith("/mailchannels/")]
    dns = [c["t"] for c in mine if c["path"].startswith("/cloudflare/")]
    if not (spam and dns):
        return
    job.points["first_call"] = min(spam + dns) - job.approved_at
    job.points["spam_call_end"] = max(spam) + latency_s - job.approved_at
    job.points["dns_first_call"] = min(dns) - job.approved_at
    job.points["last_call_end"] = max(spam + dns) + latency_s - job.approved_at


def vendor_calls(sim: str, since: float) -> list[dict[str, Any]]:
    """The simulator's vendor requests since `since` (its control calls are not logged)."""
    items = httpx.get(f"{sim}/_sim/requests", timeout=60).json()["items"]
    return [c for c in items if c["t"] >= since]


# ---- CPU and figures ------------------------------------------------------------------------------


def cpu_seconds(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by a process and its descendants."""
    import psutil

    if not pid:
        return 0.0
    total = 0.0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for proc in (root, *root.children(recursive=True)):
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


@contextlib.contextmanager
def cpu_used(pids: dict[str, Callable[[], int | None]], out: dict[str, float]) -> Iterator[None]:
    """Fill `out` with the CPU seconds each part used during the block."""
    before = {name: cpu_seconds(pid()) for name, pid in pids.items()}
    yield
    out.update({name: cpu_seconds(pid()) - before[name] for name, pid in pids.items()})


def pct(values: list[float], q: float) -> float:
    """The q-th percentile of the values (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def measure_round(name: str, run: Callable[[], list[float]], ctx: dict[str, Any], jobs: list[Job]) -> dict[str, Any]:
    """One round, with the load, the CPU and the simulator's log around it; its figures before the floor."""
    httpx.delete(f"{ctx['sim']}/_sim/requests", timeout=10).raise_for_status()
    load_before, started = loadavg(), time.time()
    cpu: dict[str, float] = {}
    with cpu_used(ctx["pids"], cpu):
        hops = run()
    wall = time.time() - started
    calls = vendor_calls(ctx["sim"], started - 1)
    read_timelines(ctx["db"], jobs, calls if name == "sequential" else None, ctx["latency_s"])
    return {
        "round": name,
        "wall_s": round(wall, 1),
        "load_before_after": f"{load_before} → {loadavg()}",
        "vendor_calls_in_round": len(calls),
        "cpu_ms_per_request": {k: round(1000 * v / len(jobs), 1) for k, v in cpu.items()},
        "hops": hops,
    }


def figures(
    measured: dict[str, Any], jobs: list[Job], hops: list[float], calls_per: float, latency_s: float
) -> dict[str, Any]:
    """p50, p95 and max of approval → done, the floor, the ratios and the median timeline."""
    done = [j.points["done"] for j in jobs if "done" in j.points]
    if not done or not calls_per:
        raise RuntimeError("no request reached `done` with its vendor calls logged; rerun with --keep, read the logs")
    hop = statistics.median(hops)
    floor = calls_per * latency_s + hop
    p50, p95 = pct(done, 50), pct(done, 95)
    timeline = {p: [j.points[p] for j in jobs if p in j.points] for p in POINTS}
    result = {
        **{k: v for k, v in measured.items() if k != "hops"},
        "requests": len(jobs),
        "done": len(done),
        "runs": dict(Counter(j.status for j in jobs)),
        "p50_s": round(p50, 3),
        "p95_s": round(p95, 3),
        "max_s": round(max(done), 3),
        "vendor_calls_per_provisioning": calls_per,
        "queue_hop_p50_ms": round(1000 * hop, 1),
        "queue_hop_p95_ms": round(1000 * pct(hops, 95), 1),
        "floor_s": round(floor, 3),
        "p50_over_floor": round(p50 / floor, 2),
        "p95_over_floor": round(p95 / floor, 2),
        "median_timeline_s": {p: round(statistics.median(v), 3) for p, v in timeline.items() if v},
    }
    result["target_met"] = result["p95_s"] <= 2.0 and result["p95_over_floor"] <= 1.5
    return result


def fresh_vendor_budgets(redis_url: str) -> None:
    """Clear the vendors' shared rate-limit windows in the private stack's Redis, before a round.

    Cloudflare's budget is 1080 calls per 5 minutes (its 1200 less 10 % headroom), global across
    workers. Seeding syncs every zone (a call each) and a round makes 4 Cloudflare calls per
    provisioning, so seeding and two rounds together pass it: a run that meets the limit waits for the
    window, by design, and the round would measure the limiter instead of provisioning (this is what
    stopped `--mode both` with "tasks still open"). Each round alone stays within the budget.
    """
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter("mspkit_rl*"):
            client.delete(key)
    finally:
        client.close()


def run_rounds(rounds: list[str], seeded: list[list[Job]], ctx: dict[str, Any]) -> list[dict[str, Any]]:
    """The rounds in order; a burst round takes the sequential round's queue hop and calls per provisioning."""
    api, db, celery, clients = ctx["api"], ctx["db"], ctx["celery"], ctx["clients"]
    results: list[dict[str, Any]] = []
    hops: list[float] = []
    calls_per = 0.0
    for name, jobs in zip(rounds, seeded, strict=True):
        fresh_vendor_budgets(ctx["redis_url"])
        if name == "sequential":
            measured = measure_round(name, lambda jobs=jobs: run_sequential(api, db, celery, jobs, clients), ctx, jobs)
            hops = measured["hops"]
            calls_per = statistics.median([j.calls for j in jobs if j.calls] or [0])
        else:
            measured = measure_round(name, lambda jobs=jobs: run_burst(api, db, jobs, clients), ctx, jobs)
            calls_per = calls_per or round(measured["vendor_calls_in_round"] / len(jobs), 2)
            hops = hops or [probe_hop(celery, db) for _ in range(20)]
        results.append(figures(measured, jobs, hops, calls_per, ctx["latency_s"]))
    return results


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Everything, in a private stack taken down at the end."""
    from mspctl.stack import Stack
    from mspkit.queue import make_celery

    root = Path(tempfile.mkdtemp(prefix="msp-bench-prov-"))
    stack = Stack(root, ports="auto", externals={}, sim_state_file=args.sim_state_file)
    worker = None
    try:
        stack.up(only=PARTS)
        env = stack.env
        sim = env["MSP_VENDOR_SIM_URL"]
        httpx.post(f"{sim}/_sim/reset", timeout=10).raise_for_status()
        worker_env = _worker_env(stack.service_env("vendor_sync"), root)
        worker = start_worker(worker_env, args.concurrency, root / "worker.log")
        api, db = Api(root, env), Db(env["MSP_DATABASE_URL"])
        rounds = ["sequential", "burst"] if args.mode == "both" else [args.mode]
        clients, seeded = seed(api, sim, args, len(rounds))
        wait_settled(db, sum(len(r) for r in seeded))
        httpx.post(f"{sim}/_sim/latency", json={"ms": args.latency_ms}, timeout=10).raise_for_status()
        celery = make_celery("bench", env["MSP_REDIS_URL"])
        probe_hop(celery, db)  # connects the publisher, so the first measured hop pays no connection
        pids: dict[str, Callable[[], int | None]] = {"worker": lambda: worker.pid if worker else None}
        pids.update({p: (lambda p=p: stack.pid(p)) for p in CPU_PARTS})
        ctx = {"api": api, "db": db, "celery": celery, "clients": clients, "sim": sim, "pids": pids}
        ctx["redis_url"] = env["MSP_REDIS_URL"]
        return run_rounds(rounds, seeded, {**ctx, "latency_s": args.latency_ms / 1000})
    finally:
        stop_worker(worker)
        stack.down()
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


# ---- output ---------------------------------------------------------------------------------------


def print_result(result: dict[str, Any]) -> None:
    """One round as a readable table."""
    print(f"\n== {result['round']}: {result['requests']} requests, {result['done']} done, runs {result['runs']}")
    print(f"   load average (1/5/15 min, before → after) {result['load_before_after']}; wall {result['wall_s']} s")
    rows = [
        ("approval → done p50", f"{result['p50_s']:.3f} s"),
        ("approval → done p95", f"{result['p95_s']:.3f} s"),
        ("approval → done max", f"{result['max_s']:.3f} s"),
        ("vendor calls per provisioning", f"{result['vendor_calls_per_provisioning']}"),
        ("queue hop p50 (p95)", f"{result['queue_hop_p50_ms']:.1f} ms ({result['queue_hop_p95_ms']:.1f} ms)"),
        ("floor = calls x latency + hop", f"{result['floor_s']:.3f} s"),
        ("p50 / floor", f"{result['p50_over_floor']:.2f}"),
        ("p95 / floor", f"{result['p95_over_floor']:.2f}"),
        ("target: p95 ≤ 2 s and p95/floor ≤ 1.5", "met" if result["target_met"] else "NOT met"),
    ]
    for label, value in rows:
        print(f"   {label:<40} {value}")
    print("   median timeline (s after the approval's 200, and the step from the point before):")
    previous = 0.0
    for point, value in result["median_timeline_s"].items():
        print(f"     {point:<16} {value:7.3f}   {1000 * (value - previous):+8.1f} ms")
        previous = value
    print("   CPU ms per request:", ", ".join(f"{k} {v}" for k, v in result["cpu_ms_per_request"].items()))


def main() -> None:
    """Parse the arguments, run the rounds, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="requests per round")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the simulator's latency per vendor call")
    parser.add_argument("--clients", type=int, default=10, help="clients the requests are spread over")
    parser.add_argument("--mode", default="both", choices=["both", "sequential", "burst"])
    parser.add_argument("--concurrency", type=int, default=2, help="the worker's slots (prefork children)")
    parser.add_argument(
        "--sim-state-file",
        action="store_true",
        help="let the simulator save its state to disk before each write's answer, as the dev stack does",
    )
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--keep", action="store_true", help="keep the temporary devstack dir and the worker log")
    args = parser.parse_args()
    results = run(args)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for result in results:
        print_result(result)


if __name__ == "__main__":
    main()
