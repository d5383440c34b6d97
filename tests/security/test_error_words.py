"""Error details are plain words in all three APIs: never a regex, never an exception's class name.

A batch of bad inputs goes to each real API in-process; every `detail` (and every `errors[].detail`)
is scanned. Each pattern the OpenAPI documents must have words (`mspkit.patterns.described`), so
no refusal falls back to the generic phrase.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parents[1] / "secrets_broker"))

import broker_fixtures

from mspkit.errors import looks_unplain
from mspkit.patterns import UNDESCRIBED, words_for

broker_app = broker_fixtures.broker_app

SERVICES = ("intake", "secrets_broker", "vendor_sync")


class Bad(NamedTuple):
    """One bad request: where it goes, what it sends, and the status it must get."""

    service: str
    method: str
    path: str
    status: int
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] | None = None
    auth: str | None = "admin"


def _purchase(**overrides: Any) -> dict[str, Any]:
    body = {
        "type": "purchase",
        "client_id": str(uuid.uuid4()),
        "items": [{"description": "Pen", "quantity": 1, "unit_price_cents": 100}],
        "justification": "Needed.",
        "supplier": {"name": "Supplies", "contact_email": "sales@supplies.example"},
    }
    return {**body, **overrides}


KEY = {"Idempotency-Key": "k-1"}
TEXT = {"Content-Type": "text/plain"}
ID = uuid.uuid4()
BAD: list[Bad] = [
    # intake
    Bad(
        "intake", "POST", "/v1/requests", 422, json=_purchase(supplier={"name": "S", "contact_email": "x"}), headers=KEY
    ),
    Bad(
        "intake",
        "POST",
        "/v1/requests",
        422,
        json=_purchase(items=[{"description": "P", "quantity": "many"}]),
        headers=KEY,
    ),
    Bad("intake", "POST", "/v1/requests", 422, json=_purchase(justification="a\x00b"), headers=KEY),
    Bad("intake", "POST", "/v1/requests", 422, json=_purchase(client_id="nope"), headers=KEY),
    Bad("intake", "POST", "/v1/requests", 422, json=_purchase(type="teleport"), headers=KEY),
    Bad(
        "intake",
        "POST",
        "/v1/requests",
        422,
        json={
            "type": "spam_filter_setup",
            "client_id": str(uuid.uuid4()),
            "domain": "bad domain",
            "downstream_hosts": ["mail host!"],
            "provider": "Mail Channels",
        },
        headers=KEY,
    ),
    Bad("intake", "POST", "/v1/requests", 422, json=_purchase(), headers={"Idempotency-Key": " padded"}),
    Bad("intake", "POST", "/v1/requests", 422, content=b'{"type": "purchase"}', headers={**KEY, **TEXT}),
    Bad(
        "intake", "POST", "/v1/requests", 422, content=b'{"type": ', headers={**KEY, "Content-Type": "application/json"}
    ),
    Bad(
        "intake",
        "POST",
        "/v1/clients",
        422,
        json={
            "name": "X",
            "primary_domain": "not a domain",
            "approver_emails": ["nobody"],
            "purchase_approval_threshold_cents": -1,
        },
    ),
    Bad("intake", "GET", "/v1/tasks?cursor=not-a-cursor&limit=0", 422),
    Bad("intake", "GET", "/v1/tasks/not-a-uuid", 422),
    Bad("intake", "POST", f"/v1/tasks/{ID}/assign", 422, json={"assignee": "tech 1"}),
    Bad("intake", "POST", f"/v1/tasks/{ID}/transition", 422, json={"to": "finished"}),
    Bad(
        "intake",
        "POST",
        "/v1/webhooks/psa/Not%20A%20Provider",
        422,
        json={"ID": 1, "Type": "ticket"},
        auth=None,
    ),
    Bad("intake", "GET", "/v1/tasks", 401, headers={"Authorization": "Bearer not.a.token"}, auth=None),
    # secrets_broker
    Bad(
        "secrets_broker",
        "POST",
        "/v1/credentials",
        422,
        json={
            "client_id": str(ID),
            "kind": "password",
            "owner": "client",
            "category": "isp",
            "name": "A\u202eB",
            "username": "u\x01",
            "secret": "s",
            "url": "ftp://x",
        },
    ),
    Bad("secrets_broker", "POST", "/v1/credentials", 422, content=b"client_id=x", headers=TEXT),
    Bad("secrets_broker", "GET", "/v1/audit?action=Release&cursor=abc", 422),
    Bad("secrets_broker", "GET", "/v1/credentials?cursor=zz&client_id=nope", 422),
    Bad("secrets_broker", "POST", "/v1/unwrap", 422, json={"wrap_token": "not a token!"}, auth="technician"),
    Bad("secrets_broker", "POST", "/v1/reveal", 422, json={"code": "short code with spaces!"}, auth=None),
    Bad(
        "secrets_broker",
        "POST",
        "/v1/releases",
        422,
        json={"task_id": "x", "credential_id": str(ID), "reason": "why\x07"},
        auth="technician",
    ),
    Bad("secrets_broker", "GET", "/v1/credentials", 401, headers={"Authorization": "Bearer a.b.c"}, auth=None),
    # vendor_sync
    Bad(
        "vendor_sync",
        "POST",
        "/v1/vendors",
        422,
        json={
            "name": " padded ",
            "kind": "bank",
            "website": "https://user@host/",
            "support_email": "x@",
            "support_phone": "call me",
            "adapter": "Not-An-Adapter",
        },
    ),
    Bad(
        "vendor_sync",
        "POST",
        "/v1/vendors",
        422,
        content=b"name=x&kind=isp",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
    Bad("vendor_sync", "POST", f"/v1/clients/{ID}/domains", 422, json={"name": "bad/name.example"}),
    Bad("vendor_sync", "POST", f"/v1/clients/{ID}/domains", 422, json={"name": "xn--zz.example"}),
    Bad("vendor_sync", "GET", "/v1/drift-events?kind=other&domain_id=x", 422),
    Bad("vendor_sync", "GET", "/v1/vendors", 401, headers={"Authorization": "Bearer nope"}, auth=None),
]


@pytest.fixture(scope="module")
def apps(broker_app: Any, intake_live: str) -> Iterator[dict[str, TestClient]]:
    """The three real APIs in-process (no lifespan: no background threads); the broker asks the live intake."""
    from intake.main import app as intake_app
    from vendor_sync.api import app as vendor_sync_app

    clients = {
        "intake": TestClient(intake_app, raise_server_exceptions=False),
        "secrets_broker": TestClient(broker_app, raise_server_exceptions=False, client=("10.99.0.1", 50000)),
        "vendor_sync": TestClient(vendor_sync_app, raise_server_exceptions=False),
    }
    yield clients
    for client in clients.values():
        client.close()


def _details(body: dict[str, Any]) -> list[str]:
    return [body["detail"], *(problem["detail"] for problem in body.get("errors") or [])]


@pytest.mark.parametrize(
    "bad", BAD, ids=[f"{b.service}-{b.method}-{b.path.split('?')[0]}-{i}" for i, b in enumerate(BAD)]
)
def test_error_details_are_plain_words(apps, auth: Callable[..., dict[str, str]], bad: Bad) -> None:
    headers = dict(bad.headers or {})
    if bad.auth is not None:
        headers = {**auth(bad.auth, f"{bad.auth}-words"), **headers}
    response = apps[bad.service].request(bad.method, bad.path, json=bad.json, content=bad.content, headers=headers)
    assert response.status_code == bad.status, response.text
    body = response.json()
    details = _details(body)
    assert [d for d in details if looks_unplain(d)] == [], details
    assert [d for d in details if UNDESCRIBED in d] == [], details  # every pattern hit has its own words
    if bad.status == 422:
        assert body["errors"][0] == {"field": body["field"], "detail": body["detail"]}


def _patterns(node: Any, *, negated: bool = False) -> Iterator[str]:
    """Every `pattern` in an OpenAPI document, except those under `not` (they describe what is refused)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str) and not negated:
                yield value
            else:
                yield from _patterns(value, negated=negated or key == "not")
    elif isinstance(node, list):
        for item in node:
            yield from _patterns(item, negated=negated)


@pytest.mark.parametrize("service", SERVICES)
def test_every_pattern_in_the_openapi_has_words(apps, service: str) -> None:
    spec = apps[service].get("/openapi.json").json()
    patterns = set(_patterns(spec))
    assert patterns, "the walk found no pattern at all"
    assert {p for p in patterns if words_for(p) == UNDESCRIBED} == set()
    assert [words_for(p) for p in patterns if looks_unplain(words_for(p))] == []


@pytest.mark.parametrize("service", SERVICES)
def test_the_openapi_error_body_describes_errors_and_allowed(apps, service: str) -> None:
    schemas = apps[service].get("/openapi.json").json()["components"]["schemas"]
    assert {"errors", "allowed", "current_status", "field"} <= schemas["ErrorBody"]["properties"].keys()
    assert schemas["FieldProblem"]["required"] == ["field", "detail"]
