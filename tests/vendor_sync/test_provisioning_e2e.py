"""Provisioning end to end: a client_user's request, the client_admin's approval, and a real vendor_sync
worker carrying it out at the simulator's MailChannels and Cloudflare.

Real: PostgreSQL, Redis, OpenBao, intake and the broker over HTTP (the worker claims the task, reports its
steps, ledgers the disclosure and gets each vendor key released for the task), vendor_sync's API (intake's
request expansion reads its registry), a Celery worker subprocess, and the simulator over HTTP. intake's
task events are handed to the worker exactly as intake's relay does (`vendor_sync.events.task_ready` with
the outbox row's envelope), one task at a time, so no other test's events reach this worker.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "secrets_broker"))

import broker_fixtures
from fixtures_registry import add_fault, count_rows, make_account, make_vendor, sim_requests, unique, wait_for_run

from vendor_sim.keys import fingerprint

pytest_plugins = ["fixtures_registry"]
broker_app = broker_fixtures.broker_app
broker_live = broker_fixtures.broker_live

pytestmark = pytest.mark.slow

VS = "svc:vendor_sync"
MC_KEY = f"mc-canary-{uuid.uuid4().hex}"
CF_KEY = f"cf-canary-{uuid.uuid4().hex}"
INBOUND = ["10 mx1.mailchannels.net", "20 mx2.mailchannels.net"]
OLD_MX = "10 mx.old-host.example"
DOWNSTREAM = "mail.acme-backend.example"


@pytest.fixture(scope="module")
def worker(vs_worker: Any, job_sim: str, broker_live: str, intake_live: str, vendor_sync_live: str) -> Any:
    """A real worker pointed at the simulator, the real broker and intake; short backoffs for the fault tests."""
    return vs_worker(
        {
            "VENDOR_SYNC_VENDOR_SIM_URL": job_sim,
            "VENDOR_SYNC_HTTP_ALLOWED_HOSTS": job_sim,
            "VENDOR_SYNC_RDAP_BOOTSTRAP_URL": f"{job_sim}/rdap/bootstrap/dns.json",
            "MSP_SECRETS_BROKER_URL": broker_live,
            "VENDOR_SYNC_RETRY_BASE_S": "0.2",
            "VENDOR_SYNC_RETRY_CAP_S": "1",
            # Every failed attempt must reach the vendor (an open circuit gives attempts back).
            "VENDOR_SYNC_BREAKER_FAILURE_THRESHOLD": "100",
            "VENDOR_SYNC_PROVISIONING_MAX_ATTEMPTS": "4",
        }
    )


# ---- the scene -------------------------------------------------------------------------------------------


@dataclass
class Scene:
    """One client with a MailChannels and a Cloudflare account (keys in the broker), and its domain."""

    client_id: uuid.UUID
    domain: str
    mc_vendor: dict[str, Any]
    mc_account: dict[str, Any]
    cf_account: dict[str, Any]
    intake: str
    broker: str
    sim: str
    auth: Callable[..., dict[str, str]]
    delivered: set[str] = field(default_factory=set)

    def intake_admin(self) -> dict[str, str]:
        return self.auth("admin", "prov-admin", aud=["intake"])


def _reset_vendor_state(sim: str, redis_url: str) -> None:
    import redis

    httpx.post(f"{sim}/_sim/reset", timeout=5).raise_for_status()
    client = redis.Redis.from_url(redis_url)
    for vendor in ("mailchannels", "cloudflare"):
        for key in [*client.scan_iter(f"mspkit:cb:{vendor}:*"), *client.scan_iter(f"mspkit_rl*{vendor}*")]:
            client.delete(key)
    client.close()


def _linked_account(
    vs_api: Any, admin: dict[str, str], auth: Any, broker: str, client_id: uuid.UUID, vendor: dict[str, Any], **key: str
) -> dict[str, Any]:
    account = make_account(vs_api, admin, client_id, vendor["id"])
    credential = httpx.post(
        f"{broker}/v1/credentials",
        json={
            "client_id": str(client_id),
            "vendor_account_id": account["id"],
            "kind": "api_key",
            "owner": "msp",
            "category": vendor["kind"],
            "name": f"{vendor['name']} API key",
            "username": "api",
            **key,
        },
        headers=auth("admin"),
        timeout=30,
    )
    assert credential.status_code == 201, credential.text
    patched = vs_api.patch(
        f"/v1/vendor-accounts/{account['id']}", json={"api_key_credential_id": credential.json()["id"]}, headers=admin
    )
    assert patched.status_code == 200, patched.text
    return dict(patched.json())


def put_zone(sim: str, domain: str, mx: tuple[str, ...] = (OLD_MX,)) -> None:
    """The simulator's Cloudflare holds the domain's zone: an A record and these MX."""
    records: list[dict[str, Any]] = [{"type": "A", "name": domain, "content": "192.0.2.10", "ttl": 300}]
    for entry in mx:
        priority, host = entry.split(" ", 1)
        records.append({"type": "MX", "name": domain, "content": host, "ttl": 300, "priority": int(priority)})
    body = {"zones": [{"name": domain, "records": records}]}
    httpx.put(f"{sim}/_sim/cloudflare/state", json=body, timeout=10).raise_for_status()


def sync_dns(vs_api: Any, hdr: Any, vs_engine: Engine, account_id: str) -> dict[str, Any]:
    response = vs_api.post(f"/v1/vendor-accounts/{account_id}/sync", json={}, headers=hdr("admin"))
    assert response.status_code == 202, response.text
    run = wait_for_run(vs_engine, uuid.UUID(response.json()["sync_run_id"]))
    assert run["status"] == "succeeded", run
    return run


@pytest.fixture
def scene(
    worker: Any,
    vs_api: Any,
    hdr: Any,
    vs_engine: Engine,
    new_client: Any,
    auth: Any,
    broker_live: str,
    intake_live: str,
    job_sim: str,
    stack_env: dict[str, str],
) -> Scene:
    """A fresh client whose Cloudflare account was synced once (so the domain and its MX are known)."""
    _reset_vendor_state(job_sim, stack_env["MSP_REDIS_URL"])
    client_id = new_client()
    admin = hdr("admin")
    domain = f"{unique('p')}.example"
    mc_vendor = make_vendor(vs_api, admin, name=f"MailChannels {unique()}", kind="spam_filter", adapter="mailchannels")
    cf_vendor = make_vendor(vs_api, admin, name=f"Cloudflare {unique()}", kind="dns_host", adapter="cloudflare")
    mc_account = _linked_account(vs_api, admin, auth, broker_live, client_id, mc_vendor, secret=MC_KEY)
    cf_account = _linked_account(vs_api, admin, auth, broker_live, client_id, cf_vendor, secret=CF_KEY)
    put_zone(job_sim, domain)
    sync_dns(vs_api, hdr, vs_engine, cf_account["id"])
    return Scene(client_id, domain, mc_vendor, mc_account, cf_account, intake_live, broker_live, job_sim, auth)


# ---- intake, as a client and as the relay ------------------------------------------------------------------


def submit(scene: Scene, body: dict[str, Any]) -> str:
    """A client_user's request; returns its one task's id."""
    response = httpx.post(
        f"{scene.intake}/v1/requests",
        json=body,
        headers={**scene.auth("client_user", "prov-user", scene.client_id), "Idempotency-Key": uuid.uuid4().hex},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["task_ids"][0])


def spam_request(scene: Scene) -> dict[str, Any]:
    return {"type": "spam_filter_setup", "domain": scene.domain, "downstream_hosts": [DOWNSTREAM]}


def task_view(scene: Scene, task_id: str) -> dict[str, Any]:
    response = httpx.get(f"{scene.intake}/v1/tasks/{task_id}", headers=scene.intake_admin(), timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def decide_all(scene: Scene, task_id: str, decision: str = "approved") -> None:
    """The client_admin decides every approval of the task."""
    boss = scene.auth("client_admin", "prov-boss", scene.client_id)
    for approval in task_view(scene, task_id)["approvals"]:
        response = httpx.post(
            f"{scene.intake}/v1/approvals/{approval['id']}/decision",
            json={"decision": decision},
            headers=boss,
            timeout=10,
        )
        assert response.status_code == 200, response.text


def deliver(scene: Scene, admin_engine: Engine, task_id: str) -> int:
    """Hand the task's new events to vendor_sync as intake's relay does (its route, the outbox's envelope)."""
    from vendor_sync.celery_app import app

    with admin_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT envelope FROM intake.outbox WHERE envelope->>'aggregate_id' = :t"
                " AND type IN ('task.created', 'task.status_changed') ORDER BY id"
            ),
            {"t": task_id},
        ).scalars()
        envelopes = [e for e in rows if e["event_id"] not in scene.delivered]
    for envelope in envelopes:
        app.send_task("vendor_sync.events.task_ready", args=[envelope], queue="vendor_sync")
        scene.delivered.add(envelope["event_id"])
    return len(envelopes)


