"""Benchmark: a technician's `GET /v1/tasks` (need-to-know) against an admin's, at 1k, 10k and 100k tasks, in one run.

    .venv/bin/python benchmarks/intake_need_to_know.py [--sizes 1000,10000,100000] [--calls 25] [--try-index]

intake lists a technician's tasks through the same route and service function as an admin's; the only
difference is the need-to-know condition `mspkit.tenancy.visible` adds to the query (the clients of the
technician's staff row, or the tasks assigned to them) and the staff-row read of the `Reader` dependency.
This measures what that costs as the table grows, with the admin's unfiltered list as the baseline:

- the table grows in place, 1k -> 10k -> 100k tasks (set-based INSERTs, time-ordered like real ones,
  spread uniformly over `--clients` clients; ANALYZE after each step, as autovacuum would);
- the technician (`POST /v1/staff`, the real directory) names `--known` of those clients; half their
  clients' tasks are assigned to them, plus a few closed tasks of other clients (kept from clients
  they lost: unassignment only touches open tasks);
- two pages per caller, limit 50: the first, and the page after a cursor 90 % of the way through the
  timeline (the same cursor for both callers: `mspkit.pagination.encode_cursor` of that task);
- `route`: `GET /v1/tasks` on intake's app under uvicorn (one process), over one keep-alive httpx
  connection, wall time per call (time.perf_counter); `service`: `intake.tasks.service.list_tasks`
  called in-process on intake's engine (the query and the views without HTTP, auth or the staff read).
  Calls alternate admin / technician, first / deep page, so outside load hits both alike; the medians
  and the technician/admin ratio of the medians are printed;
- the statements the service function issues are captured from intake's engine and the list's
  SELECT is run again under EXPLAIN (ANALYZE, BUFFERS): the plan's scans, the rows it read and
  discarded, and whether the technician's query seq-scans the tasks table;
- `--try-index`: copies the tasks into a scratch schema (`bench_scratch`, indexes included) and runs
  both callers' captured SELECTs there as deployed, after each candidate index, and with the keyset
  condition rewritten as a row comparison (`(created_at, id) > (...)`, no new index): median of the
  statement's own time and its plan, so no migration or code change is needed to see what either does.

Every technician page is checked: only tasks of their clients or assigned to them. Needs nothing but
the venv (a private stack with PostgreSQL and the dev issuer is started for the run).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import httpx
from intake_create import prepare_database, private_stack, serve, sql

from mspctl.ports import free_port

TECH = "bench-tech"
ADMIN = "bench-admin"
OTHER_TECHS = 20
DEEP = 0.9  # where the deep page's cursor sits in the timeline
LIMIT = 50
SEQ_OK = 10_000
TYPES = ["purchase", "isp_account_setup", "spam_filter_setup"]
STATUSES = ["done", "done", "done", "cancelled", "new", "ready", "in_progress", "on_hold"]
# What --try-index runs on the scratch copy, one after the other (an index stays once created): the label,
# an index to create first (None: none), and whether the keyset is rewritten as a row comparison.
WHAT_IFS = [
    ("as deployed", None, False),
    ("+ index (assignee, created_at, id)", "(assignee, created_at, id)", False),
    ("+ index (client_id, created_at, id) INCLUDE (assignee)", "(client_id, created_at, id) INCLUDE (assignee)", False),
    ("keyset as a row comparison (no new index)", "DROP", True),
]
# mspkit.pagination.keyset's condition as SQLAlchemy renders it, and the same condition as a row comparison.
KEYSET_OR = re.compile(
    r"([\w.]+)\.created_at > (%\(created_at_1\)s[^)]*?) OR \S+\.created_at = %\(created_at_2\)s[^)]*? "
    r"AND \S+\.id > (%\(id_1\)s::UUID)"
)
KEYSET_ROW = r"(\1.created_at, \1.id) > (\2, \3)"

# One set-based INSERT per growth step: task i is created i seconds after the epoch of the run, so the
# table's physical order is its created_at order, as it is for tasks inserted as they are created.
INSERT_TASKS = """
INSERT INTO intake.tasks (id, request_id, client_id, type, title, status, assignee, assigned_by,
    credential_categories, vendor_account_ids, credential_ids, created_by, created_at, updated_at)
