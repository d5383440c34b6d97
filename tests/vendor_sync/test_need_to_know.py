"""Need-to-know in vendor_sync: a technician reads and writes only their clients' registry (DESIGN.md § staff).

Technicians are real staff rows at the live intake (`POST /v1/staff`), whose views vendor_sync reads
through `GET /internal/staff/{sub}`. For every route a technician may call on a client's objects,
another client's object answers exactly as a random missing id does, and a list filtered by such a
client is the 404 of a missing client.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).parent))
pytest.register_assert_rewrite("fixtures_registry")
from fixtures_registry import count_rows, make_account, make_domain, make_vendor, queue_run, unique  # noqa: E402

pytest_plugins = ["fixtures_registry"]


@dataclass(frozen=True)
class Objects:
    """One client's objects in vendor_sync."""

    client: str
    account: str
    domain: str
    run: str
    drift: str


@dataclass(frozen=True)
class World:
    """Clients A and B with one of each object, and the vendor their accounts are at."""

    vendor: str
    a: Objects
    b: Objects


@pytest.fixture(scope="module")
def api(vs_app: Any) -> Iterator[TestClient]:
    with TestClient(vs_app) as client:
        yield client


def _drift(engine: Engine, client_id: str, domain_id: str) -> str:
    event_id = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO vendor_sync.drift_events (id, client_id, domain_id, kind, field, old, new, detected_at)"
                " VALUES (:id, :c, :d, 'change', 'registrar', '\"a\"', '\"b\"', :t)"
            ),
            {"id": event_id, "c": client_id, "d": domain_id, "t": datetime.now(UTC)},
        )
    return str(event_id)


@pytest.fixture(scope="module")
def world(
    api: TestClient, hdr: Callable[..., dict[str, str]], new_client: Callable[[], uuid.UUID], vs_engine: Engine
) -> World:
    admin = hdr("admin")
    vendor = make_vendor(api, admin)["id"]

    def objects() -> Objects:
        client = new_client()
        contact = {"name": "Billing Desk", "role": "billing", "email": "billing@vendor.example"}
        account = make_account(api, admin, client, vendor, contacts=[contact])["id"]
        domain = make_domain(api, admin, client, f"{unique()}.example")["id"]
        # Queued, never published: a technician's refresh of it reuses it (nothing reaches the queue).
        run = str(queue_run(vs_engine, uuid.UUID(domain), publish=False))
        return Objects(str(client), account, domain, run, _drift(vs_engine, str(client), domain))

    return World(vendor=vendor, a=objects(), b=objects())