def run_rows(vs_engine: Engine, task_id: str) -> list[dict[str, Any]]:
    with vs_engine.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM vendor_sync.provisioning_runs WHERE task_id = :t ORDER BY created_at"), {"t": task_id}
        ).mappings()
        return [dict(r) for r in rows]


def wait_runs_finished(vs_engine: Engine, task_id: str, *, count: int = 1, timeout: float = 60) -> list[dict[str, Any]]:
    """Wait until the task has `count` runs and none is waiting, queued or running."""
    deadline = time.monotonic() + timeout
    rows = run_rows(vs_engine, task_id)
    while len(rows) < count or any(r["status"] in ("waiting", "queued", "running") for r in rows):
        if time.monotonic() > deadline:
            pytest.fail(f"provisioning of {task_id} did not finish: {rows}")
        time.sleep(0.1)
        rows = run_rows(vs_engine, task_id)
    return rows


def approved_and_delivered(scene: Scene, admin_engine: Engine, vs_engine: Engine) -> str:
    """A spam-filter request, approved, its events delivered; returns the task id once its run finished."""
    task_id = submit(scene, spam_request(scene))
    assert task_view(scene, task_id)["status"] == "awaiting_approval"
    decide_all(scene, task_id)
    assert deliver(scene, admin_engine, task_id) == 2  # created (awaiting_approval), then changed to ready
    return task_id


