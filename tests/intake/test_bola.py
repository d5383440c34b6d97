"""BOLA matrix: client A's tokens on client B's ids get exactly what a random missing id gets."""

from __future__ import annotations

import uuid

import pytest
from intake_factories import assign, create_request, get_task, isp_body, make_client, move, outbox, purchase_body

APPROVAL_BODY = {
    "recipient": {"name": "R", "contact_email": "r@r.example", "party_category": "provider_for_client"},
    "information_categories": ["contact_info"],
    "expires_in_s": 600,
}
# (method, path template, body or None); {client}, {request}, {task}, {approval} are B's ids.
ROUTES = [
    ("GET", "/v1/clients/{client}", None),
    ("PATCH", "/v1/clients/{client}", {"status": "closed"}),
    ("PATCH", "/v1/clients/{client}", {"name": "pwned"}),
    ("GET", "/v1/requests/{request}", None),
    ("GET", "/v1/tasks/{task}", None),
    ("POST", "/v1/tasks/{task}/assign", {"assignee": "mallory"}),
    ("POST", "/v1/tasks/{task}/transition", {"to": "cancelled"}),
    ("POST", "/v1/tasks/{task}/approvals", APPROVAL_BODY),
    ("GET", "/v1/approvals/{approval}", None),
    ("POST", "/v1/approvals/{approval}/decision", {"decision": "approved"}),
    ("POST", "/v1/approvals/{approval}/decision", {"decision": "rejected"}),
    ("GET", "/internal/tasks/{task}/authorization", None),
    ("GET", "/internal/requests/{request}", None),
    ("POST", "/internal/tasks/{task}/steps", {"name": "x", "status": "succeeded"}),
    ("POST", "/internal/tasks", {"client_id": "{client}", "type": "drift_review", "title": "x"}),
]
LISTS = [
    ("/v1/tasks", {"client_id": "{client}"}),
    ("/v1/requests", {"client_id": "{client}"}),
    ("/v1/approvals", {"task_id": "{task}"}),
    ("/v1/tasks", {}),
    ("/v1/requests", {}),
    ("/v1/approvals", {}),
    ("/v1/clients", {}),
]


@pytest.fixture
def world(api, admin_h, auth, tech_h):
    """Client B with a request, a task in progress and a pending approval; client A with its users."""
    a = make_client(api, admin_h, name="A")
    b = make_client(api, admin_h, name="B")
    b_user = auth("client_user", "bob", b["id"])
    request = create_request(api, b_user, isp_body())
    task_id = request["task_ids"][0]
    approval_id = get_task(api, admin_h, task_id)["approvals"][0]["id"]
    other = create_request(api, b_user, purchase_body())["task_ids"][0]
    assert assign(api, tech_h, other, "tech-1").status_code == 200
    assert move(api, tech_h, other, "in_progress").status_code == 200
    return {
        "a": a,
        "b_ids": {"client": b["id"], "request": request["id"], "task": task_id, "approval": approval_id},
        "b_admin": auth("client_admin", "bea", b["id"]),
    }


def _fill(template, ids):
    return template.format(**ids) if isinstance(template, str) else template


def _body(body, ids):
    if body is None:
        return None
    return {k: (_fill(v, ids) if isinstance(v, str) else v) for k, v in body.items()}


def _call(api, headers, method, template, body, ids):
    return api.request(method, template.format(**ids), json=_body(body, ids), headers=headers)


@pytest.mark.parametrize("role", ["client_user", "client_admin"])
def test_bola_matrix(api, auth, world, sql, role):
    a_headers = auth(role, "mallory", world["a"]["id"])
    b_ids = world["b_ids"]
    random_ids = {k: str(uuid.uuid4()) for k in b_ids}
    before = outbox(sql, b_ids["client"])
    successes = []
    for method, template, body in ROUTES:
        foreign = _call(api, a_headers, method, template, body, b_ids)
        missing = _call(api, a_headers, method, template, body, random_ids)
        if foreign.is_success:
            successes.append((method, template))
        strip = foreign.content
        for value in b_ids.values():
            strip = strip.replace(value.encode(), b"<id>")
        strip_missing = missing.content
        for value in random_ids.values():
            strip_missing = strip_missing.replace(value.encode(), b"<id>")
        assert (foreign.status_code, strip) == (missing.status_code, strip_missing), (method, template)
        assert foreign.status_code in (403, 404), (method, template, foreign.status_code)
    for path, params in LISTS:
        foreign = api.get(path, params={k: _fill(v, b_ids) for k, v in params.items()}, headers=a_headers)
        missing = api.get(path, params={k: _fill(v, random_ids) for k, v in params.items()}, headers=a_headers)
        assert foreign.status_code == 200
        leaked = [v for v in b_ids.values() if v.encode() in foreign.content]
        if leaked:
            successes.append(("GET", path))
        if params:
            assert foreign.content == missing.content
    assert successes == []
    assert outbox(sql, b_ids["client"]) == before


def test_the_matrix_is_meaningful_for_bs_own_admin(api, world):
    """The same routes work for B's own client_admin where the role allows, so a 404 above is tenancy."""
    ids = world["b_ids"]
    headers = world["b_admin"]
    assert api.get(f"/v1/clients/{ids['client']}", headers=headers).status_code == 200
    assert api.get(f"/v1/requests/{ids['request']}", headers=headers).status_code == 200
    assert api.get(f"/v1/tasks/{ids['task']}", headers=headers).status_code == 200
    assert api.get(f"/v1/approvals/{ids['approval']}", headers=headers).status_code == 200
    response = api.post(f"/v1/approvals/{ids['approval']}/decision", json={"decision": "approved"}, headers=headers)
    assert response.status_code == 200


def test_every_route_is_in_the_matrix():
    from intake.main import app

    covered = {
        (
            m,
            t.replace("{client}", "{client_id}")
            .replace("{request}", "{request_id}")
            .replace("{task}", "{task_id}")
            .replace("{approval}", "{approval_id}"),
        )
        for m, t, _ in ROUTES
    }
    covered |= {("GET", p) for p, _ in LISTS}
    covered |= {
        ("POST", "/v1/requests"),
        ("POST", "/v1/clients"),
        ("GET", "/internal/tasks"),
        ("POST", "/v1/webhooks/psa/{provider}"),
    }  # tested elsewhere: no foreign id in the path
    routes = {
        (m, r.path)
        for r in app.routes
        if getattr(r, "include_in_schema", False)
        for m in r.methods
        if r.path not in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect")
    }
    assert routes - covered == set()