@pytest.fixture(scope="module")
def technician(intake_live: str, mint_token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """Factory: vendor_sync headers of a technician with a staff row made at intake (`POST /v1/staff`)."""
    intake_admin = {"Authorization": f"Bearer {mint_token('admin', 'ntk-admin', aud=['intake'])}"}

    def _technician(client_ids: list[str] | None, *, active: bool = True) -> dict[str, str]:
        sub = f"ntk-{uuid.uuid4().hex[:10]}"
        body = {
            "sub": sub,
            "display_name": "Need To Know",
            "email": f"{sub}@msp.example",
            "role": "technician",
            "active": active,
            "client_ids": client_ids,
        }
        created = httpx.post(f"{intake_live}/v1/staff", json=body, headers=intake_admin, timeout=10)
        assert created.status_code == 201, created.text
        return {"Authorization": f"Bearer {mint_token('technician', sub, aud=['vendor_sync'])}"}

    return _technician


@dataclass(frozen=True)
class Call:
    """A route a technician may call on one client's objects, and what it answers when allowed."""

    method: str
    path: str  # formatted with an Objects' fields (or random ids)
    ok: int
    body: Callable[[World], dict[str, Any]] | None = None

    def send(self, api: TestClient, headers: dict[str, str], world: World, objects: Objects) -> Any:
        json = self.body(world) if self.body else None
        return api.request(self.method, self.path.format(**vars(objects)), headers=headers, json=json)


CALLS = [
    Call("GET", "/v1/vendor-accounts/{account}", 200),
    Call("GET", "/v1/domains/{domain}", 200),
    Call("GET", "/v1/sync-runs/{run}", 200),
    Call("POST", "/v1/domains/{domain}/refresh", 202),
    Call("GET", "/v1/clients/{client}/vendor-accounts", 200),
    Call("GET", "/v1/clients/{client}/domains", 200),
    Call("GET", "/v1/drift-events?client_id={client}", 200),
    Call(
        "POST",
        "/v1/clients/{client}/vendor-accounts",
        201,
        lambda w: {"vendor_id": w.vendor, "account_number": unique()},
    ),
    Call("POST", "/v1/clients/{client}/domains", 201, lambda w: {"name": f"{unique()}.example"}),
]
IDS = [f"{c.method} {c.path}" for c in CALLS]


def _missing() -> Objects:
    return Objects(*(str(uuid.uuid4()) for _ in range(5)))


def _rows(engine: Engine, client: str) -> dict[str, int]:
    """How many rows each of vendor_sync's client tables holds for `client` (a refused write adds none)."""
    return {
        table: count_rows(engine, f"SELECT count(*) FROM vendor_sync.{table} WHERE client_id = :c", c=client)
        for table in ("vendor_accounts", "domains", "sync_runs", "drift_events")
    }


def _refused_like_missing(api: TestClient, headers: dict[str, str], world: World, call: Call, objects: Objects) -> None:
    response = call.send(api, headers, world, objects)
    missing = call.send(api, headers, world, _missing())
    assert response.status_code == 404, response.text
    assert (response.status_code, response.json()) == (missing.status_code, missing.json())
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize("call", CALLS, ids=IDS)
def test_a_limited_technician_gets_their_clients_and_the_missing_answer_for_others(
    api, world, technician, vs_engine, call
):
    headers = technician([world.a.client])
    before = _rows(vs_engine, world.b.client)

    _refused_like_missing(api, headers, world, call, world.b)
    assert _rows(vs_engine, world.b.client) == before
    allowed = call.send(api, headers, world, world.a)
    assert allowed.status_code == call.ok, allowed.text


@pytest.mark.parametrize("kind", ["no staff row", "inactive"])
@pytest.mark.parametrize("call", CALLS, ids=IDS)
def test_a_technician_without_an_active_staff_row_reads_nothing_the_admin_does(
    api, world, technician, hdr, vs_engine, call, kind
):
    headers = hdr("technician", staff=False) if kind == "no staff row" else technician(None, active=False)
    before = {c: _rows(vs_engine, c) for c in (world.a.client, world.b.client)}

    for objects in (world.a, world.b):
        _refused_like_missing(api, headers, world, call, objects)
    assert {c: _rows(vs_engine, c) for c in before} == before
    for objects in (world.a, world.b):
        admin = call.send(api, hdr("admin"), world, objects)
        assert admin.status_code == call.ok, admin.text


def _walk(api: TestClient, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = api.get(path, params={"limit": 200, **({"cursor": cursor} if cursor else {})}, headers=headers)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def test_unfiltered_drift_events_walked_to_the_end_hold_only_the_technicians_clients(api, world, technician, hdr):
    limited = _walk(api, "/v1/drift-events", technician([world.a.client]))
    assert world.a.drift in {e["id"] for e in limited}
    assert {e["client_id"] for e in limited} == {world.a.client}

    for nobody in (hdr("technician", staff=False), technician(None, active=False), technician([])):
        assert _walk(api, "/v1/drift-events", nobody) == []
    # A technician of every client (client_ids null) sees both, like the admin.
    every = {e["id"] for e in _walk(api, "/v1/drift-events", technician(None))}
    assert {world.a.drift, world.b.drift} <= every


def test_filtering_drift_events_by_another_clients_domain_is_an_empty_page_like_a_random_one(api, world, technician):
    headers = technician([world.a.client])
    by_b = api.get("/v1/drift-events", params={"domain_id": world.b.domain}, headers=headers)
    by_random = api.get("/v1/drift-events", params={"domain_id": str(uuid.uuid4())}, headers=headers)
    assert (
        (by_b.status_code, by_b.json())
        == (by_random.status_code, by_random.json())
        == (
            200,
            {"items": [], "next_cursor": None},
        )
    )


def test_a_limited_technician_reads_their_clients_objects_whole(api, world, technician):
    headers = technician([world.a.client])
    account = api.get(f"/v1/vendor-accounts/{world.a.account}", headers=headers).json()
    assert [(c["name"], c["role"]) for c in account["contacts"]] == [("Billing Desk", "billing")]
    listed = api.get(f"/v1/clients/{world.a.client}/domains", headers=headers).json()
    assert world.a.domain in {d["id"] for d in listed["items"]}
    assert {d["client_id"] for d in listed["items"]} == {world.a.client}
    run = api.get(f"/v1/sync-runs/{world.a.run}", headers=headers).json()
    assert run["id"] == world.a.run


# ---- intake down: technicians fail closed, the admin does not ----------------------------------------


def test_when_intake_does_not_answer_technicians_get_503_and_write_nothing(
    api, world, technician, hdr, vs_engine, intake_down
):
    headers = technician([world.a.client])  # never read yet: no view in the cache
    before = _rows(vs_engine, world.a.client)
    intake_down()

    for call in CALLS:
        response = call.send(api, headers, world, world.a)
        assert response.status_code == 503, (call, response.text)
        assert response.json() == {"error": "unavailable", "detail": "intake unreachable (connection failed)"}
    assert _rows(vs_engine, world.a.client) == before
    # Vendors are not client data, but the technician's view is still needed to let them in.
    assert api.get("/v1/vendors", headers=headers).status_code == 503

    admin = hdr("admin")
    for call in CALLS[:3]:
        assert call.send(api, admin, world, world.a).status_code == 200
    events = api.get("/v1/drift-events", params={"client_id": world.a.client}, headers=admin)
    assert events.status_code == 200 and [e["id"] for e in events.json()["items"]] == [world.a.drift]
    assert api.get(f"/v1/vendors/{world.vendor}", headers=admin).status_code == 200