def mailchannels_domains(scene: Scene) -> list[dict[str, Any]]:
    state = httpx.get(f"{scene.sim}/_sim/mailchannels/state", timeout=5).json()
    return [d for d in state["domains"] if d["name"] == scene.domain]


def zone_mx(scene: Scene) -> list[str]:
    state = httpx.get(f"{scene.sim}/_sim/cloudflare/state", timeout=5).json()
    zone = next(z for z in state["zones"] if z["name"] == scene.domain)
    return sorted(
        (f"{r['priority']} {r['content'].rstrip('.')}" for r in zone["records"] if r["type"] == "MX"),
        key=lambda v: (int(v.split()[0]), v),
    )


def information_disclosures(scene: Scene, task_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{scene.broker}/v1/disclosures",
        params={"client_id": str(scene.client_id)},
        headers=scene.auth("admin"),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return [d for d in response.json()["items"] if d["kind"] == "information" and d["task_id"] == task_id]


def service_releases(admin_engine: Engine, task_id: str) -> list[dict[str, Any]]:
    """The broker's releases to vendor_sync for the task, oldest first."""
    with admin_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT credential_id, created_at FROM secrets_broker.releases"
                " WHERE task_id = :t AND recipient_type = 'service' ORDER BY created_at"
            ),
            {"t": task_id},
        ).mappings()
        return [dict(row) for row in rows]


def steps_by_name(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in view["steps"]}


def domain_mx(vs_engine: Engine, scene: Scene) -> list[str]:
    with vs_engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT mx FROM vendor_sync.domains WHERE client_id = :c AND name = :n"),
                {"c": scene.client_id, "n": scene.domain},
            ).scalar_one()
        )


def mx_drift(vs_engine: Engine, scene: Scene) -> int:
    return count_rows(
        vs_engine,
        "SELECT count(*) FROM vendor_sync.drift_events WHERE client_id = :c AND field = 'mx'",
        c=scene.client_id,
    )


# ---- the tests ---------------------------------------------------------------------------------------------


