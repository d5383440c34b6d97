"""intake's Celery jobs: the scheduled purge of expired Idempotency-Keys, its schedule, and the worker's imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session

OLD = datetime(2000, 1, 1, tzinfo=UTC)  # older than anything the rest of the suite writes
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _key(conn, scope: str, key: str, created_at: datetime) -> None:
    conn.execute(
        text(
            "INSERT INTO intake.idempotency_keys (scope, key, body_hash, status_code, response_body, request_id,"
            " created_at) VALUES (:s, :k, 'h', 201, '{}', :r, :c)"
        ),
        {"s": scope, "k": key, "r": uuid.uuid4(), "c": created_at},
    )


def _keys(conn, scope: str) -> list[str]:
    rows = conn.execute(text("SELECT key FROM intake.idempotency_keys WHERE scope = :s ORDER BY key"), {"s": scope})
    return [r[0] for r in rows]


@pytest.fixture
def session(conn):
    with Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False) as session:
        yield session


def test_purge_deletes_only_keys_past_their_ttl(conn, session):
    from intake.idempotency.service import purge_expired

    scope = f"sub:purge-{uuid.uuid4()}"
    now = datetime.now(UTC)
    for i in range(5):
        _key(conn, scope, f"old-{i}", OLD + timedelta(seconds=i))
    _key(conn, scope, "just-live", now - timedelta(seconds=3600 - 60))
    _key(conn, scope, "fresh", now)
    purged = purge_expired(session, now=now, ttl_s=3600, batch_size=2, max_batches=100)
    assert purged >= 5
    assert _keys(conn, scope) == ["fresh", "just-live"]


def test_purge_is_bounded_by_batches(conn, session):
    from intake.idempotency.service import purge_expired

    scope = f"sub:purge-{uuid.uuid4()}"
    for i in range(5):
        _key(conn, scope, f"old-{i}", OLD - timedelta(days=1) + timedelta(seconds=i))
    purged = purge_expired(session, now=datetime.now(UTC), ttl_s=3600, batch_size=2, max_batches=1)
    assert purged == 2
    assert _keys(conn, scope) == ["old-2", "old-3", "old-4"]  # the oldest go first


def test_the_job_purges_with_real_commits(admin_engine):
    from intake.jobs import purge_idempotency_keys

    scope = f"sub:job-{uuid.uuid4()}"
    with admin_engine.begin() as conn:
        _key(conn, scope, "expired", OLD)
        _key(conn, scope, "live", datetime.now(UTC))
    assert purge_idempotency_keys() >= 1
    with admin_engine.connect() as conn:
        assert _keys(conn, scope) == ["live"]


def test_beat_schedules_the_purge_on_intakes_queue():
    from intake.celery_app import PURGE_TASK, QUEUE, app

    app.loader.import_default_modules()
    [entry] = [e for e in app.conf.beat_schedule.values() if e["task"] == PURGE_TASK]
    assert PURGE_TASK == "intake.idempotency.purge"
    assert PURGE_TASK in app.tasks
    assert entry["options"]["queue"] == QUEUE == "intake"
    assert app.amqp.router.route({}, PURGE_TASK)["queue"].name == QUEUE


def test_the_worker_imports_no_api_module():
    """What `celery -A intake.celery_app worker` loads: the app and its jobs, never deps.py, a router or the API."""
    probe = (
        "import sys, json, intake.celery_app; intake.celery_app.app.loader.import_default_modules(); "
        "print(json.dumps(sorted(m for m in sys.modules if m in ('intake.deps', 'intake.main') or "
        "(m.startswith('intake.') and m.endswith('.routes')))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []


@pytest.mark.slow
def test_beat_and_worker_purge_expired_keys(admin_engine, tmp_path):
    """intake-beat schedules the purge (every second here) and intake-worker, on queue `intake`, runs it."""
    scope = f"sub:beat-{uuid.uuid4()}"
    with admin_engine.begin() as conn:
        _key(conn, scope, "expired", OLD)
        _key(conn, scope, "live", datetime.now(UTC))
    env = {**os.environ, "INTAKE_IDEMPOTENCY_PURGE_INTERVAL_S": "1"}
    celery = [sys.executable, "-m", "celery", "-A", "intake.celery_app"]
    log = (tmp_path / "celery.log").open("w")
    procs = [
        subprocess.Popen(
            [*celery, "worker", "-Q", "intake", "--pool", "solo"], cwd=REPO, env=env, stdout=log, stderr=log
        ),
        subprocess.Popen(
            [*celery, "beat", "--schedule", str(tmp_path / "beat-schedule")], cwd=REPO, env=env, stdout=log, stderr=log
        ),
    ]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with admin_engine.connect() as conn:
                if _keys(conn, scope) == ["live"]:
                    break
            time.sleep(0.5)
        with admin_engine.connect() as conn:
            assert _keys(conn, scope) == ["live"], (tmp_path / "celery.log").read_text()[-3000:]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        log.close()
