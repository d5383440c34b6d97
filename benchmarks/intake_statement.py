"""Benchmark: PostgreSQL CPU of intake's create statement against the bare endpoint's one insert.

    .venv/bin/python benchmarks/intake_statement.py [--statements 4000] [--rounds 3]

`intake_create.py` measures the whole request under wrk on a shared VM, where one round swings by
±20%. This one isolates the database side: one connection, a serial loop, and the CPU that
connection's own backend used (`/proc/<backend pid>/stat`), which other load on the machine barely
moves. Each round runs, one after another:

- `SELECT 1`: the floor of a round trip;
- the bare endpoint's insert (`intake_create.bare_app`'s statement, on the same connection kind);
- intake's `create_request` on its real asyncpg store (pool of one), a new Idempotency-Key each time:
  a purchase under the threshold, as in `intake_create.py`;
- the same call with one key over and over: a replay (the create statement claims nothing, then
  the stored response is read).

Figures are medians over the rounds. Needs nothing beyond the venv.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

from intake_create import BARE_TABLE, PURCHASE, cpu_seconds, prepare_database, private_stack, sql


async def measure(
    backend: Callable[[], Awaitable[int]], call: Callable[[], Awaitable[object]], count: int
) -> dict[str, float]:
    """µs per call of backend CPU, client CPU and wall time over `count` serial calls (after a warm-up).

    asyncpg's pool replaces a connection after 50,000 queries: a loop that straddles the change is
    measured again, since the old backend's CPU is gone with it.
    """
    for _ in range(min(300, count)):
        await call()
    while True:
        pid = await backend()
        cpu, client, wall = cpu_seconds(pid), time.process_time(), time.perf_counter()
        for _ in range(count):
            await call()
        client, wall = time.process_time() - client, time.perf_counter() - wall
        if await backend() == pid:
            return {
                "pg_us": (cpu_seconds(pid) - cpu) * 1e6 / count,
                "client_us": client * 1e6 / count,
                "wall_us": wall * 1e6 / count,
            }


async def run(admin_dsn: str, count: int, rounds: int) -> dict[str, list[dict[str, float]]]:
    """Alternate the four loops `rounds` times; return every round's figures by loop name."""
    import asyncpg
    from pydantic import TypeAdapter

    from intake.requests import create
    from intake.requests.schemas import RequestCreate
    from intake.settings import get_settings
    from intake.store import AsyncpgStore
    from intake.vendors import get_registry
    from mspkit.auth import Principal
    from mspkit.ids import new_id

    settings, registry = get_settings(), get_registry()
    client_id = uuid.uuid4()
    sql(
        admin_dsn,
        "INSERT INTO intake.clients (id, name, primary_domain, status, approver_emails,"
        " purchase_approval_threshold_cents, created_at, updated_at)"
        " VALUES (%s, %s, 'bench.example', 'active', '[]', 1000000, now(), now())",
        client_id,
        f"Statement bench {client_id.hex[:6]}",
    )
    user = Principal(sub="bench-user", role="client_user", client_id=client_id)
    body = TypeAdapter(RequestCreate).validate_python(PURCHASE)
    raw_body = json.dumps(PURCHASE)
    store = AsyncpgStore(settings.database_url, max_size=1)  # one connection: one backend to watch
    bare = await asyncpg.connect(admin_dsn)
    try:

        async def intake_backend() -> int:
            row = await store.fetch("SELECT pg_backend_pid() AS pid", {})
            assert row is not None
            return int(row["pid"])

        async def bare_backend() -> int:
            return int(await bare.fetchval("SELECT pg_backend_pid()"))

        async def created() -> None:
            await create.create_request(
                store, user=user, body=body, key=uuid.uuid4().hex, registry=registry, settings=settings
            )

        async def replayed() -> None:
            await create.create_request(store, user=user, body=body, key="replay", registry=registry, settings=settings)

        loops: dict[str, tuple[Callable[[], Awaitable[int]], Callable[[], Awaitable[object]]]] = {
            "SELECT 1": (bare_backend, lambda: bare.fetchval("SELECT 1")),
            "bare insert": (
                bare_backend,
                lambda: bare.execute(f"INSERT INTO {BARE_TABLE} (id, body) VALUES ($1, $2::jsonb)", new_id(), raw_body),
            ),
            "intake create": (intake_backend, created),
            "intake replay": (intake_backend, replayed),
        }
        results: dict[str, list[dict[str, float]]] = {name: [] for name in loops}
        for _ in range(rounds):
            for name, (backend, call) in loops.items():
                results[name].append(await measure(backend, call, count))
        return results
    finally:
        await bare.close()
        await store.close()


def main() -> None:
    """Start a private PostgreSQL, run the loops and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--statements", type=int, default=4000, help="serial calls per loop per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--devstack", help="use this running devstack dir instead of a private stack")
    args = parser.parse_args()
    with private_stack(args.devstack) as (_, stack_env, _pid):
        env, admin_dsn = prepare_database(stack_env)  # the same schema and bare table as intake_create.py
        os.environ.update(env)  # intake's settings come from the environment, as in the service
        results = asyncio.run(run(admin_dsn, args.statements, args.rounds))
    print(f"\n{args.rounds} rounds x {args.statements} serial calls per loop, one connection each; medians")
    print(f"{'':16}{'postgres µs':>13}{'client µs':>11}{'wall µs':>9}")
    medians = {
        name: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for name, runs in results.items()
    }
    for name, m in medians.items():
        print(f"{name:16}{m['pg_us']:13.1f}{m['client_us']:11.1f}{m['wall_us']:9.1f}")
    ratio = medians["intake create"]["pg_us"] / medians["bare insert"]["pg_us"]
    print(f"postgres CPU, intake create / bare insert: {ratio:.2f}")


if __name__ == "__main__":
    main()
