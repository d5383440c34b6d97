"""Outbox → relay → Celery → inbox against the real PostgreSQL, Redis and a real worker process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select
from sqlmodel import Session

from mspkit import requestid
from mspkit.outbox import write_event

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import kit_test_app as kt  # noqa: E402


def _worker(queues: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "kit_test_app", "worker", "-Q", queues, "-c", "1",
         "--pool", "solo", "--loglevel", "WARNING", "--without-heartbeat", "--without-mingle", "--without-gossip"],
        cwd=HERE, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="module")
def worker(stack_env):
    kt.create_schema(kt.engine())
    proc = _worker("kit_test")
    yield proc
    _stop(proc)


def _emit(type_: str = "kit.test", *, commit: bool = True) -> str:
    with Session(kt.engine()) as session:
        env = write_event(session, kt.KIT, type=type_, client_id=uuid.uuid4(), aggregate_id=None,
                          data={"note": "hello"})
        session.commit() if commit else session.rollback()
    return env["event_id"]


def _count(table, event_id: str) -> int:
    with kt.engine().connect() as conn:
        query = select(func.count()).select_from(table).where(table.c.event_id == event_id)
        return int(conn.execute(query).scalar_one())


def _wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _drain(relay) -> None:
    run_id = relay.current_run_id()
    while relay.publish_batch(run_id):
        pass


def test_committed_row_is_delivered_once(worker):
    event_id = _emit()
    _drain(kt.make_relay())
    assert _wait_for(lambda: _count(kt.EFFECTS, event_id) == 1)
    with kt.engine().connect() as conn:
        sent = conn.execute(select(kt.KIT.outbox.c.sent_at).where(kt.KIT.outbox.c.event_id == event_id)).scalar_one()
    assert sent is not None


def test_an_idle_relay_is_woken_by_the_outbox_trigger_not_by_its_poll(worker):
    from sqlalchemy import text

    from mspkit.migrations import create_outbox_notify, drop_outbox_notify, outbox_channel

    eng = kt.engine()
    with eng.begin() as conn:
        drop_outbox_notify(conn, kt.SCHEMA)
        create_outbox_notify(conn, kt.SCHEMA)
    relay = kt.make_relay()
    _drain(relay)
    stop = threading.Event()
    # A poll of ten minutes: within the test's deadline only the NOTIFY can wake the relay.
    thread = threading.Thread(target=relay.run, args=(stop,), kwargs={"idle_sleep_s": 600}, daemon=True)
    thread.start()
    try:
        assert _wait_for(lambda: relay._listener is not None, 10), "the relay never listened"
        event_id = _emit()
        assert _wait_for(lambda: _count(kt.EFFECTS, event_id) == 1), "the committed event was not published"
    finally:
        stop.set()
        with eng.begin() as conn:
            conn.execute(text("SELECT pg_notify(:c, '')"), {"c": outbox_channel(kt.SCHEMA)})
            drop_outbox_notify(conn, kt.SCHEMA)
        thread.join(30)
    assert not thread.is_alive()
    assert relay._listener is None  # closed on the way out


def test_rolled_back_transaction_publishes_nothing(worker):
    event_id = _emit(commit=False)
    assert _count(kt.KIT.outbox, event_id) == 0
    _drain(kt.make_relay())
    marker = _emit()  # a later committed event proves the worker has caught up
    _drain(kt.make_relay())
    assert _wait_for(lambda: _count(kt.EFFECTS, marker) == 1)
    assert _count(kt.DELIVERIES, event_id) == 0


def test_relay_killed_between_publish_and_mark_redelivers_and_inbox_absorbs(worker):
    event_id = _emit()
    crashing = subprocess.run(
        [sys.executable, "kit_test_app.py", "relay"], cwd=HERE, timeout=60,
        env={**os.environ, "MSP_RELAY_FAULT": "crash_after_publish"}, capture_output=True,
    )
    assert crashing.returncode == 137  # died after publishing, before marking the row sent
    with kt.engine().connect() as conn:
        sent = conn.execute(select(kt.KIT.outbox.c.sent_at).where(kt.KIT.outbox.c.event_id == event_id)).scalar_one()
    assert sent is None
    _drain(kt.make_relay())  # a healthy relay publishes the row again
    assert _wait_for(lambda: _count(kt.DELIVERIES, event_id) == 2)
    time.sleep(0.5)
    assert _count(kt.EFFECTS, event_id) == 1
    assert _count(kt.KIT.inbox, event_id) == 1


def test_redis_flush_after_publish_republishes(stack_env, worker):
    relay = kt.make_relay()
    relay.reconcile_run_id(relay.current_run_id())
    event_id = _emit("kit.paused")  # its queue has no consumer yet, so the message waits in Redis
    _drain(relay)
    client = redis.Redis.from_url(stack_env["MSP_REDIS_URL"])
    assert client.llen("kit_test_paused") >= 1
    client.flushall()  # Redis loses the queued message
    assert client.llen("kit_test_paused") == 0
    requeued = relay.reconcile_run_id(relay.current_run_id())
    assert requeued >= 1
    _drain(relay)
    late_worker = _worker("kit_test_paused")
    try:
        assert _wait_for(lambda: _count(kt.EFFECTS, event_id) == 1)
    finally:
        _stop(late_worker)
    assert _count(kt.DELIVERIES, event_id) == 1


def _seen_request_ids(key: str) -> list[str | None]:
    with kt.engine().connect() as conn:
        query = select(kt.SEEN_REQUEST_IDS.c.request_id).where(kt.SEEN_REQUEST_IDS.c.key == key)
        return list(conn.execute(query).scalars())


def _job(key: str) -> None:
    kt.app.send_task("kit_test.note_request_id", args=[key], queue="kit_test", retry=False)


def test_a_job_published_while_a_request_is_handled_runs_under_its_id(worker):
    rid, during, after = "job-" + uuid.uuid4().hex, str(uuid.uuid4()), str(uuid.uuid4())
    binding = requestid.enter(rid)  # what AccessLogMiddleware does for a request
    try:
        _job(during)
    finally:
        binding.leave()
    _job(after)  # published outside any request, run next by the same (solo) worker thread
    assert _wait_for(lambda: _seen_request_ids(during) and _seen_request_ids(after))
    assert _seen_request_ids(during) == [rid]
    assert _seen_request_ids(after) == [None]  # the previous job's id was unbound when it ended


def test_an_event_written_while_a_request_is_handled_is_consumed_under_its_id(worker):
    rid = "event-" + uuid.uuid4().hex
    binding = requestid.enter(rid)
    try:
        event_id = _emit()
    finally:
        binding.leave()
    _drain(kt.make_relay())  # the relay publishes outside any request: the envelope carries the id
    assert _wait_for(lambda: _seen_request_ids(event_id))
    assert _seen_request_ids(event_id) == [rid]
