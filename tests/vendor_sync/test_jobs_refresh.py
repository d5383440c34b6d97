"""Refresh jobs in a real Celery worker (prefork, 2 children) against PostgreSQL, Redis and vendor_sim."""

from __future__ import annotations

import sys
import time
import uuid
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import redis

sys.path.insert(0, str(Path(__file__).parent))
pytest.register_assert_rewrite("fixtures_registry")
from fixtures_registry import (  # noqa: E402
    add_fault,
    count_rows,
    domain_row,
    insert_domain,
    queue_run,
    reset_vendor_state,
    run_row,
    sim_requests,
    wait_for_run,
    worker_env,
)

pytest_plugins = ["fixtures_registry"]

MAX_ATTEMPTS = 3


@pytest.fixture(scope="module")
def worker(vs_worker, job_sim, vault_listener):
    """One worker for the module: fast backoff, 3 attempts, 3 s deadline, 4 s breaker cooldown."""
    return vs_worker(
        worker_env(
            job_sim,
            vault_listener.url,
            retry_base_s=0.5,
            retry_cap_s=2,
            refresh_max_attempts=MAX_ATTEMPTS,
            http_deadline_s=3,
            breaker_cooldown_s=4,
            rdap_rate_limit="50/second",
        )
    )


@pytest.fixture
def sim(job_sim, stack_env, worker):
    """The simulator, reset, with the RDAP circuit closed; yields (url, test start time)."""
    reset_vendor_state(job_sim, stack_env["MSP_REDIS_URL"])
    return job_sim, time.time()


def _domain_hits(sim_url: str, name: str, since: float) -> list[dict]:
    return [r for r in sim_requests(sim_url, f"/rdap/domain/{name}") if r["t"] >= since]


def test_a_503_is_retried_and_the_refresh_succeeds_once(sim, vs_engine):
    sim_url, t0 = sim
    domain_id = insert_domain(vs_engine, "google.com")
    add_fault(sim_url, mode="503", path_prefix="/rdap/domain/google.com", count=1)
    run_id = queue_run(vs_engine, domain_id)
    run = wait_for_run(vs_engine, run_id)
    assert (run["status"], run["error"], run["attempts"], run["failed"]) == ("succeeded", None, 2, 0)
    assert [r["status"] for r in _domain_hits(sim_url, "google.com", t0)] == [503, 200]
    domain = domain_row(vs_engine, domain_id)
    assert domain["registrar"] == "MarkMonitor Inc."
    assert domain["registrar_iana_id"] == 292
    assert domain["expires_at"] is not None and domain["created_at"] is not None
    assert "ns1.google.com" in domain["nameservers"]
    assert domain["last_checked_at"] is not None and domain["next_check_at"] > domain["last_checked_at"]
    # First fill of every field: counted as created, no drift.
    assert run["created"] >= 6 and run["updated"] == 0 and run["deleted"] == 0
    assert count_rows(vs_engine, "SELECT count(*) FROM vendor_sync.sync_runs WHERE domain_id = :d", d=domain_id) == 1
    assert count_rows(vs_engine, "SELECT count(*) FROM vendor_sync.drift_events WHERE domain_id = :d", d=domain_id) == 0


def test_a_404_is_not_retried_and_the_run_fails_not_found(sim, vs_engine):
    sim_url, t0 = sim
    name = f"unknown-{uuid.uuid4().hex[:8]}.com"
    domain_id = insert_domain(vs_engine, name)
    run_id = queue_run(vs_engine, domain_id)
    run = wait_for_run(vs_engine, run_id)
    assert (run["status"], run["error"], run["attempts"], run["failed"]) == ("failed", "not_found", 1, 1)
    assert domain_row(vs_engine, domain_id)["last_checked_at"] is not None
    # Give a wrongly scheduled retry (backoff <= 2 s here) time to show up: there must be none.
    time.sleep(3)
    assert [r["status"] for r in _domain_hits(sim_url, name, t0)] == [404]
    assert run_row(vs_engine, run_id)["status"] == "failed"
    assert count_rows(
        vs_engine, "SELECT count(*) FROM vendor_sync.dead_letters WHERE args->>0 = :r", r=str(run_id)
    ) == 0


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_a_429_is_retried_never_before_retry_after(sim, vs_engine, form):
    sim_url, t0 = sim
    name = "norway.no"
    domain_id = insert_domain(vs_engine, name)
    retry_at = None
    if form == "seconds":
        add_fault(sim_url, mode="429", retry_after=3, path_prefix=f"/rdap/domain/{name}", count=1)
    else:
        from vendor_sim.faults import http_date_in

        date = http_date_in(4)
        retry_at = parsedate_to_datetime(date).timestamp()
        add_fault(sim_url, mode="429", retry_after=date, path_prefix=f"/rdap/domain/{name}", count=1)
    run_id = queue_run(vs_engine, domain_id)
    run = wait_for_run(vs_engine, run_id)
    assert (run["status"], run["attempts"]) == ("succeeded", 2)
    hits = _domain_hits(sim_url, name, t0)
    assert [(r["status"], r["fault"]) for r in hits] == [(429, "429"), (200, None)]
    if retry_at is None:
        assert hits[1]["t"] - hits[0]["t"] >= 3.0
    else:
        # Retry-After as an HTTP-date names an instant: the retry must not come before it.
        assert hits[1]["t"] >= retry_at
    assert domain_row(vs_engine, domain_id)["registrar"] is not None