def test_an_approved_spam_filter_request_is_provisioned_step_by_step_and_ends_done(
    scene, admin_engine, vs_engine, vs_api, hdr, worker
):
    task_id = approved_and_delivered(scene, admin_engine, vs_engine)
    runs = wait_runs_finished(vs_engine, task_id)
    assert [(r["status"], r["error"], r["type"], r["attempts"]) for r in runs] == [
        ("succeeded", None, "spam_filter_setup", 1)
    ]

    # MailChannels holds the domain with its downstream host; Cloudflare's MX point at MailChannels only.
    [provisioned] = mailchannels_domains(scene)
    assert [a["target"].rstrip(".") for a in provisioned["downstream_addresses"]] == [DOWNSTREAM]
    assert provisioned["key_fingerprint"] == fingerprint(MC_KEY)
    assert zone_mx(scene) == INBOUND

    view = task_view(scene, task_id)
    assert (view["status"], view["assignee"]) == ("done", VS)
    steps = steps_by_name(view)
    assert set(steps) == {"provision_spam_filter_domain", "set_mx_records"}
    assert all(s["status"] == "succeeded" and not s["human"] for s in steps.values())
    assert f"{scene.domain} provisioned at" in steps["provision_spam_filter_domain"]["detail"]
    # The replaced records are kept in the step's detail.
    assert "Replaced: 10 mx.old-host.example" in steps["set_mx_records"]["detail"]

    # One information disclosure, to MailChannels' vendor, for this task.
    [disclosure] = information_disclosures(scene, task_id)
    assert disclosure["vendor_id"] == scene.mc_vendor["id"]
    assert set(disclosure["information_categories"]) == {"domain", "mail_routing"}
    assert disclosure["disclosed_by"] == VS
    # Each account's key released once for the task: MailChannels' first, then Cloudflare's.
    released = [str(r["credential_id"]) for r in service_releases(admin_engine, task_id)]
    assert released == [scene.mc_account["api_key_credential_id"], scene.cf_account["api_key_credential_id"]]

    # The new MX is the domain's last known state: the next sync of the DNS host reports no drift.
    assert domain_mx(vs_engine, scene) == INBOUND
    sync_dns(vs_api, hdr, vs_engine, scene.cf_account["id"])
    assert mx_drift(vs_engine, scene) == 0
    assert domain_mx(vs_engine, scene) == INBOUND

    # The keys went to the simulator and nowhere else of ours.
    log = worker.log()
    assert MC_KEY not in log and CF_KEY not in log
    for table in ("provisioning_runs", "provisioning_steps"):
        assert (
            count_rows(
                vs_engine, f"SELECT count(*) FROM vendor_sync.{table} t WHERE t::text LIKE :k", k=f"%{MC_KEY[:20]}%"
            )
            == 0
        )

    # Delivering every event of the task again (the two seen, and in_progress, done) changes nothing
    # and calls no vendor.
    seen = len(sim_requests(scene.sim))
    scene.delivered.clear()
    assert deliver(scene, admin_engine, task_id) == 4
    time.sleep(2)
    assert len(run_rows(vs_engine, task_id)) == 1
    assert len(sim_requests(scene.sim)) == seen


def test_the_mx_step_failing_three_times_then_succeeding_ends_done_with_no_duplicate_domain(
    scene, admin_engine, vs_engine
):
    t0 = time.time()
    add_fault(scene.sim, mode="error", status=500, path_prefix="/cloudflare/client/v4/zones", count=3)
    task_id = approved_and_delivered(scene, admin_engine, vs_engine)
    [run] = wait_runs_finished(vs_engine, task_id)
    assert (run["status"], run["error"], run["attempts"]) == ("succeeded", None, 4)
    assert task_view(scene, task_id)["status"] == "done"
    assert len(mailchannels_domains(scene)) == 1
    posts = [r for r in sim_requests(scene.sim, "/mailchannels/inbound/v1/domains") if r["t"] >= t0]
    # Provisioned once: the retries re-ran only the MX step.
    assert [r["method"] for r in posts if r["method"] == "POST"] == ["POST"]
    assert zone_mx(scene) == INBOUND
    assert len(information_disclosures(scene, task_id)) == 1


def test_the_dns_hosts_key_is_released_while_mailchannels_answers_and_after_the_disclosure(
    scene, admin_engine, vs_engine
):
    # MailChannels takes 2 s to answer: the Cloudflare key's release does not wait for it.
    add_fault(scene.sim, mode="delay", seconds=2, path_prefix="/mailchannels/inbound/v1/domains", count=1)
    t0 = time.time()
    task_id = approved_and_delivered(scene, admin_engine, vs_engine)
    [run] = wait_runs_finished(vs_engine, task_id)
    assert run["status"] == "succeeded"
    [provision] = [r for r in sim_requests(scene.sim, "/mailchannels/inbound/v1/domains") if r["t"] >= t0]
    mc_release, cf_release = service_releases(admin_engine, task_id)
    assert str(cf_release["credential_id"]) == scene.cf_account["api_key_credential_id"]
    [disclosure] = information_disclosures(scene, task_id)
    disclosed_at = datetime.fromisoformat(disclosure["created_at"]).timestamp()
    # Asked for once MailChannels' gates were passed (the disclosure ledgered, its key in hand) ...
    assert disclosed_at <= mc_release["created_at"].timestamp() <= cf_release["created_at"].timestamp()
    # ... and released before MailChannels answered (its request arrived, then 2 s of delay).
    assert cf_release["created_at"].timestamp() < provision["t"] + 2
    [first_cloudflare, *_] = [r for r in sim_requests(scene.sim, "/cloudflare/") if r["t"] >= t0]
    assert first_cloudflare["t"] >= provision["t"] + 2


