"""Domain API: add with IDNA normalisation, read with tenancy, refresh (202 + job published), runs, drift."""

from __future__ import annotations

import base64
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
pytest.register_assert_rewrite("fixtures_registry")
from fixtures_registry import insert_domain, make_domain, unique  # noqa: E402

pytest_plugins = ["fixtures_registry"]

DOMAIN_KEYS = {
    "id",
    "client_id",
    "name",
    "unicode_name",
    "registrar",
    "registrar_iana_id",
    "created_at",
    "expires_at",
    "last_changed_at",
    "statuses",
    "nameservers",
    "dnssec",
    "abuse_contact",
    "last_checked_at",
    "dns_host_account_id",
    "registrar_account_id",
    "mx",
    "transfer_lock",
}


@pytest.mark.parametrize(
    ("given", "a_label", "unicode_name"),
    [
        ("Example.COM", "example.com", "example.com"),
        ("example.com.", "example.com", "example.com"),
        ("Bücher.example", "xn--bcher-kva.example", "bücher.example"),
        ("xn--fo-5ja.example", "xn--fo-5ja.example", "fóo.example"),
        ("MÜNCHEN.de", "xn--mnchen-3ya.de", "münchen.de"),
    ],
)
def test_domains_are_stored_as_lower_case_a_labels(vs_api, hdr, given, a_label, unicode_name, new_client):
    client_id = new_client()
    domain = make_domain(vs_api, hdr("technician"), client_id, given)
    assert set(domain) == DOMAIN_KEYS
    assert (domain["name"], domain["unicode_name"], domain["client_id"]) == (a_label, unicode_name, str(client_id))
    assert domain["statuses"] == [] and domain["nameservers"] == [] and domain["last_checked_at"] is None
    # Added by hand: no account holds it until an account sync finds it there.
    assert domain["dns_host_account_id"] is None and domain["registrar_account_id"] is None and domain["mx"] == []


def test_the_same_domain_in_another_spelling_is_409(vs_api, hdr, new_client):
    client_id = new_client()
    make_domain(vs_api, hdr("admin"), client_id, "bücher.example")
    again = vs_api.post(
        f"/v1/clients/{client_id}/domains", json={"name": "XN--BCHER-KVA.example"}, headers=hdr("admin")
    )
    assert again.status_code == 409
    assert again.json()["field"] == "name"
    # Another client may watch the same domain.
    make_domain(vs_api, hdr("admin"), new_client(), "bücher.example")


@pytest.mark.parametrize(
    "name",
    [
        "",
        "com",
        "not a domain",
        "http://example.com/",
        "user@example.com",
        "example.com:443",
        "a..example",
        "-lead.example",
        "trail-.example",
        "under_score.example",
        "x" * 64 + ".example",
        ".".join(["abcdefghi"] * 26) + ".com",
        "1.2.3.4",
        "xn--.example",
        "xn--abc.example",
        "🙂.example",
    ],
)
def test_junk_domain_names_are_422_naming_name(vs_api, hdr, name, new_client):
    client_id = new_client()
    response = vs_api.post(f"/v1/clients/{client_id}/domains", json={"name": name}, headers=hdr("admin"))
    assert response.status_code == 422, response.text
    assert response.json() == {**response.json(), "error": "validation_error", "field": "name"}
    listed = vs_api.get(f"/v1/clients/{client_id}/domains", headers=hdr("admin")).json()
    assert listed["items"] == []


def test_unknown_fields_on_a_domain_are_refused(vs_api, hdr):
    response = vs_api.post(
        f"/v1/clients/{uuid.uuid4()}/domains",
        json={"name": "example.org", "registrar": "Evil Inc."},
        headers=hdr("admin"),
    )
    assert response.status_code == 422
    assert response.json()["field"] == "registrar"


@pytest.mark.parametrize("role", ["client_user", "client_admin"])
def test_client_roles_neither_add_nor_list_domains(vs_api, hdr, role, new_client):
    client_id = new_client()
    headers = hdr(role, client_id=client_id)
    assert (
        vs_api.post(f"/v1/clients/{client_id}/domains", json={"name": "a.example"}, headers=headers).status_code == 403
    )
    assert vs_api.get(f"/v1/clients/{client_id}/domains", headers=headers).status_code == 403


def test_own_client_reads_a_domain_and_another_client_gets_the_missing_answer(vs_api, hdr, new_client):
    owner = new_client()
    domain = make_domain(vs_api, hdr("technician"), owner, f"{unique()}.example")
    for role in ("client_user", "client_admin"):
        got = vs_api.get(f"/v1/domains/{domain['id']}", headers=hdr(role, client_id=owner))
        assert got.status_code == 200
        assert got.json() == domain
    stranger = hdr("client_admin", client_id=uuid.uuid4())
    other = vs_api.get(f"/v1/domains/{domain['id']}", headers=stranger)
    missing = vs_api.get(f"/v1/domains/{uuid.uuid4()}", headers=stranger)
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()


