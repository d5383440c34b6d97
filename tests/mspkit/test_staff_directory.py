"""StaffDirectory against the real intake and Redis: cached views, `forget`, the race it closes, failing closed.

intake's answers are counted where they are made (an httpx hook on the directory's own client for
the live intake; a tiny intake stand-in over HTTP for off-shape answers), so "cached" means intake
was not asked, not that the answer happened to be the same.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import Engine, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from mspctl.ports import free_port
from mspctl.threaded_server import ThreadedServer
from mspkit.errors import Unavailable
from mspkit.service_tokens import ServiceClient, ServiceTokenSource, token_source
from mspkit.staff import StaffView
from mspkit.staff_directory import MAX_TTL_S, StaffDirectory

A, B = uuid.uuid4(), uuid.uuid4()


@dataclass
class Counted:
    """A directory and the staff-view requests its intake client sent."""

    directory: StaffDirectory
    asked: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def tokens(stack_env: dict[str, str]) -> ServiceTokenSource:
    """vendor_sync's client-credentials tokens (intake serves staff views to `svc:vendor_sync`)."""
    from vendor_sync.settings import get_settings

    return token_source(get_settings())


@pytest.fixture
def make_directory(tokens: ServiceTokenSource, stack_env: dict[str, str]) -> Callable[..., Counted]:
    """Factory: a directory on intake at `url` with a cache of its own (a fresh service name per test)."""
    service = f"test-{uuid.uuid4().hex[:8]}"

    def _make(url: str, *, redis_url: str | None = None, ttl_s: int = MAX_TTL_S) -> Counted:
        intake = ServiceClient(base_url=url, audience="intake", tokens=tokens, timeout_s=2.0)
        counted = Counted(
            StaffDirectory(
                intake=intake, redis_url=redis_url or stack_env["MSP_REDIS_URL"], service=service, ttl_s=ttl_s
            )
        )

        def _count(request: httpx.Request) -> None:
            if request.url.path.startswith("/internal/staff/"):
                counted.asked.append(request.url.path.rsplit("/", 1)[1])

        intake.http.event_hooks = {"request": [_count], "response": []}
        return counted

    return _make


@pytest.fixture
def live(intake_live: str, make_directory: Callable[..., Counted]) -> Counted:
    """A directory on the real intake."""
    return make_directory(intake_live)


@pytest.fixture
def staff_row(admin_engine: Engine) -> Callable[..., str]:
    """Factory: a committed staff row at intake for a fresh sub (returned); `set_row` changes it behind any cache."""

    def _row(*, client_ids: list[uuid.UUID] | None = None, active: bool = True, sub: str | None = None) -> str:
        sub = sub or f"dir-{uuid.uuid4().hex[:10]}"
        ids = None if client_ids is None else json.dumps([str(i) for i in client_ids])
        with admin_engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO intake.staff (sub, id, display_name, email, role, active, client_ids,"
                    " created_at, updated_at) VALUES (:sub, :id, :sub, 'dir@msp.example', 'technician', :active,"
                    " CAST(:ids AS jsonb), now(), now())"
                ),
                {"sub": sub, "id": uuid.uuid4(), "active": active, "ids": ids},
            )
        return sub

    return _row


def set_row(engine: Engine, sub: str, client_ids: list[uuid.UUID]) -> None:
    """Change a staff row's clients straight in intake's table (no event: only `forget` tells the cache)."""
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE intake.staff SET client_ids = CAST(:ids AS jsonb) WHERE sub = :sub"),
            {"sub": sub, "ids": json.dumps([str(i) for i in client_ids])},
        )


def test_a_view_is_cached_for_every_process_until_forgotten(live, make_directory, intake_live, staff_row, admin_engine):
    sub = staff_row(client_ids=[A])
    assert live.directory.view(sub) == StaffView(sub, "technician", True, frozenset({A}))
    set_row(admin_engine, sub, [B])

    assert live.directory.view(sub) == StaffView(sub, "technician", True, frozenset({A}))
    assert live.asked == [sub]
    # Another API process of the same service shares the cache: it does not ask either.
    other = make_directory(intake_live)
    assert other.directory.view(sub) == StaffView(sub, "technician", True, frozenset({A}))
    assert other.asked == []

    live.directory.forget(sub)
    assert other.directory.view(sub) == StaffView(sub, "technician", True, frozenset({B}))
    assert live.directory.view(sub) == StaffView(sub, "technician", True, frozenset({B}))
    assert (live.asked, other.asked) == ([sub], [sub])


def test_a_read_racing_a_change_does_not_cache_the_old_view(live, staff_row, admin_engine, monkeypatch):
    sub = staff_row(client_ids=[A])
    ask = live.directory._ask_intake

    def racing(asked_for: str) -> StaffView | None:
        # intake answers, then the row changes and `staff.changed` is consumed before the answer is cached.
        answer = ask(asked_for)
        set_row(admin_engine, asked_for, [B])
        live.directory.forget(asked_for)
        return answer

    monkeypatch.setattr(live.directory, "_ask_intake", racing)
    assert live.directory.view(sub) == StaffView(sub, "technician", True, frozenset({A}))
    monkeypatch.undo()

    assert live.directory.view(sub) == StaffView(sub, "technician", True, frozenset({B}))
    assert live.asked == [sub, sub]


