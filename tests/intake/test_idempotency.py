"""Idempotency-Key: replays, conflicts, tenancy of the key, expiry, and concurrent duplicates."""

from __future__ import annotations

import threading
import uuid

import pytest
from intake_factories import make_client, outbox, purchase_body, submit


@pytest.fixture
def tenant(api, admin_h, auth):
    client = make_client(api, admin_h)
    return client, auth("client_user", "alice", client["id"])


def test_same_key_same_body_replays_the_first_response(api, tenant, sql):
    client, headers = tenant
    first = submit(api, headers, purchase_body(), key="k-1")
    again = submit(api, headers, purchase_body(), key="k-1")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert sql("SELECT count(*) FROM intake.requests WHERE client_id = :c", c=client["id"])[0][0] == 1
    assert len(outbox(sql, client["id"])) == 1


def test_key_order_and_spacing_do_not_matter(api, tenant):
    _, headers = tenant
    body = purchase_body()
    first = submit(api, headers, body, key="k-2")
    reordered = dict(reversed(list(body.items())))
    again = api.post("/v1/requests", json=reordered, headers={**headers, "Idempotency-Key": "k-2"})
    assert again.status_code == 201
    assert again.content == first.content


def test_replay_returns_the_first_response_even_after_changes(api, admin_h, tenant):
    _, headers = tenant
    first = submit(api, headers, purchase_body(), key="k-3")
    task_id = first.json()["task_ids"][0]
    api.post(f"/v1/tasks/{task_id}/transition", json={"to": "cancelled"}, headers=admin_h)
    again = submit(api, headers, purchase_body(), key="k-3")
    assert again.content == first.content


def test_same_key_other_body_is_409(api, tenant, sql):
    client, headers = tenant
    assert submit(api, headers, purchase_body(total_cents=1), key="k-4").status_code == 201
    response = submit(api, headers, purchase_body(total_cents=2), key="k-4")
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert sql("SELECT count(*) FROM intake.requests WHERE client_id = :c", c=client["id"])[0][0] == 1


def test_key_is_scoped_to_the_client_not_the_user(api, tenant, auth):
    client, alice = tenant
    bob = auth("client_admin", "bob", client["id"])
    first = submit(api, alice, purchase_body(), key="shared")
    again = submit(api, bob, purchase_body(), key="shared")
    assert again.content == first.content


def test_same_key_in_two_tenants_leaks_nothing(api, admin_h, auth, sql):
    a = make_client(api, admin_h, name="A")
    b = make_client(api, admin_h, name="B")
    ra = submit(api, auth("client_user", "u", a["id"]), purchase_body(total_cents=5), key="same-key")
    rb = submit(api, auth("client_user", "u", b["id"]), purchase_body(total_cents=5), key="same-key")
    assert ra.status_code == rb.status_code == 201
    assert ra.json()["id"] != rb.json()["id"]
    assert ra.json()["client_id"] == a["id"] and rb.json()["client_id"] == b["id"]
    # A different body in the other tenant is no conflict either.
    rc = submit(api, auth("client_user", "u", b["id"]), purchase_body(total_cents=6), key="other")
    rd = submit(api, auth("client_user", "u", a["id"]), purchase_body(total_cents=7), key="other")
    assert rc.status_code == rd.status_code == 201
    assert len(outbox(sql, a["id"])) == 2 and len(outbox(sql, b["id"])) == 2


def test_admin_keys_are_scoped_to_the_admin(api, admin_h, auth):
    a = make_client(api, admin_h, name="A")
    first = submit(api, admin_h, purchase_body(), key="adm", client_id=a["id"])
    other_admin = submit(api, auth("admin", "admin-2"), purchase_body(), key="adm", client_id=a["id"])
    assert first.status_code == other_admin.status_code == 201
    assert first.json()["id"] != other_admin.json()["id"]


def test_a_key_older_than_24h_is_forgotten(api, tenant, sql):
    client, headers = tenant
    first = submit(api, headers, purchase_body(), key="old")
    sql(
        "UPDATE intake.idempotency_keys SET created_at = now() - interval '24 hours 1 minute' "
        "WHERE scope = :s AND key = 'old'",
        s=f"client:{client['id']}",
    )
    again = submit(api, headers, purchase_body(total_cents=99), key="old")
    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]
    [(count,)] = sql(
        "SELECT count(*) FROM intake.idempotency_keys WHERE scope = :s AND key = 'old'", s=f"client:{client['id']}"
    )
    assert count == 1


def test_missing_key_is_422_naming_the_header(api, tenant):
    _, headers = tenant
    response = api.post("/v1/requests", json=purchase_body(), headers=headers)
    assert response.status_code == 422
    assert response.json()["field"] == "Idempotency-Key"


@pytest.mark.parametrize("key", ["", "x" * 129])
def test_key_length_is_1_to_128(api, tenant, key):
    _, headers = tenant
    response = api.post("/v1/requests", json=purchase_body(), headers={**headers, "Idempotency-Key": key})
    assert response.status_code == 422
    assert response.json()["field"] == "Idempotency-Key"


def test_a_failed_request_does_not_burn_the_key(api, admin_h, tenant, sql):
    client, headers = tenant
    api.patch(f"/v1/clients/{client['id']}", json={"status": "inactive"}, headers=admin_h)
    assert submit(api, headers, purchase_body(), key="retry").status_code == 409
    api.patch(f"/v1/clients/{client['id']}", json={"status": "active"}, headers=admin_h)
    assert submit(api, headers, purchase_body(), key="retry").status_code == 201


def test_the_openapi_schema_declares_the_required_header(api):
    params = api.get("/openapi.json").json()["paths"]["/v1/requests"]["post"]["parameters"]
    [header] = [p for p in params if p["in"] == "header"]
    assert header["name"] == "Idempotency-Key"
    assert header["required"] is True
    assert (header["schema"]["minLength"], header["schema"]["maxLength"]) == (1, 128)


def test_concurrent_duplicates_create_one_request(live_api, admin_h, auth, admin_engine):
    """Real commits on separate connections: 8 threads race with one key."""
    client = make_client(live_api, admin_h)
    headers = auth("client_user", "racer", client["id"])
    key = str(uuid.uuid4())
    barrier = threading.Barrier(8)
    results: list = []

    def _go() -> None:
        barrier.wait()
        results.append(submit(live_api, headers, purchase_body(), key=key))

    threads = [threading.Thread(target=_go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [201] * 8
    assert len({r.content for r in results}) == 1
    from sqlalchemy import text

    with admin_engine.connect() as conn:
        requests = conn.execute(text("SELECT count(*) FROM intake.requests WHERE client_id = :c"), {"c": client["id"]})
        events = conn.execute(
            text("SELECT count(*) FROM intake.outbox WHERE envelope->>'client_id' = :c"), {"c": client["id"]}
        )
        assert requests.scalar_one() == 1
        assert events.scalar_one() == 1