SELECT gen_random_uuid(), NULL, c.id, t.type, 'Bench task ' || g.i, t.status,
    CASE
        WHEN c.known AND g.i %% 2 = 0 THEN %(tech)s
        WHEN NOT c.known AND t.status = 'done' AND g.i %% 500 = 7 THEN %(tech)s
        WHEN g.i %% 5 < 3 THEN 'bench-other-' || (g.i %% %(others)s)
    END,
    %(admin)s, '[]', '[]', '[]', 'bench', %(epoch)s + g.i * interval '1 second', %(epoch)s + g.i * interval '1 second'
FROM generate_series(%(start)s, %(stop)s - 1) AS g(i)
CROSS JOIN LATERAL (
    SELECT (%(types)s::text[])[1 + (g.i / 7) %% cardinality(%(types)s::text[])] AS type,
           (%(statuses)s::text[])[1 + (g.i * 7919) %% cardinality(%(statuses)s::text[])] AS status
) AS t
JOIN bench.clients AS c ON c.n = (hashint4(g.i) & 2147483647) %% %(clients)s
ORDER BY g.i
"""


def seed_clients(dsn: str, count: int, known: int) -> list[str]:
    """`count` active clients (one INSERT) and a numbering for the task INSERTs; the ids of the `known` first."""
    sql(dsn, "DROP TABLE IF EXISTS bench.clients")
    sql(
        dsn,
        "CREATE TABLE bench.clients AS SELECT n - 1 AS n, gen_random_uuid() AS id, n <= %s AS known"
        " FROM generate_series(1, %s) AS n",
        known,
        count,
    )
    sql(
        dsn,
        "INSERT INTO intake.clients (id, name, primary_domain, approver_emails, purchase_approval_threshold_cents,"
        " status, created_at, updated_at) SELECT id, 'Bench client ' || n, 'c' || n || '.bench.example',"
        " '[\"owner@bench.example\"]', 0, 'active', now(), now() FROM bench.clients",
    )
    return [str(r[0]) for r in sql(dsn, "SELECT id FROM bench.clients WHERE known ORDER BY n")]


def grow(dsn: str, start: int, stop: int, clients: int, epoch: str) -> None:
    """Tasks start..stop-1 in one statement, then ANALYZE (what autovacuum does after a bulk change)."""
    import psycopg

    params = {
        "tech": TECH,
        "others": OTHER_TECHS,
        "admin": ADMIN,
        "epoch": epoch,
        "start": start,
        "stop": stop,
        "types": TYPES,
        "statuses": STATUSES,
        "clients": clients,
    }
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(INSERT_TASKS, params)  # type: ignore[arg-type]
        conn.execute("ANALYZE intake.tasks")


def deep_cursor(dsn: str, size: int) -> str:
    """The cursor after the task 90 % of the way through the timeline (`mspkit.pagination`'s format)."""
    from mspkit.pagination import encode_cursor

    at, row_id = sql(
        dsn, "SELECT created_at, id FROM intake.tasks ORDER BY created_at, id OFFSET %s LIMIT 1", int(size * DEEP)
    )[0]
    return encode_cursor(at, row_id)


# ---- the in-process service function and the statements it issues ------------------------------------


class Service:
    """`intake.tasks.service.list_tasks` in this process, on intake's engine, with its statements captured."""

    def __init__(self, env: dict[str, str]) -> None:
        os.environ.update(env)  # intake's settings are read on first use, from the stack's env
        from sqlalchemy import event

        from intake.db import get_engine

        self.engine = get_engine()
        self.captured: list[tuple[str, Any]] | None = None
        event.listen(self.engine, "before_cursor_execute", self._capture)

    def _capture(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if self.captured is not None:
            self.captured.append((statement, parameters))

    def principal(self, role: str) -> Any:
        """The admin, or the technician with the staff view intake's `Reader` dependency would attach."""
        from sqlmodel import Session

        from intake.staff.directory import staff_view
        from mspkit.auth import Principal

        if role == "admin":
            return Principal(sub=ADMIN, role="admin")
        with Session(self.engine) as session:
            return Principal(sub=TECH, role="technician", staff=staff_view(session, TECH))

    def call(self, user: Any, cursor: str | None) -> list[Any]:
        """One page, in a session of its own (as a request has)."""
        from sqlmodel import Session

        from intake.tasks import service

        with Session(self.engine, expire_on_commit=False) as session:
            items, _ = service.list_tasks(
                session, user=user, client_id=None, status=None, type=None, assignee=None, limit=LIMIT, cursor=cursor
            )
        return items

    def list_statement(self, user: Any, cursor: str | None) -> tuple[str, Any]:
        """The SELECT on intake.tasks that one call issues (the first statement naming the table)."""
        self.captured = []
        try:
            self.call(user, cursor)
            statements = self.captured
        finally:
            self.captured = None
        return next((s, p) for s, p in statements if re.search(r"FROM intake\.tasks\b", s))

    def explain(self, statement: str, parameters: Any, table: str = "intake.tasks") -> tuple[str, dict[str, Any]]:
        """EXPLAIN (ANALYZE, BUFFERS) of the captured statement (optionally on another copy of the table)."""
        statement = statement.replace("intake.tasks", table)
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()
            conn.rollback()
        text = "\n".join(r[0] for r in rows)
        return text, plan_summary(text)

    def explain_generic(self, statement: str, parameters: Any) -> tuple[str, dict[str, Any]]:
        """The same as a prepared statement's generic plan (what PostgreSQL may settle on for a statement
        the driver prepared), the parameters' values inlined into EXECUTE."""
        names: list[str] = []

        def positional(match: re.Match[str]) -> str:
            names.append(match.group(1))
            return f"${len(names)}"

        prepared = re.sub(r"%\((\w+)\)s", positional, statement)
        with self.engine.connect() as conn:
            from psycopg.sql import Literal

            raw = conn.connection.driver_connection
            values = ", ".join(Literal(parameters[name]).as_string(raw) for name in names)
            conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
            conn.exec_driver_sql("PREPARE bench_generic AS " + prepared)
            rows = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_generic({values})").all()
            conn.exec_driver_sql("DEALLOCATE bench_generic")
            conn.rollback()
        text = "\n".join(r[0] for r in rows)
        return text, plan_summary(text)

    def time_statement(self, statement: str, parameters: Any, table: str, n: int) -> float:
        """Median ms of the statement alone (on a kept connection, rows fetched)."""
        statement = statement.replace("intake.tasks", table)
        times = []
        with self.engine.connect() as conn:
            for _ in range(n):
                start = time.perf_counter()
                conn.exec_driver_sql(statement, parameters).all()
                times.append((time.perf_counter() - start) * 1e3)
            conn.rollback()
        return statistics.median(times)


def plan_summary(text: str) -> dict[str, Any]:
    """What a plan did: its scans, rows discarded by filters, shared buffers, execution time."""
    scans = re.findall(r"((?:Parallel )?(?:Seq Scan|Index Only Scan|Index Scan|Bitmap Index Scan)(?: Backward)?"
                       r"(?: using \S+)? on \S+)", text)  # fmt: skip
    scans += re.findall(r"(Bitmap Index Scan on \S+)", text)
    removed = sum(int(n) for n in re.findall(r"Rows Removed by (?:Filter|Index Recheck): (\d+)", text))
    hits = re.search(r"Buffers: shared hit=(\d+)(?: read=(\d+))?", text)
    buffers = (int(hits.group(1)) + int(hits.group(2) or 0)) if hits else 0
    execution = re.search(r"Execution Time: ([\d.]+) ms", text)
    return {
        "scans": list(dict.fromkeys(scans)),
        "seq_scan": bool(re.search(r"Seq Scan on tasks\b", text)),
        "removed": removed,
        "buffers": buffers,
        "ms": float(execution.group(1)) if execution else 0.0,
    }


# ---- the runner -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def client(url: str, token: str) -> Iterator[httpx.Client]:
    """One keep-alive connection with the caller's token."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        yield http


def route_page(http: httpx.Client, cursor: str | None) -> dict[str, Any]:
    """`GET /v1/tasks?limit=50[&cursor=...]`, its JSON."""
    params: dict[str, Any] = {"limit": LIMIT}
    if cursor:
        params["cursor"] = cursor
    response = http.get("/v1/tasks", params=params)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def timed(fn: Callable[[], Any]) -> float:
    """Milliseconds of one call."""
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def check_technician(page: dict[str, Any], known: set[str]) -> None:
    """Every item the technician got is of one of their clients or assigned to them."""
    for item in page["items"]:
        assert item["client_id"] in known or item["assignee"] == TECH, item


def measure(
    *,
    https: dict[str, httpx.Client],
    service: Service,
    users: dict[str, Any],
    cursors: dict[str, str | None],
    calls: int,
) -> dict[tuple[str, str, str], list[float]]:
    """`calls` timed calls of each (level, caller, page), interleaved; ms per call."""
    samples: dict[tuple[str, str, str], list[float]] = {}
    for _ in range(3):  # warm-up: plans cached, pages in shared buffers, both callers alike
        for who in users:
            for cursor in cursors.values():
                route_page(https[who], cursor)
                service.call(users[who], cursor)
    for _ in range(calls):
        for page, cursor in cursors.items():
            for who in users:
                http, user = https[who], users[who]
                samples.setdefault(("route", who, page), []).append(timed(partial(route_page, http, cursor)))
                samples.setdefault(("service", who, page), []).append(timed(partial(service.call, user, cursor)))
    return samples


def try_indexes(dsn: str, service: Service, statements: dict[str, tuple[str, Any]], n: int) -> list[str]:
    """The captured SELECTs on a scratch copy of the tasks, as deployed and under each what-if."""
    lines = []
    role = service.engine.url.username
    sql(dsn, "DROP SCHEMA IF EXISTS bench_scratch CASCADE")
    sql(dsn, "CREATE SCHEMA bench_scratch")
    sql(dsn, "CREATE TABLE bench_scratch.tasks (LIKE intake.tasks INCLUDING ALL)")
    sql(dsn, "INSERT INTO bench_scratch.tasks SELECT * FROM intake.tasks ORDER BY created_at, id")
    sql(dsn, "ANALYZE bench_scratch.tasks")
    sql(dsn, f"GRANT USAGE ON SCHEMA bench_scratch TO {role}")
    sql(dsn, f"GRANT SELECT ON bench_scratch.tasks TO {role}")
    created: list[str] = []
    for label, index, row_keyset in WHAT_IFS:
        if index == "DROP":
            for name in created:
                sql(dsn, f"DROP INDEX bench_scratch.{name}")
        elif index is not None:
            name = f"bench_candidate_{len(created)}"
            sql(dsn, f"CREATE INDEX {name} ON bench_scratch.tasks {index}")
            sql(dsn, "ANALYZE bench_scratch.tasks")
            created.append(name)
        for key, (statement, parameters) in statements.items():
            if row_keyset:
                statement, replaced = KEYSET_OR.subn(KEYSET_ROW, statement)
                if not replaced:  # the first page has no keyset condition
                    continue
            ms = service.time_statement(statement, parameters, "bench_scratch.tasks", n)
            _, plan = service.explain(statement, parameters, "bench_scratch.tasks")
            lines.append(
                f"  {label:55} {key:16} {ms:7.2f} ms; buffers {plan['buffers']:5}, "
                f"rows discarded {plan['removed']:6}; {', '.join(plan['scans'])}"
            )
    sql(dsn, "DROP SCHEMA bench_scratch CASCADE")
    return lines


def main() -> None:
    """Grow the table, measure both callers at each size, explain the technician's query."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="task counts, ascending")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--known", type=int, default=5, help="clients in the technician's staff row")
    parser.add_argument("--calls", type=int, default=25, help="timed calls per (level, caller, page) and size")
    parser.add_argument("--plans", action="store_true", help="print every EXPLAIN in full (default: the largest)")
    parser.add_argument("--try-index", action="store_true", help="candidate indexes on a scratch copy")
    parser.add_argument("--devstack", help="use this running devstack dir instead of a private stack")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    from mspctl.tokens import mint

    results: dict[int, dict[tuple[str, str, str], list[float]]] = {}
    plans: dict[tuple[int, str, str], tuple[str, dict[str, Any]]] = {}
    generic_plans: dict[tuple[int, str, str], tuple[str, dict[str, Any]]] = {}
    index_lines: list[str] = []
    started = time.perf_counter()
    with private_stack(args.devstack) as (root, env, _), contextlib.ExitStack() as stack:
        env, admin_dsn = prepare_database(env)
        url, _ = stack.enter_context(serve("intake.main:app", free_port(), env, 1))
        known = seed_clients(admin_dsn, args.clients, args.known)
        admin_token = mint(root, role="admin", sub=ADMIN, ttl=3600)
        staff = {"sub": TECH, "display_name": "Bench Tech", "email": "tech@bench.example", "role": "technician"}
        created = httpx.post(
            url + "/v1/staff", headers={"Authorization": f"Bearer {admin_token}"}, json={**staff, "client_ids": known}
        )
        created.raise_for_status()
        tokens = {"admin": admin_token, "technician": mint(root, role="technician", sub=TECH, ttl=3600)}
        https = {who: stack.enter_context(client(url, token)) for who, token in tokens.items()}
        service = Service(env)
        users = {who: service.principal(who) for who in https}
        epoch = sql(admin_dsn, "SELECT date_trunc('day', now()) - interval '400 days'")[0][0]
        have = 0
        for size in sizes:
            grow(admin_dsn, have, size, args.clients, epoch)
            have = size
            cursors: dict[str, str | None] = {"first": None, "deep": deep_cursor(admin_dsn, size)}
            for cursor in cursors.values():
                page = route_page(https["technician"], cursor)
                check_technician(page, set(known))
                assert len(page["items"]) > 0 and len(route_page(https["admin"], cursor)["items"]) == LIMIT
            results[size] = measure(https=https, service=service, users=users, cursors=cursors, calls=args.calls)
            for who, user in users.items():
                for page_name, cursor in cursors.items():
                    statement, parameters = service.list_statement(user, cursor)
                    plans[(size, who, page_name)] = service.explain(statement, parameters)
                    generic_plans[(size, who, page_name)] = service.explain_generic(statement, parameters)
            visible = sql(
                admin_dsn,
                "SELECT count(*) FILTER (WHERE client_id = ANY(%s::uuid[]) OR assignee = %s), count(*)"
                " FROM intake.tasks",
                known,
                TECH,
            )[0]
            print(f"{size:>7} tasks: technician may see {visible[0]} of {visible[1]}", flush=True)
        if args.try_index:
            statements = {
                f"{who} {page}": service.list_statement(user, cursor)
                for who, user in users.items()
                for page, cursor in cursors.items()
            }
            index_lines = try_indexes(admin_dsn, service, statements, max(args.calls, 20))
        statement, _ = service.list_statement(users["technician"], cursors["deep"])
    report(results, plans, generic_plans, index_lines, statement, args, sizes, time.perf_counter() - started)


def report(
    results: dict[int, dict[tuple[str, str, str], list[float]]],
    plans: dict[tuple[int, str, str], tuple[str, dict[str, Any]]],
    generic_plans: dict[tuple[int, str, str], tuple[str, dict[str, Any]]],
    index_lines: list[str],
    statement: str,
    args: argparse.Namespace,
    sizes: list[int],
    seconds: float,
) -> None:
    """Medians per size, the technician/admin ratios, the plans; exit 1 if the technician's query seq-scans."""
    print(
        f"\n{args.calls} calls per (level, caller, page) and size, interleaved; limit {LIMIT}; {args.clients} clients, "
        f"technician knows {args.known}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}; "
        f"{seconds:.0f} s in all"
    )
    print(f"{'':7} {'level':7} {'page':5} {'admin ms':>9} {'tech ms':>9} {'tech/admin':>10}")
    for size in sizes:
        for level in ("route", "service"):
            for page in ("first", "deep"):
                admin = statistics.median(results[size][(level, "admin", page)])
                tech = statistics.median(results[size][(level, "technician", page)])
                print(f"{size:7} {level:7} {page:5} {admin:9.2f} {tech:9.2f} {tech / admin:10.2f}")
    print(
        "\nEXPLAIN (ANALYZE, BUFFERS) of the list's SELECT as the service function issued it (custom / generic plan):"
    )
    seq = False
    for key, (_, custom) in plans.items():
        size, who, page = key
        for kind, plan in (("custom", custom), ("generic", generic_plans[key][1])):
            # Below SEQ_OK rows the whole table is a few pages and a seq scan is the planner's cheapest plan.
            seq |= who == "technician" and plan["seq_scan"] and size >= SEQ_OK
            print(
                f"{size:7} {who:10} {page:5} {kind:7} {plan['ms']:7.2f} ms, buffers {plan['buffers']:5}, rows "
                f"discarded {plan['removed']:6}; {', '.join(plan['scans'])}"
            )
    largest = sizes[-1]
    for (size, who, page), (text, _) in plans.items():
        if args.plans or (size == largest and who == "technician"):
            print(f"\n-- {size} tasks, {who}, {page} page:\n{text}")
            print(f"-- the same, generic plan:\n{generic_plans[(size, who, page)][0]}")
    print(f"\nthe technician's deep-page SELECT:\n{statement}")
    if index_lines:
        print(f"\nwhat-ifs on a scratch copy of the {sizes[-1]:,} tasks (the captured SELECTs, statement median):")
        print("\n".join(index_lines))
    print(f"\ntechnician's query seq-scans tasks at {SEQ_OK:,} tasks or more: {'YES' if seq else 'no'}")
    if seq:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
