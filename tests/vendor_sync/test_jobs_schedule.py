"""The scheduler tick (bounded batches, no doubles, lost-message sweeps), beat end to end, and the inbox consumer."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
pytest.register_assert_rewrite("fixtures_registry")
from fixtures_registry import (  # noqa: E402
    REPO,
    count_rows,
    domain_row,
    insert_domain,
    purge_queue,
    reset_vendor_state,
    run_row,
    wait_for_run,
    worker_env,
)

pytest_plugins = ["fixtures_registry"]


def _published_run_ids(redis_url: str) -> list[str]:
    client = redis.Redis.from_url(redis_url)
    ids = []
    for raw in client.lrange("vendor_sync", 0, -1):
        message = json.loads(raw)
        if message.get("headers", {}).get("task") == "vendor_sync.domain.refresh":
            ids.append(json.loads(base64.b64decode(message["body"]))[0][0])
    client.close()
    return ids


def _runs_for(engine, domain_id) -> list[dict]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                text("SELECT * FROM vendor_sync.sync_runs WHERE domain_id = :d ORDER BY created_at"), {"d": domain_id}
            ).mappings()
        ]


@pytest.fixture
def settings():
    from vendor_sync.settings import get_settings

    return get_settings()


def test_tick_queues_due_domains_in_bounded_batches_and_never_twice(vs_engine, stack_env, settings):
    from vendor_sync.sync.schedule import tick

    purge_queue(stack_env["MSP_REDIS_URL"])
    client_id = uuid.uuid4()
    # Long overdue, so they come first in due order whatever else the suite left due.
    ids = [
        insert_domain(vs_engine, f"d{i}-{uuid.uuid4().hex[:6]}.example", client_id=client_id,
                      next_check_at=datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=i))
        for i in range(3)
    ]
    bounded = settings.model_copy(update={"tick_batch_size": 2, "tick_max_batches": 1})
    first = tick(engine=vs_engine, settings=bounded)
    assert first.created == 2
    assert [len(_runs_for(vs_engine, d)) for d in ids] == [1, 1, 0]
    second = tick(engine=vs_engine, settings=bounded)
    assert second.created >= 1
    runs = [_runs_for(vs_engine, d) for d in ids]
    assert [len(r) for r in runs] == [1, 1, 1], "a domain with a run in flight got another one"
    assert all(r[0]["trigger"] == "schedule" and r[0]["status"] == "queued" for r in runs)
    published = _published_run_ids(stack_env["MSP_REDIS_URL"])
    for r in runs:
        assert published.count(str(r[0]["id"])) == 1


def test_tick_republishes_only_runs_whose_message_is_missing_or_lost(vs_engine, stack_env, settings):
    from vendor_sync.sync.schedule import tick

    purge_queue(stack_env["MSP_REDIS_URL"])
    now = datetime.now(UTC)
    long_ago = now - timedelta(seconds=settings.requeue_after_s + 60)
    cases = {
        "never_published": {"status": "queued", "enqueued_at": None, "not_before": None},
        "deferred_now_due": {"status": "queued", "enqueued_at": None, "not_before": now - timedelta(seconds=1)},
        "deferred_not_due": {"status": "queued", "enqueued_at": None, "not_before": now + timedelta(hours=1)},
        "published_recently": {"status": "queued", "enqueued_at": now, "not_before": None},
        "published_and_lost": {"status": "queued", "enqueued_at": long_ago, "not_before": None},
        "running_recently": {"status": "running", "enqueued_at": now, "not_before": None, "started_at": now},
        "running_stale": {
            "status": "running", "enqueued_at": long_ago, "not_before": None,
            "started_at": now - timedelta(seconds=settings.running_stale_s + 60),
        },
    }
    run_ids = {}
    for label, values in cases.items():
        domain_id = insert_domain(vs_engine, f"{label.replace('_', '-')}-{uuid.uuid4().hex[:6]}.example")
        run_id = uuid.uuid4()
        columns = {"id": run_id, "domain_id": domain_id, "client_id": uuid.uuid4(), "started_at": None, **values}
        with vs_engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO vendor_sync.sync_runs (id, domain_id, client_id, status, enqueued_at, not_before,"
                    " started_at) VALUES (:id, :domain_id, :client_id, :status, :enqueued_at, :not_before,"
                    " :started_at)"
                ),
                columns,
            )
        run_ids[label] = str(run_id)
    tick(engine=vs_engine, settings=settings)
    published = set(_published_run_ids(stack_env["MSP_REDIS_URL"]))
    expected = {"never_published", "deferred_now_due", "published_and_lost", "running_stale"}
    assert {label for label, rid in run_ids.items() if rid in published} == expected
    for label in expected:
        assert run_row(vs_engine, uuid.UUID(run_ids[label]))["enqueued_at"] > now - timedelta(seconds=1)


def test_beat_runs_the_tick_and_a_new_domain_gets_checked(vs_worker, job_sim, vault_listener, vs_engine, stack_env,
                                                          tmp_path):
    reset_vendor_state(job_sim, stack_env["MSP_REDIS_URL"])
    env = worker_env(job_sim, vault_listener.url, tick_interval_s=1, beat_schedule=str(tmp_path / "beat-schedule"))
    worker = vs_worker(env)
    domain_id = insert_domain(vs_engine, "xn--fo-5ja.example", unicode_name="fóo.example", due=True)
    log = open(tmp_path / "beat.log", "wb")
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "vendor_sync.celery_app", "beat", "--loglevel", "INFO"],
        cwd=REPO, env=worker.env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not _runs_for(vs_engine, domain_id):
            assert beat.poll() is None, (tmp_path / "beat.log").read_text()
            assert time.monotonic() < deadline, "beat never queued the due domain"
            time.sleep(0.2)
        run = wait_for_run(vs_engine, _runs_for(vs_engine, domain_id)[0]["id"])
    finally:
        beat.terminate()
        beat.wait(10)
    assert (run["status"], run["trigger"]) == ("succeeded", "schedule")
    domain = domain_row(vs_engine, domain_id)
    assert domain["last_checked_at"] is not None
    assert domain["next_check_at"] >= domain["last_checked_at"] + timedelta(seconds=86_000)
    assert (tmp_path / "beat-schedule").exists() or any(tmp_path.glob("beat-schedule*"))
    # Later ticks see the domain as checked: still exactly one run.
    assert len(_runs_for(vs_engine, domain_id)) == 1


def _envelope() -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "approval.decided",
        "occurred_at": "2026-01-01T00:00:00Z",
        "client_id": str(uuid.uuid4()),
        "aggregate_id": str(uuid.uuid4()),
        "data": {"approval_id": str(uuid.uuid4()), "status": "approved"},
    }


def test_approval_decided_is_recorded_once_through_the_inbox(vs_engine):
    from vendor_sync.events import approval_decided

    envelope = _envelope()
    assert approval_decided(envelope) is True
    assert approval_decided(dict(envelope)) is False
    assert count_rows(
        vs_engine, "SELECT count(*) FROM vendor_sync.inbox WHERE event_id = :e AND consumer = :c",
        e=envelope["event_id"], c="vendor_sync.approval_decided",
    ) == 1
    assert approval_decided({"event_id": "nope", "type": "approval.decided"}) is False
    assert approval_decided({**_envelope(), "type": "task.created"}) is False