def test_an_open_circuit_makes_no_calls_until_it_half_opens(sim, vs_engine, stack_env):
    from mspkit.http import BreakerConfig, CircuitBreaker

    sim_url, t0 = sim
    client = redis.Redis.from_url(stack_env["MSP_REDIS_URL"])
    breaker = CircuitBreaker(client, "rdap", BreakerConfig(failure_threshold=1, cooldown_s=4))
    breaker.record_failure()
    assert breaker.state() == "open"
    open_until = time.time() + client.pttl("mspkit:cb:rdap:open") / 1000
    domain_id = insert_domain(vs_engine, "lemonde.fr")
    run_id = queue_run(vs_engine, domain_id)
    seen_waiting = wait_for_run(vs_engine, run_id, statuses=("queued",), timeout=10)
    deadline = time.monotonic() + 10
    while seen_waiting["error"] != "circuit_open" and time.monotonic() < deadline:
        time.sleep(0.05)
        seen_waiting = run_row(vs_engine, run_id)
    assert seen_waiting["error"] == "circuit_open" and seen_waiting["not_before"] is not None
    run = wait_for_run(vs_engine, run_id, timeout=30)
    assert run["status"] == "succeeded"
    # Attempts that made no call (open circuit) are given back.
    assert run["attempts"] == 1
    calls = [r for r in sim_requests(sim_url, "/rdap/") if r["t"] >= t0]
    assert calls, "the refresh never reached the simulator"
    assert all(r["t"] >= open_until for r in calls), "a call went out while the circuit was open"
    assert breaker.state() == "closed"
    client.close()


def test_a_vendor_failing_every_time_is_dead_lettered_after_the_last_attempt(sim, vs_engine):
    sim_url, t0 = sim
    name = f"flaky-{uuid.uuid4().hex[:8]}.com"
    domain_id = insert_domain(vs_engine, name)
    add_fault(sim_url, mode="503", path_prefix=f"/rdap/domain/{name}")
    run_id = queue_run(vs_engine, domain_id)
    run = wait_for_run(vs_engine, run_id, timeout=60)
    assert (run["status"], run["error"], run["attempts"], run["failed"]) == ("failed", "max_attempts", MAX_ATTEMPTS, 1)
    assert len(_domain_hits(sim_url, name, t0)) == MAX_ATTEMPTS
    with vs_engine.connect() as conn:
        from sqlalchemy import text

        letters = conn.execute(
            text("SELECT task_name, attempts, error, args FROM vendor_sync.dead_letters WHERE args->>0 = :r"),
            {"r": str(run_id)},
        ).all()
    assert [tuple(r) for r in letters] == [("vendor_sync.domain.refresh", MAX_ATTEMPTS, "http_503", [str(run_id)])]
    assert domain_row(vs_engine, domain_id)["last_checked_at"] is not None


def test_duplicate_messages_refresh_once_and_a_finished_run_is_a_no_op(sim, vs_engine):
    from vendor_sync.celery_app import app

    sim_url, t0 = sim
    add_fault(sim_url, mode="delay", seconds=1, path_prefix="/rdap/domain/example.cz", count=1)
    domain_id = insert_domain(vs_engine, "example.cz")
    run_id = queue_run(vs_engine, domain_id)
    for _ in range(3):
        app.send_task("vendor_sync.domain.refresh", args=[str(run_id)], queue="vendor_sync")
    run = wait_for_run(vs_engine, run_id)
    assert (run["status"], run["attempts"]) == ("succeeded", 1)
    time.sleep(1.5)
    app.send_task("vendor_sync.domain.refresh", args=[str(run_id)], queue="vendor_sync")
    time.sleep(1.5)
    assert len(_domain_hits(sim_url, "example.cz", t0)) == 1
    assert run_row(vs_engine, run_id)["finished_at"] == run["finished_at"]


@pytest.mark.slow
def test_hostile_responses_fail_cleanly_and_never_reach_vault(sim, vs_engine, worker, vault_listener):
    sim_url, t0 = sim
    cases = {
        "malformed": ({"mode": "malformed"}, "bad_response"),
        "html": ({"mode": "html"}, "bad_response"),
        "vault": ({"mode": "redirect", "location": f"{vault_listener.url}/v1/sys/wrapping/unwrap"}, "host_not_allowed"),
        "vaultrel": ({"mode": "redirect", "location": f"//127.0.0.1:{vault_listener.port}/v1/x"}, "host_not_allowed"),
        "linklocal": ({"mode": "redirect", "location": "http://169.254.169.254/latest/meta-data/"}, "host_not_allowed"),
        "huge": ({"mode": "huge", "size_mb": 50}, "bad_response"),
        "hugedeclared": ({"mode": "huge", "size_mb": 50, "declare_length": True}, "bad_response"),
        "drip": ({"mode": "drip", "seconds": 30, "chunks": 30}, "max_attempts"),
    }
    runs = {}
    for label, (spec, _) in cases.items():
        # A drip needs a 200 answer to drip (an unknown name's 404 fails before any body is read).
        name = "microsoft.click" if label == "drip" else f"hostile-{label}-{uuid.uuid4().hex[:6]}.com"
        add_fault(sim_url, path_prefix=f"/rdap/domain/{name}", **spec)
        domain_id = insert_domain(vs_engine, name)
        runs[label] = (name, domain_id, queue_run(vs_engine, domain_id))
    for label, (name, domain_id, run_id) in runs.items():
        run = wait_for_run(vs_engine, run_id, timeout=90)
        assert (label, run["status"], run["error"]) == (label, "failed", cases[label][1])
        assert domain_row(vs_engine, domain_id)["last_checked_at"] is not None
        expected_calls = MAX_ATTEMPTS if label == "drip" else 1
        assert len(_domain_hits(sim_url, name, t0)) == expected_calls, label
    assert vault_listener.connections == [], "a request reached the Vault port"
    log = worker.log()
    for marker in ("Traceback", "refresh_unexpected_error", "unhandled", "raised unexpected"):
        assert marker not in log, f"worker log contains {marker!r}"
