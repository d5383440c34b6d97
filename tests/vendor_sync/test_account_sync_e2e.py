"""Account syncs end to end: the API queues a run, a real Celery worker asks the real broker for the
account's key (released by OpenBao), reads the simulator's Cloudflare, plans and applies.

Real: PostgreSQL, Redis, the worker subprocess, intake and the broker over HTTP, OpenBao, the
simulator over HTTP. The adapter itself is proven on recorded fixtures (test_adapter_cloudflare.py);
here the simulator stands in for the vendor.
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "secrets_broker"))

import broker_fixtures
from fixtures_registry import (
    count_rows,
    make_account,
    make_vendor,
    run_row,
    sim_requests,
    unique,
    wait_for_run,
)

pytest_plugins = ["fixtures_registry"]
broker_app = broker_fixtures.broker_app
broker_live = broker_fixtures.broker_live

pytestmark = pytest.mark.slow

# The key the simulator is given; the canary sweep and the assertions below look for it everywhere.
API_TOKEN = f"cf-canary-{uuid.uuid4().hex}"


def zone(name: str, records: int, *, mx: tuple[str, ...] = ("10 mx.old-host.example",)) -> dict[str, Any]:
    """A zone with `records` A records plus its MX."""
    items = [
        {"type": "A", "name": f"h{i}.{name}", "content": f"192.0.2.{i % 250 + 1}", "ttl": 300} for i in range(records)
    ]
    for entry in mx:
        priority, host = entry.split(" ", 1)
        items.append({"type": "MX", "name": name, "content": host, "ttl": 300, "priority": int(priority)})
    return {"name": name, "records": items}


def put_state(sim_url: str, zones: list[dict[str, Any]]) -> None:
    """Replace the simulator's Cloudflare state."""
    httpx.put(f"{sim_url}/_sim/cloudflare/state", json={"zones": zones}, timeout=10).raise_for_status()


@pytest.fixture(scope="module")
def worker(vs_worker: Any, job_sim: str, stack_env: dict[str, str], broker_live: str) -> Any:
    """A real worker pointed at the simulator for every vendor, with the real broker and OpenBao."""
    return vs_worker(
        {
            "VENDOR_SYNC_VENDOR_SIM_URL": job_sim,
            "VENDOR_SYNC_HTTP_ALLOWED_HOSTS": job_sim,
            "VENDOR_SYNC_RDAP_BOOTSTRAP_URL": f"{job_sim}/rdap/bootstrap/dns.json",
            "MSP_SECRETS_BROKER_URL": broker_live,
        }
    )


def keyed_account(
    ctx: dict[str, Any], *, vendor: str, kind: str, adapter: str, username: str, label: str
) -> dict[str, Any]:
    """A new client's account at a new vendor whose API key is a broker credential of that account."""
    vs_api, admin = ctx["vs_api"], ctx["hdr"]("admin")
    httpx.post(f"{ctx['job_sim']}/_sim/reset", timeout=5).raise_for_status()
    client_id = ctx["new_client"]()
    made = make_vendor(vs_api, admin, name=f"{vendor} {unique()}", kind=kind, adapter=adapter)
    created = make_account(vs_api, admin, client_id, made["id"])
    credential = httpx.post(
        f"{ctx['broker_live']}/v1/credentials",
        json={
            "client_id": str(client_id),
            "vendor_account_id": created["id"],
            "kind": "api_key",
            "owner": "msp",
            "category": kind,
            "name": label,
            "username": username,
            "secret": API_TOKEN,
        },
        headers=ctx["auth"]("admin"),
        timeout=30,
    )
    assert credential.status_code == 201, credential.text
    patched = vs_api.patch(
        f"/v1/vendor-accounts/{created['id']}",
        json={"api_key_credential_id": credential.json()["id"]},
        headers=admin,
    )
    assert patched.status_code == 200, patched.text
    return {**patched.json(), "client_id": client_id}


@pytest.fixture
def world(
    vs_api: Any, hdr: Any, new_client: Any, auth: Any, broker_live: str, vendor_sync_live: str, job_sim: str
) -> dict[str, Any]:
    """What keyed_account needs: the API, tokens, intake's clients, the broker and the simulator."""
    return {
        "vs_api": vs_api,
        "hdr": hdr,
        "new_client": new_client,
        "auth": auth,
        "broker_live": broker_live,
        "job_sim": job_sim,
    }


