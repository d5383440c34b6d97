"""A worker child killed with SIGKILL mid-job: the message comes back, nothing is lost or written twice."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest

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
    wait_sim_idle,
    worker_env,
)

pytest_plugins = ["fixtures_registry"]
# Fault suite: each test kills processes and waits for redelivery.
pytestmark = pytest.mark.slow


def _child_talking_to(worker, port: int) -> int | None:
    """The pool child with an open connection to the simulator's port (the one inside the job)."""
    for pid in worker.children():
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        if any(c.raddr and c.raddr.port == port for c in conns):
            return pid
    return None


def test_sigkill_mid_job_loses_nothing_and_writes_nothing_twice(vs_worker, job_sim, vault_listener, vs_engine,
                                                                 stack_env):
    worker = vs_worker(worker_env(job_sim, vault_listener.url, retry_base_s=0.5, retry_cap_s=2))
    reset_vendor_state(job_sim, stack_env["MSP_REDIS_URL"])
    t0 = time.time()
    name = "example.cz"
    # The first registry call hangs for 8 s: long enough to find the child and kill it.
    add_fault(job_sim, mode="delay", seconds=8, path_prefix=f"/rdap/domain/{name}", count=1)
    domain_id = insert_domain(vs_engine, name)
    run_id = queue_run(vs_engine, domain_id)
    deadline = time.monotonic() + 30
    while not [r for r in sim_requests(job_sim, f"/rdap/domain/{name}") if r["t"] >= t0]:
        assert time.monotonic() < deadline, "the job never reached the simulator"
        time.sleep(0.05)
    assert run_row(vs_engine, run_id)["status"] == "running"
    port = int(job_sim.rsplit(":", 1)[1])
    victim = _child_talking_to(worker, port)
    assert victim is not None, "no pool child is talking to the simulator"
    killed_at = time.time()
    os.kill(victim, signal.SIGKILL)

    # Well under the 300 s visibility timeout: acks_late + task_reject_on_worker_lost requeue at once.
    run = wait_for_run(vs_engine, run_id, timeout=120)
    print(f"run finished {time.time() - killed_at:.1f}s after SIGKILL of the child")
    assert (run["status"], run["error"], run["attempts"]) == ("succeeded", None, 2)
    hits = [r for r in sim_requests(job_sim, f"/rdap/domain/{name}") if r["t"] >= t0]
    assert len(hits) == 2
    domain = domain_row(vs_engine, domain_id)
    assert domain["registrar"] is not None and domain["last_checked_at"] == run["finished_at"]
    assert count_rows(vs_engine, "SELECT count(*) FROM vendor_sync.sync_runs WHERE domain_id = :d", d=domain_id) == 1
    # First fill: no drift events, and only the expiry warning (if any) once.
    assert count_rows(
        vs_engine, "SELECT count(*) FROM vendor_sync.drift_events WHERE domain_id = :d AND kind = 'change'",
        d=domain_id,
    ) == 0
    assert count_rows(
        vs_engine, "SELECT count(*) FROM vendor_sync.drift_events WHERE domain_id = :d AND kind = 'expiry_warning'",
        d=domain_id,
    ) <= 1
    assert count_rows(
        vs_engine, "SELECT attempts FROM vendor_sync.job_attempts WHERE job_key = :k",
        k=f"vendor_sync.domain.refresh:{run_id}",
    ) == 2
    assert "WorkerLostError" in worker.log()
    wait_sim_idle(job_sim)


def test_a_whole_worker_killed_mid_job_is_recovered_by_the_visibility_timeout(
    vs_worker, job_sim, vault_listener, vs_engine, stack_env
):
    # With the main process dead too, nobody rejects the message: Redis gives it back only after the
    # visibility timeout (300 s in production; 8 s here through the dev-only setting).
    env = worker_env(job_sim, vault_listener.url, retry_base_s=0.5, retry_cap_s=2, visibility_timeout_s=8)
    worker = vs_worker(env)
    reset_vendor_state(job_sim, stack_env["MSP_REDIS_URL"])
    t0 = time.time()
    name = "lemonde.fr"
    add_fault(job_sim, mode="delay", seconds=8, path_prefix=f"/rdap/domain/{name}", count=1)
    domain_id = insert_domain(vs_engine, name)
    run_id = queue_run(vs_engine, domain_id)
    deadline = time.monotonic() + 30
    while not [r for r in sim_requests(job_sim, f"/rdap/domain/{name}") if r["t"] >= t0]:
        assert time.monotonic() < deadline, "the job never reached the simulator"
        time.sleep(0.05)
    os.killpg(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(10)
    assert run_row(vs_engine, run_id)["status"] == "running"
    replacement = vs_worker(env, purge=False)
    run = wait_for_run(vs_engine, run_id, timeout=90)
    assert (run["status"], run["attempts"]) == ("succeeded", 2)
    assert len([r for r in sim_requests(job_sim, f"/rdap/domain/{name}") if r["t"] >= t0]) == 2
    assert count_rows(vs_engine, "SELECT count(*) FROM vendor_sync.sync_runs WHERE domain_id = :d", d=domain_id) == 1
    assert "Traceback" not in replacement.log()
    wait_sim_idle(job_sim)