def test_domain_list_is_per_client_and_pages(vs_api, hdr, new_client):
    client_id = new_client()
    names = [f"{unique()}.example" for _ in range(5)]
    ids = [make_domain(vs_api, hdr("admin"), client_id, n)["id"] for n in names]
    make_domain(vs_api, hdr("admin"), new_client(), names[0])  # another client's
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = vs_api.get(f"/v1/clients/{client_id}/domains", params=params, headers=hdr("technician")).json()
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


def _queued_run_ids(redis_url: str) -> list[str]:
    """Run ids in refresh messages waiting in the vendor_sync queue (kombu bodies are base64)."""
    client = redis.Redis.from_url(redis_url)
    ids = []
    for raw in client.lrange("vendor_sync", 0, -1):
        message = json.loads(raw)
        if message.get("headers", {}).get("task") == "vendor_sync.domain.refresh":
            args = json.loads(base64.b64decode(message["body"]))[0]
            ids.append(args[0])
    client.close()
    return ids


def test_refresh_queues_one_run_and_publishes_its_job(vs_api, hdr, stack_env, new_client):
    domain = make_domain(vs_api, hdr("admin"), new_client(), f"{unique()}.example")
    first = vs_api.post(f"/v1/domains/{domain['id']}/refresh", headers=hdr("technician"))
    assert first.status_code == 202
    run_id = first.json()["sync_run_id"]
    assert first.json() == {"sync_run_id": run_id}
    # A second request while the first is in flight gets the same run, and publishes nothing more.
    second = vs_api.post(f"/v1/domains/{domain['id']}/refresh", headers=hdr("admin"))
    assert second.status_code == 202
    assert second.json()["sync_run_id"] == run_id
    assert _queued_run_ids(stack_env["MSP_REDIS_URL"]).count(run_id) == 1
    run = vs_api.get(f"/v1/sync-runs/{run_id}", headers=hdr("technician"))
    assert run.status_code == 200
    body = run.json()
    assert {k: body[k] for k in ("id", "status", "created", "updated", "deleted", "failed", "error")} == {
        "id": run_id,
        "status": "queued",
        "created": 0,
        "updated": 0,
        "deleted": 0,
        "failed": 0,
        "error": None,
    }
    assert body["domain_id"] == domain["id"]


def test_refresh_and_runs_are_staff_only(vs_api, hdr, vs_engine, new_client):
    owner = new_client()
    domain = make_domain(vs_api, hdr("admin"), owner, f"{unique()}.example")
    client_headers = hdr("client_admin", client_id=owner)
    assert vs_api.post(f"/v1/domains/{domain['id']}/refresh", headers=client_headers).status_code == 403
    run_id = vs_api.post(f"/v1/domains/{domain['id']}/refresh", headers=hdr("admin")).json()["sync_run_id"]
    assert vs_api.get(f"/v1/sync-runs/{run_id}", headers=client_headers).status_code == 403
    assert vs_api.get(f"/v1/sync-runs/{uuid.uuid4()}", headers=hdr("admin")).status_code == 404
    assert vs_api.post(f"/v1/domains/{uuid.uuid4()}/refresh", headers=hdr("admin")).status_code == 404
    with vs_engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM vendor_sync.sync_runs WHERE domain_id = :d"), {"d": domain["id"]}
        ).scalar_one()
    assert count == 1


def test_refresh_survives_a_dead_broker_and_leaves_the_run_for_the_tick(
    vs_api, hdr, vs_engine, monkeypatch, new_client
):
    import socket

    from mspkit.queue import make_celery
    from vendor_sync.celery_app import app
    from vendor_sync.sync import publish

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    dead = make_celery("vendor_sync", f"redis://127.0.0.1:{dead_port}/0")
    dead.conf.broker_transport_options = app.conf.broker_transport_options
    monkeypatch.setattr(publish, "celery_app", dead)
    domain = make_domain(vs_api, hdr("admin"), new_client(), f"{unique()}.example")
    response = vs_api.post(f"/v1/domains/{domain['id']}/refresh", headers=hdr("admin"))
    assert response.status_code == 202
    with vs_engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, enqueued_at FROM vendor_sync.sync_runs WHERE id = :id"),
            {"id": response.json()["sync_run_id"]},
        ).one()
    # Not published: enqueued_at is cleared so the scheduler tick publishes it.
    assert row.status == "queued" and row.enqueued_at is None


def _drift(engine, client_id, domain_id, field, detected_at, kind="change"):
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO vendor_sync.drift_events (id, client_id, domain_id, kind, field, old, new, detected_at)"
                " VALUES (:id, :c, :d, :k, :f, '\"a\"', '\"b\"', :t)"
            ),
            {"id": uuid.uuid4(), "c": client_id, "d": domain_id, "k": kind, "f": field, "t": detected_at},
        )