@pytest.fixture
def account(world: dict[str, Any]) -> dict[str, Any]:
    """A client's Cloudflare account whose API token is a broker credential of that account."""
    return keyed_account(
        world, vendor="Cloudflare", kind="dns_host", adapter="cloudflare", username="api", label="Cloudflare API token"
    )


def sync(vs_api: Any, hdr: Any, account_id: str, **options: bool) -> uuid.UUID:
    response = vs_api.post(f"/v1/vendor-accounts/{account_id}/sync", json=options, headers=hdr("admin"))
    assert response.status_code == 202, response.text
    return uuid.UUID(response.json()["sync_run_id"])


def run_view(vs_api: Any, hdr: Any, run_id: uuid.UUID) -> dict[str, Any]:
    response = vs_api.get(f"/v1/sync-runs/{run_id}", headers=hdr("admin"))
    assert response.status_code == 200, response.text
    return dict(response.json())


def domains_of(vs_api: Any, hdr: Any, client_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    response = vs_api.get(f"/v1/clients/{client_id}/domains?limit=200", headers=hdr("admin"))
    assert response.status_code == 200, response.text
    return {d["name"]: d for d in response.json()["items"]}


def test_a_sync_fills_the_registry_and_a_second_changes_nothing(worker, vs_api, hdr, vs_engine, account, job_sim):
    put_state(job_sim, [zone("alpha.example", 3), zone("beta.example", 1)])
    first = sync(vs_api, hdr, account["id"])
    wait_for_run(vs_engine, first)
    view = run_view(vs_api, hdr, first)
    assert view["status"] == "succeeded", view
    # Two zones, 3 + 1 A records and one MX each.
    assert view["plan"] == {"create": 2 + 4 + 2, "update": 0, "delete": 0}
    assert view["created"] == 8 and view["vendor_account_id"] == account["id"]
    domains = domains_of(vs_api, hdr, account["client_id"])
    assert set(domains) == {"alpha.example", "beta.example"}
    alpha = domains["alpha.example"]
    assert alpha["dns_host_account_id"] == account["id"] and alpha["mx"] == ["10 mx.old-host.example"]
    records = vs_api.get(f"/v1/domains/{alpha['id']}/records", headers=hdr("admin")).json()["items"]
    assert {(r["type"], r["name"], r["content"]) for r in records} == {
        ("A", "h0.alpha.example", "192.0.2.1"),
        ("A", "h1.alpha.example", "192.0.2.2"),
        ("A", "h2.alpha.example", "192.0.2.3"),
        ("MX", "alpha.example", "mx.old-host.example"),
    }
    second = sync(vs_api, hdr, account["id"])
    wait_for_run(vs_engine, second)
    again = run_view(vs_api, hdr, second)
    assert again["status"] == "succeeded" and again["plan"] == {"create": 0, "update": 0, "delete": 0}
    assert again["changes"] == []
    # The key went to the simulator as a bearer token and nowhere else: no row or log of ours holds it.
    assert (
        count_rows(
            vs_engine, "SELECT count(*) FROM vendor_sync.sync_runs WHERE changes::text LIKE :k", k=f"%{API_TOKEN}%"
        )
        == 0
    )
    assert API_TOKEN not in worker.log()
    assert any(r["path"].startswith("/cloudflare/client/v4/zones") for r in sim_requests(job_sim))


def test_a_dry_run_shows_the_plan_and_applies_nothing(worker, vs_api, hdr, vs_engine, account, job_sim):
    put_state(job_sim, [zone("gamma.example", 2)])
    run_id = sync(vs_api, hdr, account["id"], dry_run=True)
    wait_for_run(vs_engine, run_id)
    view = run_view(vs_api, hdr, run_id)
    assert view["status"] == "succeeded" and view["dry_run"] is True
    assert view["plan"] == {"create": 4, "update": 0, "delete": 0}
    assert view["created"] == 0
    assert {(c["action"], c["object"], c["name"]) for c in view["changes"]} >= {("create", "zone", "gamma.example")}
    assert domains_of(vs_api, hdr, account["client_id"]) == {}


def test_an_empty_answer_is_refused_by_the_delete_threshold_until_forced(
    worker, vs_api, hdr, vs_engine, account, job_sim
):
    put_state(job_sim, [zone("delta.example", 20)])
    first = sync(vs_api, hdr, account["id"])
    assert wait_for_run(vs_engine, first)["status"] == "succeeded"
    put_state(job_sim, [])
    refused = sync(vs_api, hdr, account["id"])
    wait_for_run(vs_engine, refused)
    view = run_view(vs_api, hdr, refused)
    assert (view["status"], view["error"]) == ("failed", "delete_threshold")
    assert view["plan"] == {"create": 0, "update": 0, "delete": 22}
    # Nothing was deleted or unlinked.
    delta = domains_of(vs_api, hdr, account["client_id"])["delta.example"]
    assert delta["dns_host_account_id"] == account["id"]
    assert (
        count_rows(vs_engine, "SELECT count(*) FROM vendor_sync.dns_records WHERE domain_id = :d", d=delta["id"]) == 21
    )
    forced = sync(vs_api, hdr, account["id"], force=True)
    wait_for_run(vs_engine, forced)
    assert run_row(vs_engine, forced)["status"] == "succeeded"
    kept = domains_of(vs_api, hdr, account["client_id"])["delta.example"]
    # Unlinked, not deleted: the domain row stays with the client.
    assert kept["id"] == delta["id"] and kept["dns_host_account_id"] is None
    assert (
        count_rows(vs_engine, "SELECT count(*) FROM vendor_sync.dns_records WHERE domain_id = :d", d=delta["id"]) == 0
    )


def test_an_mx_change_at_the_host_is_drift(worker, vs_api, hdr, vs_engine, account, job_sim):
    put_state(job_sim, [zone("epsilon.example", 1)])
    assert wait_for_run(vs_engine, sync(vs_api, hdr, account["id"]))["status"] == "succeeded"
    put_state(job_sim, [zone("epsilon.example", 1, mx=("10 mx1.new-host.example", "20 mx2.new-host.example"))])
    assert wait_for_run(vs_engine, sync(vs_api, hdr, account["id"]))["status"] == "succeeded"
    domain = domains_of(vs_api, hdr, account["client_id"])["epsilon.example"]
    assert domain["mx"] == ["10 mx1.new-host.example", "20 mx2.new-host.example"]
    events = vs_api.get(f"/v1/drift-events?domain_id={domain['id']}", headers=hdr("admin")).json()["items"]
    assert [(e["field"], e["old"], e["new"]) for e in events] == [
        ("mx", ["10 mx.old-host.example"], ["10 mx1.new-host.example", "20 mx2.new-host.example"])
    ]


def test_an_archived_account_is_not_synced(vs_api, hdr, vs_engine, account):
    archived = vs_api.post(f"/v1/vendor-accounts/{account['id']}/archive", headers=hdr("admin"))
    assert archived.status_code == 200, archived.text
    before = count_rows(
        vs_engine, "SELECT count(*) FROM vendor_sync.sync_runs WHERE vendor_account_id = :a", a=account["id"]
    )
    refused = vs_api.post(f"/v1/vendor-accounts/{account['id']}/sync", json={}, headers=hdr("admin"))
    assert refused.status_code == 409 and refused.json()["error"] == "conflict"
    after = count_rows(
        vs_engine, "SELECT count(*) FROM vendor_sync.sync_runs WHERE vendor_account_id = :a", a=account["id"]
    )
    assert before == after == 0


@pytest.fixture
def registrar_account(world: dict[str, Any]) -> dict[str, Any]:
    """A client's GoDaddy account whose key pair is a broker credential (username: key, secret: secret)."""
    return keyed_account(
        world, vendor="GoDaddy", kind="registrar", adapter="godaddy", username="gd-key", label="GoDaddy API key"
    )


def in_days(days: int) -> datetime:
    """A whole second `days` from now (the same value in both states of a test)."""
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)