def test_a_domain_owned_by_another_mailchannels_customer_puts_the_task_on_hold_with_the_error(
    scene, admin_engine, vs_engine
):
    other = {"name": scene.domain, "downstream_addresses": [], "key_fingerprint": fingerprint("someone-elses-key")}
    httpx.put(f"{scene.sim}/_sim/mailchannels/state", json={"domains": [other]}, timeout=5).raise_for_status()
    t0 = time.time()
    task_id = approved_and_delivered(scene, admin_engine, vs_engine)
    [run] = wait_runs_finished(vs_engine, task_id)
    assert run["status"] == "failed" and run["error"].startswith("provision_spam_filter_domain:")

    view = task_view(scene, task_id)
    assert (view["status"], view["assignee"]) == ("on_hold", None)
    steps = steps_by_name(view)
    assert steps["provision_spam_filter_domain"]["status"] == "failed"
    assert "different MailChannels customer" in steps["provision_spam_filter_domain"]["detail"]
    # The MX step never ran: still planned, and nothing was written at Cloudflare.
    assert steps["set_mx_records"]["status"] == "pending"
    assert zone_mx(scene) == [OLD_MX]
    assert not [r for r in sim_requests(scene.sim, "/cloudflare/") if r["t"] >= t0]


def test_a_retry_after_on_hold_runs_only_the_unfinished_steps(scene, admin_engine, vs_engine):
    # MailChannels answers 400 (a permanent refusal) once: the first run fails the step.
    add_fault(scene.sim, mode="error", status=400, path_prefix="/mailchannels/inbound/v1/domains", count=1)
    task_id = approved_and_delivered(scene, admin_engine, vs_engine)
    wait_runs_finished(vs_engine, task_id)
    assert task_view(scene, task_id)["status"] == "on_hold"

    technician = scene.auth("admin", "prov-admin", aud=["intake"])
    retried = httpx.post(f"{scene.intake}/v1/tasks/{task_id}/provisioning/retry", headers=technician, timeout=10)
    assert retried.status_code == 202, retried.text
    assert deliver(scene, admin_engine, task_id) >= 1
    runs = wait_runs_finished(vs_engine, task_id, count=2)
    assert [r["status"] for r in runs] == ["failed", "succeeded"]
    view = task_view(scene, task_id)
    assert view["status"] == "done"
    assert {s["name"]: s["status"] for s in view["steps"]} == {
        "provision_spam_filter_domain": "succeeded",
        "set_mx_records": "succeeded",
    }
    assert len(mailchannels_domains(scene)) == 1 and zone_mx(scene) == INBOUND


def test_a_rejected_approval_provisions_nothing_and_calls_no_vendor(scene, admin_engine, vs_engine):
    t0 = time.time()
    task_id = submit(scene, spam_request(scene))
    decide_all(scene, task_id, "rejected")
    assert deliver(scene, admin_engine, task_id) == 2
    time.sleep(3)
    assert task_view(scene, task_id)["status"] == "rejected"
    # The task is remembered (its request id), never queued.
    assert [r["status"] for r in run_rows(vs_engine, task_id)] == ["waiting"]
    assert not [r for r in sim_requests(scene.sim) if r["t"] >= t0]
    assert information_disclosures(scene, task_id) == []


def _child_talking_to(worker: Any, port: int) -> int | None:
    for pid in worker.children():
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        if any(c.raddr and c.raddr.port == port for c in conns):
            return pid
    return None


