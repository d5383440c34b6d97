"""Plain factory functions for intake's tests (imported by the test modules)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

Headers = dict[str, str]


def make_client(api: TestClient, admin_h: Headers, **overrides: Any) -> dict[str, Any]:
    """Create a client through the API and return it."""
    body = {
        "name": "Acme Dental",
        "primary_domain": "acme-dental.example",
        "approver_emails": ["owner@acme-dental.example"],
        "purchase_approval_threshold_cents": 50_000,
        **overrides,
    }
    response = api.post("/v1/clients", json=body, headers=admin_h)
    assert response.status_code == 201, response.text
    return response.json()


def purchase_body(*, total_cents: int = 10_000, **overrides: Any) -> dict[str, Any]:
    """A purchase whose total is `total_cents` (one item)."""
    return {
        "type": "purchase",
        "items": [{"description": "Wireless keyboard", "quantity": 1, "unit_price_cents": total_cents}],
        "justification": "The reception keyboard is broken.",
        "supplier": {"name": "Office Supplies Ltd", "contact_email": "sales@office-supplies.example"},
        **overrides,
    }


def isp_body(**overrides: Any) -> dict[str, Any]:
    """An ISP account setup."""
    return {
        "type": "isp_account_setup",
        "isp_name": "FastFiber",
        "isp_contact_email": "business@fastfiber.example",
        "service_address": {
            "line1": "1 Main Street",
            "city": "Springfield",
            "region": "IL",
            "postal_code": "62701",
            "country": "US",
        },
        "service_tier": "Business 500",
        "site_contact": {"name": "Dana Office", "email": "dana@acme-dental.example", "phone": "+1 217 555 0100"},
        **overrides,
    }


def spam_body(**overrides: Any) -> dict[str, Any]:
    """A spam filter setup (provider left to its default)."""
    return {
        "type": "spam_filter_setup",
        "domain": "acme-dental.example",
        "downstream_hosts": ["mail.acme-dental.example"],
        **overrides,
    }


def vendor_contact_body(account_id: str, *, add: Any = (), update: Any = (), remove: Any = ()) -> dict[str, Any]:
    """A vendor contact update."""
    return {
        "type": "vendor_contact_update",
        "vendor_account_id": account_id,
        "contacts": {"add": list(add), "update": list(update), "remove": list(remove)},
    }


def submit(
    api: TestClient, headers: Headers, body: dict[str, Any], *, key: str | None = None, client_id: Any = None
) -> Any:
    """POST /v1/requests with an Idempotency-Key (a fresh one unless given)."""
    if client_id is not None:
        body = {**body, "client_id": str(client_id)}
    return api.post("/v1/requests", json=body, headers={**headers, "Idempotency-Key": key or str(uuid.uuid4())})


def create_request(api: TestClient, headers: Headers, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Submit a request that must succeed; return the 201 body."""
    response = submit(api, headers, body, **kwargs)
    assert response.status_code == 201, response.text
    return response.json()