def registrar_domain(name: str, *, locked: bool, expires: datetime) -> dict[str, Any]:
    """A GoDaddy domain as `PUT /_sim/godaddy/state` takes it."""
    return {
        "name": name,
        "nameservers": ["ns1.registrar.example", "ns2.registrar.example"],
        "contacts": {"registrant": {"email": "owner@client.example"}},
        "locked": locked,
        "expires_at": expires.isoformat().replace("+00:00", "Z"),
    }


def put_registrar_state(sim_url: str, domains: list[dict[str, Any]]) -> None:
    """Replace the simulator's GoDaddy state."""
    httpx.put(f"{sim_url}/_sim/godaddy/state", json={"domains": domains}, timeout=10).raise_for_status()


def test_a_registrar_sync_links_domains_and_a_lock_change_or_near_expiry_is_drift(
    worker, vs_api, hdr, vs_engine, registrar_account, job_sim
):
    account_id = registrar_account["id"]
    far, near = in_days(200), in_days(10)
    put_registrar_state(
        job_sim,
        [
            registrar_domain("kappa.example", locked=True, expires=far),
            registrar_domain("lambda.example", locked=True, expires=near),
        ],
    )
    first = sync(vs_api, hdr, account_id)
    first_row = wait_for_run(vs_engine, first)
    assert first_row["status"] == "succeeded", (first_row["error"], worker.log()[-2000:])
    assert run_view(vs_api, hdr, first)["plan"] == {"create": 2, "update": 0, "delete": 0}
    domains = domains_of(vs_api, hdr, registrar_account["client_id"])
    assert {n: (d["registrar_account_id"], d["transfer_lock"]) for n, d in domains.items()} == {
        "kappa.example": (account_id, True),
        "lambda.example": (account_id, True),
    }
    # The domain expiring in 10 days was warned once; the one in 200 days was not.
    warned = vs_api.get("/v1/drift-events?kind=expiry_warning&limit=200", headers=hdr("admin")).json()["items"]
    assert [e["domain_id"] for e in warned if e["domain_id"] in {d["id"] for d in domains.values()}] == [
        domains["lambda.example"]["id"]
    ]

    put_registrar_state(
        job_sim,
        [
            registrar_domain("kappa.example", locked=False, expires=far),
            registrar_domain("lambda.example", locked=True, expires=near),
        ],
    )
    second = sync(vs_api, hdr, account_id)
    assert wait_for_run(vs_engine, second)["status"] == "succeeded"
    view = run_view(vs_api, hdr, second)
    assert view["plan"] == {"create": 0, "update": 1, "delete": 0}
    assert [
        (c["action"], c["name"], c["before"]["transfer_lock"], c["after"]["transfer_lock"]) for c in view["changes"]
    ] == [("update", "kappa.example", True, False)]
    kappa = domains["kappa.example"]["id"]
    events = vs_api.get(f"/v1/drift-events?domain_id={kappa}", headers=hdr("admin")).json()["items"]
    assert [(e["field"], e["old"], e["new"]) for e in events] == [("transfer_lock", True, False)]
    # The same expiry seen again is not warned twice.
    lambda_events = vs_api.get(
        f"/v1/drift-events?domain_id={domains['lambda.example']['id']}", headers=hdr("admin")
    ).json()["items"]
    assert [e["kind"] for e in lambda_events] == ["expiry_warning"]
    assert API_TOKEN not in worker.log()


def test_an_account_without_a_key_fails_its_sync_without_calling_the_vendor(
    worker, vs_api, hdr, vs_engine, new_client, job_sim
):
    httpx.post(f"{job_sim}/_sim/reset", timeout=5).raise_for_status()
    put_state(job_sim, [zone("mu.example", 1)])
    admin = hdr("admin")
    vendor = make_vendor(vs_api, admin, name=f"Cloudflare {unique()}", kind="dns_host", adapter="cloudflare")
    keyless = make_account(vs_api, admin, new_client(), vendor["id"])
    run_id = sync(vs_api, hdr, keyless["id"])
    row = wait_for_run(vs_engine, run_id)
    assert (row["status"], row["error"], row["plan"]) == ("failed", "no_api_key", None)
    assert [r for r in sim_requests(job_sim) if r["path"].startswith("/cloudflare/")] == []
    assert (
        count_rows(
            vs_engine, "SELECT count(*) FROM vendor_sync.domains WHERE dns_host_account_id = :a", a=keyless["id"]
        )
        == 0
    )