def test_a_worker_killed_mid_job_finishes_after_restart_with_nothing_done_twice(scene, admin_engine, vs_engine, worker):
    t0 = time.time()
    # The MX step's first read hangs: long enough to find the pool child inside the job and kill it.
    add_fault(scene.sim, mode="delay", seconds=8, path_prefix="/cloudflare/client/v4/zones", count=1)
    task_id = approved_and_delivered(scene, admin_engine, vs_engine)
    deadline = time.monotonic() + 30
    while not [r for r in sim_requests(scene.sim, "/cloudflare/client/v4/zones") if r["t"] >= t0]:
        assert time.monotonic() < deadline, "the job never reached the MX step"
        time.sleep(0.05)
    victim = _child_talking_to(worker, int(scene.sim.rsplit(":", 1)[1]))
    assert victim is not None, "no pool child is talking to the simulator"
    os.kill(victim, signal.SIGKILL)

    [run] = wait_runs_finished(vs_engine, task_id, timeout=120)
    assert (run["status"], run["attempts"]) == ("succeeded", 2)
    view = task_view(scene, task_id)
    assert view["status"] == "done"
    assert [s["status"] for s in view["steps"]] == ["succeeded", "succeeded"]
    posts = [r for r in sim_requests(scene.sim, "/mailchannels/inbound/v1/domains") if r["t"] >= t0]
    assert [r["method"] for r in posts].count("POST") == 1
    assert len(mailchannels_domains(scene)) == 1 and zone_mx(scene) == INBOUND
    writes = [r for r in sim_requests(scene.sim, "/cloudflare/") if r["t"] >= t0 and r["method"] in ("POST", "DELETE")]
    assert sorted(r["method"] for r in writes) == ["DELETE", "POST", "POST"]
    assert len(information_disclosures(scene, task_id)) == 1


def test_an_isp_order_gets_its_checklist_and_stays_ready_for_a_technician(scene, admin_engine, vs_engine):
    t0 = time.time()
    body = {
        "type": "isp_account_setup",
        "isp_name": f"Fiber {unique()}",
        "service_address": {
            "line1": "1 Main Street",
            "city": "Springfield",
            "region": "IL",
            "postal_code": "62701",
            "country": "US",
        },
        "service_tier": "Business 500",
        "site_contact": {"name": "Dana Office", "email": "dana@acme.example", "phone": "+1 217 555 0100"},
    }
    task_id = submit(scene, body)
    decide_all(scene, task_id)
    deliver(scene, admin_engine, task_id)
    [run] = wait_runs_finished(vs_engine, task_id)
    assert (run["status"], run["claimed_at"]) == ("succeeded", None)
    view = task_view(scene, task_id)
    assert (view["status"], view["assignee"]) == ("ready", None)
    assert [(s["name"], s["status"], s["human"]) for s in view["steps"]] == [
        ("isp_place_order", "pending", True),
        ("isp_give_service_address", "pending", True),
        ("isp_arrange_site_visit", "pending", True),
        ("isp_record_account", "pending", True),
    ]
    assert "Business 500" in view["steps"][0]["detail"]
    assert not [r for r in sim_requests(scene.sim) if r["t"] >= t0]


def test_a_domain_already_ours_at_mailchannels_counts_as_provisioned_and_its_downstream_is_set(
    scene, admin_engine, vs_engine
):
    ours = {
        "name": scene.domain,
        "downstream_addresses": [{"priority": 10, "weight": 10, "port": 25, "target": "old-backend.example."}],
        "key_fingerprint": fingerprint(MC_KEY),
    }
    httpx.put(f"{scene.sim}/_sim/mailchannels/state", json={"domains": [ours]}, timeout=5).raise_for_status()
    task_id = approved_and_delivered(scene, admin_engine, vs_engine)
    [run] = wait_runs_finished(vs_engine, task_id)
    assert run["status"] == "succeeded"
    [domain] = mailchannels_domains(scene)
    assert [a["target"].rstrip(".") for a in domain["downstream_addresses"]] == [DOWNSTREAM]
    detail = steps_by_name(task_view(scene, task_id))["provision_spam_filter_domain"]["detail"]
    assert "was already provisioned" in detail and "Replaced downstream hosts: old-backend.example" in detail
    assert task_view(scene, task_id)["status"] == "done"


@pytest.mark.parametrize(
    ("tamper", "rule"),
    [
        # The approval ran out before vendor_sync got to it: the broker refuses the disclosure.
        ("UPDATE intake.approvals SET expires_at = now() - interval '1 minute' WHERE task_id = :t", "approval_expired"),
        # No approval names the spam filter's vendor: nothing to ledger it on, so vendor_sync asks nobody.
        ("UPDATE intake.approvals SET recipient_vendor_id = gen_random_uuid() WHERE task_id = :t", "No approval"),
    ],
)
def test_a_refused_disclosure_fails_the_step_and_sends_nothing(scene, admin_engine, vs_engine, tamper, rule):
    task_id = submit(scene, spam_request(scene))
    decide_all(scene, task_id)
    with admin_engine.begin() as conn:
        conn.execute(text(tamper), {"t": task_id})
    t0 = time.time()
    assert deliver(scene, admin_engine, task_id) == 2
    [run] = wait_runs_finished(vs_engine, task_id)
    assert run["status"] == "failed"
    view = task_view(scene, task_id)
    assert (view["status"], view["assignee"]) == ("on_hold", None)
    step = steps_by_name(view)["provision_spam_filter_domain"]
    assert step["status"] == "failed" and rule in step["detail"] and "nothing was sent" in step["detail"]
    # Nothing reached any vendor, the ledger holds nothing for the task, and no key was released for it.
    assert not [r for r in sim_requests(scene.sim) if r["t"] >= t0]
    assert information_disclosures(scene, task_id) == []
    assert service_releases(admin_engine, task_id) == []