def test_no_staff_row_is_cached_as_such(live, staff_row):
    sub = f"dir-none-{uuid.uuid4().hex[:8]}"
    assert live.directory.view(sub) is None
    staff_row(sub=sub, client_ids=[A])

    assert live.directory.view(sub) is None
    assert live.asked == [sub]
    live.directory.forget(sub)
    assert live.directory.view(sub) == StaffView(sub, "technician", True, frozenset({A}))


def test_a_view_is_kept_at_most_30_seconds_whatever_the_ttl_asked(make_directory, intake_live, staff_row, stack_env):
    counted = make_directory(intake_live, ttl_s=3600)
    sub = staff_row(client_ids=None)
    assert counted.directory.view(sub) == StaffView(sub, "technician", True, None)
    client = redis.Redis.from_url(stack_env["MSP_REDIS_URL"])
    try:
        keys = [k for k in client.scan_iter(f"*:staff:view:{sub}")]
        assert len(keys) == 1
        assert 0 < client.ttl(keys[0]) <= MAX_TTL_S
    finally:
        client.close()


# ---- failing closed --------------------------------------------------------------------------------


@dataclass
class FakeIntake:
    """An intake stand-in over HTTP that answers `/internal/staff/{sub}` with whatever it is told."""

    url: str
    answer: Callable[[str], Response] = field(default=lambda sub: JSONResponse({}, status_code=404))
    asked: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def fake_intake() -> Iterator[FakeIntake]:
    fake = FakeIntake(url="")

    async def staff(request: Request) -> Response:
        sub = request.path_params["sub"]
        fake.asked.append(sub)
        return fake.answer(sub)

    served = ThreadedServer(Starlette(routes=[Route("/internal/staff/{sub}", staff)]), free_port(), lifespan="off")
    fake.url = served.start().url
    yield fake
    served.stop()


def _view(sub: str, **changes: Any) -> dict[str, Any]:
    return {"sub": sub, "role": "technician", "active": True, "client_ids": [str(A)], **changes}


OFF_SHAPE: list[tuple[Callable[[str], Response], str]] = [
    (lambda sub: JSONResponse([_view(sub)]), "intake's staff view is malformed (staff view is not an object)"),
    (
        lambda sub: JSONResponse(_view(sub, role="wizard")),
        "intake's staff view is malformed (staff view lacks sub, role or active)",
    ),
    (
        lambda sub: JSONResponse(_view(sub, active="yes")),
        "intake's staff view is malformed (staff view lacks sub, role or active)",
    ),
    (
        lambda sub: JSONResponse(_view(sub, client_ids=str(A))),
        "intake's staff view is malformed (staff view's client_ids is not a list)",
    ),
    (
        lambda sub: JSONResponse(_view(sub, client_ids=["all"])),
        "intake's staff view is malformed (staff view's client_ids holds a non-uuid)",
    ),
    (lambda sub: JSONResponse(_view("someone-else")), "intake answered for another staff member"),
    (lambda sub: PlainTextResponse("<html>ok</html>"), "intake's answer is not JSON"),
    (lambda sub: JSONResponse({"error": "internal"}, status_code=500), "intake answered 500"),
]


@pytest.mark.parametrize(("answer", "words"), OFF_SHAPE)
def test_an_off_shape_answer_is_503_with_words_and_is_not_cached(fake_intake, make_directory, answer, words):
    counted = make_directory(fake_intake.url)
    sub = f"dir-{uuid.uuid4().hex[:8]}"
    fake_intake.answer = answer

    with pytest.raises(Unavailable) as raised:
        counted.directory.view(sub)
    assert (raised.value.status_code, raised.value.body()) == (503, {"error": "unavailable", "detail": words})

    fake_intake.answer = lambda asked: JSONResponse(_view(asked))
    assert counted.directory.view(sub) == StaffView(sub, "technician", True, frozenset({A}))
    assert counted.asked == [sub, sub]


def test_an_unreachable_intake_is_503_once_the_cached_view_is_forgotten(make_directory, intake_live, staff_row):
    sub = staff_row(client_ids=[A])
    make_directory(intake_live).directory.view(sub)
    down = make_directory(f"http://127.0.0.1:{free_port()}")

    # Within its 30 s a cached view still answers (the contract's cache); once dropped, nothing does.
    assert down.directory.view(sub) == StaffView(sub, "technician", True, frozenset({A}))
    down.directory.forget(sub)
    with pytest.raises(Unavailable) as raised:
        down.directory.view(sub)
    assert raised.value.body() == {"error": "unavailable", "detail": "intake unreachable (connection failed)"}
    with pytest.raises(Unavailable):
        down.directory.view(f"dir-never-{uuid.uuid4().hex[:8]}")


def test_with_redis_down_every_read_asks_intake_and_forget_raises(make_directory, intake_live, staff_row):
    sub = staff_row(client_ids=[B])
    counted = make_directory(intake_live, redis_url=f"redis://127.0.0.1:{free_port()}/0")

    assert counted.directory.view(sub) == StaffView(sub, "technician", True, frozenset({B}))
    assert counted.directory.view(sub) == StaffView(sub, "technician", True, frozenset({B}))
    assert counted.asked == [sub, sub]
    # The `staff.changed` consumer must see the failure to retry it.
    with pytest.raises(redis.ConnectionError):
        counted.directory.forget(sub)
