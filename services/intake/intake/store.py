"""Single-statement SQL for intake's hot path, on asyncpg, with a SQLAlchemy binding for tests.

`POST /v1/requests` writes everything (idempotency key, request, tasks, approvals, outbox rows) in
one statement: one round trip and one implicit transaction, run on the event loop. The statement is
written once with named `:params`; `AsyncpgStore` turns it into asyncpg's `$n` form, and
`SqlAlchemyStore` runs the very same text through SQLAlchemy (the tests use it to join their
rolled-back transaction).
"""

from __future__ import annotations

import asyncio
import re
from functools import lru_cache
from typing import Any, Protocol

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Connection, Engine, text

from mspkit.errors import Unavailable

_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


class Store(Protocol):
    """Runs one statement and returns its first row (or None)."""

    async def fetch(self, sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """Execute `sql` with named params in its own transaction; the first row as a dict."""
        ...

    async def close(self) -> None:
        """Release connections held for the current event loop."""
        ...


@lru_cache(maxsize=256)
def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """`:name` placeholders → asyncpg's `$1..$n`, with the names in order (`::` casts are left alone)."""
    names: list[str] = []

    def _swap(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PARAM.sub(_swap, sql), tuple(names)


def asyncpg_dsn(database_url: str) -> str:
    """A libpq-style DSN from the SQLAlchemy URL (`postgresql+psycopg://` → `postgresql://`)."""
    _, sep, rest = database_url.partition("://")
    return f"postgresql://{rest}" if sep else database_url


async def keep_session(connection: Any) -> None:
    """Pool reset hook that skips asyncpg's reset query on release.

    By default every release runs `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`,
    a second round trip per statement. This pool only ever runs single autocommit statements that
    leave no session state (no SET, LISTEN, cursor or session-level advisory lock), so there is
    nothing to reset; asyncpg still rolls back a connection left in a transaction before this hook.
    """


class AsyncpgStore:
    """asyncpg pools created lazily, one per event loop (a uvicorn worker has one; tests may run several)."""

    def __init__(self, database_url: str, *, max_size: int) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._max_size = max_size
        self._pools: dict[asyncio.AbstractEventLoop, asyncio.Future[Any]] = {}
        # The pool of the loop that used the store last: the hot path finds it without a future.
        self._last: tuple[asyncio.AbstractEventLoop, Any] | None = None

    async def _get_pool(self) -> Any:
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0] is loop:
            return last[1]
        creating = self._pools.get(loop)
        if creating is None:
            import asyncpg

            # min_size=0: a database that is down at start-up fails requests, not the process. The
            # future is registered before anything awaits, so concurrent first requests share one pool.
            pool = asyncpg.create_pool(
                self._dsn,
                min_size=0,
                max_size=self._max_size,
                command_timeout=10,
                server_settings={"application_name": "intake-hot"},
                reset=keep_session,
            )
            creating = self._pools[loop] = asyncio.ensure_future(pool)
        try:
            pool = await asyncio.shield(creating)
        except BaseException:
            if creating.done() and self._pools.get(loop) is creating:
                del self._pools[loop]  # a failed creation is retried by the next request
            raise
        self._last = (loop, pool)
        return pool

    async def fetch(self, sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """Run one statement (autocommit: the statement is its own transaction)."""
        import asyncpg

        query, names = positional(sql)
        try:
            pool = await self._get_pool()
            row = await pool.fetchrow(query, *(params[name] for name in names))
        except (TimeoutError, OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
            raise Unavailable("database unavailable") from exc
        return dict(row) if row is not None else None

    async def close(self) -> None:
        """Close the current event loop's pool."""
        loop = asyncio.get_running_loop()
        if self._last is not None and self._last[0] is loop:
            self._last = None
        creating = self._pools.pop(loop, None)
        if creating is not None and creating.done() and creating.exception() is None:
            await creating.result().close()


class SqlAlchemyStore:
    """The same statements through SQLAlchemy, in a thread: on an Engine, or nested in a Connection's transaction."""

    def __init__(self, bind: Engine | Connection) -> None:
        self.bind = bind

    def _run(self, sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
        if isinstance(self.bind, Connection):
            with self.bind.begin_nested():
                row = self.bind.execute(text(sql), params).mappings().first()
        else:
            with self.bind.begin() as conn:
                row = conn.execute(text(sql), params).mappings().first()
        return dict(row) if row is not None else None

    async def fetch(self, sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """Run one statement in its own (nested) transaction."""
        return await run_in_threadpool(self._run, sql, params)

    async def close(self) -> None:
        """Nothing to release: the bind belongs to the caller."""