def test_a_step_that_keeps_failing_is_dead_lettered_after_its_attempts_and_the_task_put_on_hold(
    scene, admin_engine, vs_engine
):
    add_fault(scene.sim, mode="error", status=500, path_prefix="/cloudflare/client/v4/zones")
    try:
        task_id = approved_and_delivered(scene, admin_engine, vs_engine)
        [run] = wait_runs_finished(vs_engine, task_id)
    finally:
        httpx.delete(f"{scene.sim}/_sim/faults", timeout=5).raise_for_status()
    assert (run["status"], run["error"], run["attempts"]) == ("failed", "http_500", 4)
    assert (
        count_rows(
            vs_engine,
            "SELECT count(*) FROM vendor_sync.dead_letters WHERE job_key = :k",
            k=f"vendor_sync.provisioning.run:{run['id']}",
        )
        == 1
    )
    view = task_view(scene, task_id)
    assert (view["status"], view["assignee"]) == ("on_hold", None)
    steps = steps_by_name(view)
    assert steps["provision_spam_filter_domain"]["status"] == "succeeded"
    assert steps["set_mx_records"]["status"] == "failed"
    assert "gave up after 4 attempts (http_500)" in steps["set_mx_records"]["detail"]


# ---- vendor contact updates --------------------------------------------------------------------------------


def _person(first: str, last: str, email: str) -> dict[str, str]:
    return {
        "name_first": first,
        "name_last": last,
        "email": email,
        "phone": "+1.2175550100",
        "address1": "1 Main Street",
        "city": "Springfield",
        "state": "IL",
        "postal_code": "62701",
        "country": "US",
    }


def test_a_contact_update_at_godaddy_changes_the_registrar_and_the_registry(
    scene, admin_engine, vs_engine, vs_api, hdr
):
    admin = hdr("admin")
    vendor = make_vendor(vs_api, admin, name=f"GoDaddy {unique()}", kind="registrar", adapter="godaddy")
    account = _linked_account(vs_api, admin, scene.auth, scene.broker, scene.client_id, vendor, secret="gd-secret")
    ann = vs_api.post(
        f"/v1/vendor-accounts/{account['id']}/contacts",
        json={"name": "Ann Admin", "role": "admin", "email": "ann@acme.example"},
        headers=admin,
    ).json()
    people = {
        "registrant": _person("Reg", "Istrant", "reg@acme.example"),
        "admin": _person("Ann", "Admin", "ann@acme.example"),
        "tech": _person("Old", "Tech", "old-tech@acme.example"),
    }
    body = {"domains": [{"name": scene.domain, "nameservers": ["ns1.example.net"], "contacts": people, "locked": True}]}
    httpx.put(f"{scene.sim}/_sim/godaddy/state", json=body, timeout=5).raise_for_status()
    response = vs_api.post(f"/v1/vendor-accounts/{account['id']}/sync", json={}, headers=admin)
    assert wait_for_run(vs_engine, uuid.UUID(response.json()["sync_run_id"]))["status"] == "succeeded"

    task_id = submit(
        scene,
        {
            "type": "vendor_contact_update",
            "vendor_account_id": account["id"],
            "contacts": {
                "add": [{"name": "Tia Tech", "role": "tech", "email": "tia@acme.example"}],
                "update": [{"id": ann["id"], "email": "ann.new@acme.example"}],
                "remove": [],
            },
        },
    )
    decide_all(scene, task_id)
    deliver(scene, admin_engine, task_id)
    [run] = wait_runs_finished(vs_engine, task_id)
    assert run["status"] == "succeeded", run

    state = httpx.get(f"{scene.sim}/_sim/godaddy/state", timeout=5).json()
    contacts = next(d for d in state["domains"] if d["name"] == scene.domain)["contacts"]
    assert (contacts["tech"]["name_first"], contacts["tech"]["email"]) == ("Tia", "tia@acme.example")
    assert contacts["admin"]["email"] == "ann.new@acme.example"
    assert contacts["registrant"]["email"] == "reg@acme.example"  # not asked for: left as it was

    registry = vs_api.get(f"/v1/vendor-accounts/{account['id']}", headers=admin).json()["contacts"]
    assert sorted((c["name"], c["email"]) for c in registry) == [
        ("Ann Admin", "ann.new@acme.example"),
        ("Tia Tech", "tia@acme.example"),
    ]
    view = task_view(scene, task_id)
    assert view["status"] == "done"
    assert {s["name"]: s["status"] for s in view["steps"]} == {
        "update_vendor_contacts": "succeeded",
        "update_registry_contacts": "succeeded",
    }
    [disclosure] = information_disclosures(scene, task_id)
    assert (disclosure["vendor_id"], disclosure["information_categories"]) == (vendor["id"], ["contact_info"])
    # The registry's writes are audited as vendor_sync's.
    assert (
        count_rows(
            vs_engine,
            "SELECT count(*) FROM vendor_sync.audit_events WHERE actor = 'svc:vendor_sync' AND client_id = :c",
            c=scene.client_id,
        )
        == 2
    )