def get_task(api: TestClient, headers: Headers, task_id: str) -> dict[str, Any]:
    """GET a task that must exist."""
    response = api.get(f"/v1/tasks/{task_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def system_task(api: TestClient, vendor_sync_h: Headers, client_id: str, **overrides: Any) -> dict[str, Any]:
    """A system task in `new` (POST /internal/tasks)."""
    body = {"client_id": client_id, "type": "drift_review", "title": "Review DNS drift", **overrides}
    response = api.post("/internal/tasks", json=body, headers=vendor_sync_h)
    assert response.status_code == 201, response.text
    return response.json()


def assign(api: TestClient, headers: Headers, task_id: str, assignee: str) -> Any:
    """POST /v1/tasks/{id}/assign."""
    return api.post(f"/v1/tasks/{task_id}/assign", json={"assignee": assignee}, headers=headers)


def move(api: TestClient, headers: Headers, task_id: str, to: str, note: str | None = None) -> Any:
    """POST /v1/tasks/{id}/transition."""
    body: dict[str, Any] = {"to": to}
    if note is not None:
        body["note"] = note
    return api.post(f"/v1/tasks/{task_id}/transition", json=body, headers=headers)


def outbox(sql: Callable[..., list[Any]], client_id: Any) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of every outbox row of one client, in write order."""
    rows = sql(
        "SELECT type, envelope FROM intake.outbox WHERE envelope->>'client_id' = :c ORDER BY id", c=str(client_id)
    )
    return [(r[0], r[1]["data"]) for r in rows]


def walk(api: TestClient, headers: Headers, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paged list, following `next_cursor` to the end (whatever else the database holds)."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": params.get("limit", 200), **({"cursor": cursor} if cursor else {})}
        response = api.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def client_state(sql: Callable[..., list[Any]], client_id: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row intake holds for one client, to show that a refusal changed nothing."""
    by_task = "JOIN intake.tasks t ON t.id = x.task_id WHERE t.client_id = :c ORDER BY x.id"
    queries = {
        "clients": "SELECT * FROM intake.clients WHERE id = :c",
        "requests": "SELECT * FROM intake.requests WHERE client_id = :c ORDER BY id",
        "tasks": "SELECT * FROM intake.tasks WHERE client_id = :c ORDER BY id",
        "task_notes": f"SELECT x.* FROM intake.task_notes x {by_task}",
        "task_steps": f"SELECT x.* FROM intake.task_steps x {by_task}",
        "approvals": "SELECT * FROM intake.approvals WHERE client_id = :c ORDER BY id",
        "outbox": "SELECT * FROM intake.outbox WHERE envelope->>'client_id' = :c ORDER BY id",
    }
    return {table: [tuple(row) for row in sql(query, c=str(client_id))] for table, query in queries.items()}


def events(sql: Callable[..., list[Any]], client_id: Any, *types: str) -> list[tuple[str, dict[str, Any]]]:
    """As `outbox` (only `types`, when given), without a task event's `updated_at` stamp, for exact comparisons."""
    return [
        (t, {k: v for k, v in d.items() if k != "updated_at"})
        for t, d in outbox(sql, client_id)
        if not types or t in types
    ]


def make_staff(api: TestClient, admin_h: Headers, **overrides: Any) -> dict[str, Any]:
    """Add a technician (a fresh sub unless given) through POST /v1/staff and return the 201 body."""
    body = {
        "sub": f"tech-{uuid.uuid4().hex[:12]}",
        "display_name": "Terry Tech",
        "email": "terry@msp.example",
        "role": "technician",
        **overrides,
    }
    response = api.post("/v1/staff", json=body, headers=admin_h)
    assert response.status_code == 201, response.text
    return response.json()


def staff_events(sql: Callable[..., list[Any]], sub: str) -> list[dict[str, Any]]:
    """The envelope of every `staff.changed` outbox row about `sub`, in write order."""
    rows = sql(
        "SELECT envelope FROM intake.outbox WHERE type = 'staff.changed' AND envelope->'data'->>'sub' = :s ORDER BY id",
        s=sub,
    )
    return [r[0] for r in rows]


def staff_state(sql: Callable[..., list[Any]]) -> dict[str, list[tuple[Any, ...]]]:
    """Every staff row, PSA member id and `staff.changed` event, to show that a refusal changed nothing."""
    queries = {
        "staff": "SELECT * FROM intake.staff ORDER BY sub",
        "members": "SELECT * FROM intake.staff_psa_members ORDER BY sub, provider",
        "events": "SELECT * FROM intake.outbox WHERE type = 'staff.changed' ORDER BY id",
    }
    return {table: [tuple(row) for row in sql(query)] for table, query in queries.items()}


# ---- raw rows, for migration tests that fill a database at an older revision ----

_JSON_COLUMNS = ("_emails", "categories", "_ids", "body")


def insert_row(conn: Any, table: str, **values: object) -> None:
    """INSERT one row into `intake.<table>` with plain SQL (JSON columns cast from their text)."""
    from sqlalchemy import text

    columns = ", ".join(values)
    params = ", ".join(f"CAST(:{k} AS jsonb)" if k.endswith(_JSON_COLUMNS) else f":{k}" for k in values)
    conn.execute(text(f"INSERT INTO intake.{table} ({columns}) VALUES ({params})"), values)


def insert_client(conn: Any, client_id: uuid.UUID, at: Any) -> None:
    """An active client row, as every revision since 0002 holds it."""
    insert_row(
        conn,
        "clients",
        id=client_id,
        name="C",
        primary_domain="c.example",
        approver_emails="[]",
        purchase_approval_threshold_cents=0,
        status="active",
        created_at=at,
        updated_at=at,
    )


CONNECTWISE_SITE = "https://api-na.myconnectwise.net"
CONNECTWISE_BOARD = "Service Board"


def connectwise_adapter() -> Any:
    """A ConnectWise adapter on the recorded site (respx answers it), one attempt per call."""
    from intake.psa.connectwise import ConnectWiseAdapter
    from intake.settings import DEFAULT_PSA_STATUS_MAP
    from mspkit.http import RetryPolicy

    return ConnectWiseAdapter(
        site_url=CONNECTWISE_SITE,
        company="msp",
        public_key="pubK3y",
        private_key="privK3y",
        client_id="client-1",
        board=CONNECTWISE_BOARD,
        status_maps={CONNECTWISE_BOARD: DEFAULT_PSA_STATUS_MAP},
        closed_statuses={CONNECTWISE_BOARD: ["Closed", "Completed"]},
        retry=RetryPolicy(max_attempts=1),
    )