def test_drift_events_list_newest_first_with_filters_and_pages(vs_api, hdr, vs_engine):
    client_id = uuid.uuid4()
    domain_id = insert_domain(vs_engine, f"{unique()}.example", client_id=client_id)
    other_domain = insert_domain(vs_engine, f"{unique()}.example", client_id=client_id)
    base = datetime(2030, 1, 1, tzinfo=UTC)
    for i, field in enumerate(["registrar", "nameservers", "statuses"]):
        _drift(vs_engine, client_id, domain_id, field, base + timedelta(minutes=i))
    _drift(vs_engine, client_id, domain_id, "expires_at", base + timedelta(minutes=9), kind="expiry_warning")
    _drift(vs_engine, client_id, other_domain, "registrar", base)
    _drift(vs_engine, uuid.uuid4(), insert_domain(vs_engine, "x.example"), "registrar", base)

    def all_pages(params):
        seen, cursor = [], None
        while True:
            query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
            response = vs_api.get("/v1/drift-events", params=query, headers=hdr("technician"))
            assert response.status_code == 200, response.text
            seen += response.json()["items"]
            cursor = response.json()["next_cursor"]
            if cursor is None:
                return seen

    by_domain = all_pages({"domain_id": str(domain_id), "kind": "change"})
    assert [e["field"] for e in by_domain] == ["statuses", "nameservers", "registrar"]
    assert all(e["old"] == "a" and e["new"] == "b" for e in by_domain)
    by_client = all_pages({"client_id": str(client_id)})
    assert len(by_client) == 5
    assert by_client[0]["kind"] == "expiry_warning"
    assert vs_api.get("/v1/drift-events", headers=hdr("client_admin", client_id=client_id)).status_code == 403
    bad = vs_api.get("/v1/drift-events", params={"kind": "weird"}, headers=hdr("admin"))
    assert bad.status_code == 422 and bad.json()["field"] == "kind"


# ---- the client must exist in intake -----------------------------------------------------------------


def _domain_rows(engine, client_id) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM vendor_sync.domains WHERE client_id = :c"), {"c": client_id}
            ).scalar_one()
        )


def _add_intake_client(admin_engine, client_id) -> None:
    """Create the client straight in intake's table, with an id chosen beforehand."""
    now = datetime.now(UTC)
    with admin_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO intake.clients (id, name, primary_domain, approver_emails,"
                " purchase_approval_threshold_cents, status, created_at, updated_at)"
                " VALUES (:id, :name, :domain, CAST(:emails AS jsonb), 0, 'active', :now, :now)"
            ),
            {
                "id": client_id,
                "name": f"Late {unique()}",
                "domain": f"{unique()}.example",
                "emails": json.dumps(["boss@late.example"]),
                "now": now,
            },
        )


def test_a_domain_for_a_client_intake_does_not_know_is_404_until_intake_knows_it(vs_api, hdr, vs_engine, admin_engine):
    client_id = uuid.uuid4()
    response = vs_api.post(f"/v1/clients/{client_id}/domains", json={"name": "ghost.example"}, headers=hdr("admin"))
    assert response.status_code == 404, response.text
    assert response.json() == {"error": "not_found", "detail": "client not found"}
    assert _domain_rows(vs_engine, client_id) == 0
    listed = vs_api.get(f"/v1/clients/{client_id}/domains", headers=hdr("technician"))
    assert (listed.status_code, listed.json()["error"]) == (404, "not_found")
    # An unknown client is not remembered: once intake has it, the same call succeeds.
    _add_intake_client(admin_engine, client_id)
    created = vs_api.post(f"/v1/clients/{client_id}/domains", json={"name": "ghost.example"}, headers=hdr("admin"))
    assert created.status_code == 201, created.text
    assert _domain_rows(vs_engine, client_id) == 1


def test_domains_fail_closed_when_intake_does_not_answer(vs_api, hdr, vs_engine, new_client, intake_down):
    client_id = new_client()
    intake_down()
    response = vs_api.post(f"/v1/clients/{client_id}/domains", json={"name": "down.example"}, headers=hdr("admin"))
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "unavailable"
    assert _domain_rows(vs_engine, client_id) == 0
    listed = vs_api.get(f"/v1/clients/{client_id}/domains", headers=hdr("admin"))
    assert (listed.status_code, listed.json()["error"]) == (503, "unavailable")


def test_found_clients_are_cached_and_unknown_ones_are_not(intake_live, admin_engine, new_client):
    from mspkit.auth import Principal
    from mspkit.errors import NotFound
    from mspkit.service_tokens import token_source
    from vendor_sync.intake_client import IntakeClients
    from vendor_sync.settings import get_settings

    # A long TTL so the test does not depend on how fast it runs.
    clients = IntakeClients(base_url=intake_live, tokens=token_source(get_settings()), ttl_s=3600)
    admin = Principal(sub="admin-1", role="admin")
    found = new_client()
    clients.ensure_exists(found, viewer=admin)
    with admin_engine.begin() as conn:  # intake forgets it: only the cache can still answer
        conn.execute(text("DELETE FROM intake.clients WHERE id = :c"), {"c": found})
    clients.ensure_exists(found, viewer=admin)

    unknown = uuid.uuid4()
    with pytest.raises(NotFound):
        clients.ensure_exists(unknown, viewer=admin)
    _add_intake_client(admin_engine, unknown)
    clients.ensure_exists(unknown, viewer=admin)