def test_a_contact_update_at_a_vendor_without_a_contacts_adapter_is_one_human_step(
    scene, admin_engine, vs_engine, vs_api, hdr
):
    admin = hdr("admin")
    vendor = make_vendor(vs_api, admin, name=f"Fiber {unique()}", kind="isp")
    account = make_account(vs_api, admin, scene.client_id, vendor["id"], account_number="ISP-42")
    t0 = time.time()
    task_id = submit(
        scene,
        {
            "type": "vendor_contact_update",
            "vendor_account_id": account["id"],
            "contacts": {"add": [{"name": "Nia Noc", "role": "noc", "email": "noc@acme.example"}]},
        },
    )
    decide_all(scene, task_id)
    deliver(scene, admin_engine, task_id)
    [run] = wait_runs_finished(vs_engine, task_id)
    assert (run["status"], run["claimed_at"]) == ("succeeded", None)
    view = task_view(scene, task_id)
    assert (view["status"], view["assignee"]) == ("ready", None)
    [step] = view["steps"]
    assert (step["name"], step["status"], step["human"]) == ("change_contacts_by_hand", "pending", True)
    assert step["detail"] == (
        f"At {vendor['name']} (account ISP-42): Add Nia Noc (noc, noc@acme.example)."
        " Then make the same changes in the registry."
    )
    assert not [r for r in sim_requests(scene.sim) if r["t"] >= t0]


def test_a_domain_not_synced_yet_is_found_at_the_tasks_dns_host_and_its_mx_recorded(
    scene, admin_engine, vs_engine, vs_api, hdr
):
    # A second zone at the same Cloudflare account, created after the sync: vendor_sync has no row for it.
    fresh = f"{unique('n')}.example"
    state = httpx.get(f"{scene.sim}/_sim/cloudflare/state", timeout=5).json()
    zones = [
        {"name": z["name"], "records": [{k: v for k, v in r.items() if k != "id"} for r in z["records"]]}
        for z in state["zones"]
    ]
    zones.append(
        {
            "name": fresh,
            "records": [{"type": "MX", "name": fresh, "content": "mx.old.example", "ttl": 300, "priority": 5}],
        }
    )
    httpx.put(f"{scene.sim}/_sim/cloudflare/state", json={"zones": zones}, timeout=5).raise_for_status()
    task_id = submit(scene, {"type": "spam_filter_setup", "domain": fresh, "downstream_hosts": [DOWNSTREAM]})
    decide_all(scene, task_id)
    deliver(scene, admin_engine, task_id)
    [run] = wait_runs_finished(vs_engine, task_id)
    assert run["status"] == "succeeded", run
    assert task_view(scene, task_id)["status"] == "done"
    with vs_engine.connect() as conn:
        row = conn.execute(
            text("SELECT dns_host_account_id, mx FROM vendor_sync.domains WHERE client_id = :c AND name = :n"),
            {"c": scene.client_id, "n": fresh},
        ).one()
    assert (str(row.dns_host_account_id), row.mx) == (scene.cf_account["id"], INBOUND)
    # The next sync of the account finds the zone as provisioning left it: no MX drift.
    sync_dns(vs_api, hdr, vs_engine, scene.cf_account["id"])
    assert mx_drift(vs_engine, scene) == 0
