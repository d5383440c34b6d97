"""Benchmark: intake CPU per call of `GET /internal/tasks/{id}/authorization`, new against old, in one run.

    .venv/bin/python benchmarks/intake_authorization.py [--rounds 3] [--duration 5] [--connections 8]

The broker reads this view twice per release, so its cost is intake CPU per call. One uvicorn process
serves intake's app with extra routes that answer the same view the other ways, so every variant runs
in the same process, on the same data, under the same wrk load (alternating rounds, 2 wrk threads):

- `new`: the route as deployed (one statement: task, client status and approvals joined; the read
  ends its transaction in the route's worker thread, so the session closes without a second hop);
- `old`: the code before this change, kept here: a sync-generator session dependency (two threadpool
  hops of its own), the task read, then the approvals and the client statuses (three statements), and
  a ROLLBACK when the session closes;
- `two`: two indexed statements (the task joined to its client's status, then its approvals), the
  other shape the issue suggested, with the deployed dependency.

Intake's process CPU per call is read from `/proc` around each run. The task has one approval. Every
variant answers the same JSON (checked before measuring). Needs `wrk` (apt-get install -y wrk).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
from intake_create import cpu_seconds, need_wrk, prepare_database, private_stack, run_wrk, serve

from mspctl.ports import free_port

# ---- the app: intake plus the other variants (imported by uvicorn as `intake_authorization:app`) ----

if os.environ.get("BENCH_SERVER"):  # only in the server process: importing intake's app reads its settings
    from fastapi import Depends
    from sqlmodel import Session, col, select

    from intake.approvals.views import approvals_by_task
    from intake.clients.models import Client
    from intake.common.types import utcnow
    from intake.db import get_engine
    from intake.deps import BrokerService, SessionDep
    from intake.main import app
    from intake.tasks.models import Task
    from intake.tasks.schemas import TaskAuthorization
    from intake.tasks.views import authorization_view, authorization_views
    from mspkit.errors import NotFound

    def _old_session() -> Iterator[Session]:
        with Session(get_engine(), expire_on_commit=False) as session:  # the old `get_session`
            yield session

    @app.get("/bench/old/tasks/{task_id}/authorization")
    def old_authorization(
        task_id: uuid.UUID, service: BrokerService, session: Annotated[Session, Depends(_old_session)]
    ) -> TaskAuthorization:
        """The view as it was read before: get_task, then authorization_views (approvals, client statuses)."""
        task = session.exec(select(Task).where(Task.id == task_id)).first()
        if task is None:
            raise NotFound("task not found")
        return authorization_views(session, tasks=[task])[0]

    @app.get("/bench/two/tasks/{task_id}/authorization")
    def two_authorization(task_id: uuid.UUID, service: BrokerService, session: SessionDep) -> TaskAuthorization:
        """The task joined to its client's status, then its approvals: two indexed statements."""
        row = session.exec(
            select(Task, Client.status).join(Client, col(Client.id) == col(Task.client_id)).where(Task.id == task_id)
        ).first()
        if row is None:
            raise NotFound("task not found")
        task, client_status = row
        approvals = approvals_by_task(session, task_ids=[task.id], now=utcnow())
        session.commit()
        return authorization_view(task, client_status, approvals.get(task.id, []))


def seed(intake_url: str, root: Any) -> tuple[str, dict[str, str]]:
    """A client, an ISP request (its task waits for one approval); (task id, the broker's headers)."""
    from mspctl.tokens import mint

    admin = {"Authorization": f"Bearer {mint(root, role='admin', sub='bench-admin', ttl=3600)}"}
    client = httpx.post(
        intake_url + "/v1/clients",
        headers=admin,
        json={
            "name": "Bench",
            "primary_domain": "bench.example",
            "approver_emails": ["owner@bench.example"],
            "purchase_approval_threshold_cents": 0,
        },
    ).json()
    body = {
        "type": "isp_account_setup",
        "isp_name": "FastFiber",
        "service_address": {"line1": "1 Main St", "city": "X", "region": "Y", "postal_code": "1", "country": "US"},
        "service_tier": "Business",
        "site_contact": {"name": "Dana", "email": "dana@bench.example", "phone": "+1 555 0100"},
        "client_id": client["id"],
    }
    created = httpx.post(intake_url + "/v1/requests", headers={**admin, "Idempotency-Key": "seed"}, json=body)
    created.raise_for_status()
    token = mint(root, role="service", sub="svc:secrets_broker", aud=["intake"], ttl=3600)
    return created.json()["task_ids"][0], {"Authorization": f"Bearer {token}"}


def main() -> None:
    """Measure every variant, alternating, and print µs of intake CPU per call."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--devstack", help="use this running devstack dir instead of a private stack")
    args = parser.parse_args()
    wrk = need_wrk()
    with private_stack(args.devstack) as (root, env, _), contextlib.ExitStack() as servers:
        env, _ = prepare_database(env)
        url, pid = servers.enter_context(
            serve("intake_authorization:app", free_port(), {**env, "BENCH_SERVER": "1"}, 1)
        )
        task_id, headers = seed(url, root)
        paths = {
            "new": f"/internal/tasks/{task_id}/authorization",
            "old": f"/bench/old/tasks/{task_id}/authorization",
            "two": f"/bench/two/tasks/{task_id}/authorization",
        }
        answers = {name: httpx.get(url + path, headers=headers).json() for name, path in paths.items()}
        assert len({json.dumps(a, sort_keys=True) for a in answers.values()}) == 1, answers
        for name, path in paths.items():
            run_wrk(wrk, url + path, headers=headers, body=None, args=args, duration=2, prefix=f"warm-{name}")
        time.sleep(1)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
        for _ in range(args.rounds):
            for name, path in paths.items():
                before = cpu_seconds(pid)
                run = run_wrk(
                    wrk, url + path, headers=headers, body=None, args=args, duration=args.duration, prefix=name
                )
                if run["errors"]:
                    raise RuntimeError(f"{name}: {run['errors']} errors")
                results[name].append((run["rps"], (cpu_seconds(pid) - before) * 1e6 / max(run["requests"], 1)))
    print(f"\n{args.rounds} rounds x {args.duration}s, wrk -t {args.threads} -c {args.connections}, one uvicorn worker")
    medians = {}
    for name, runs in results.items():
        cpu = sorted(c for _, c in runs)[len(runs) // 2]
        medians[name] = cpu
        per_round = ", ".join(f"{c:.0f}" for _, c in runs)
        rps = sum(r for r, _ in runs) / len(runs)
        print(f"{name:4} intake CPU µs/call median {cpu:6.0f} (rounds {per_round}); {rps:.0f} calls/s")
    print(f"new/old CPU per call: {medians['new'] / medians['old']:.2f}")


if __name__ == "__main__":
    main()
