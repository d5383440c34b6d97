"""Internal routes: allowlisted service subs only; system tasks, steps, the live authorization view."""

from __future__ import annotations

import uuid

import pytest
from intake_factories import assign, create_request, get_task, make_client, move, outbox, purchase_body, system_task

BROKER_ROUTES = [("GET", "/internal/tasks/{task}/authorization", None), ("GET", "/internal/tasks", None)]
VENDOR_SYNC_ROUTES = [
    ("GET", "/internal/requests/{request}", None),
    ("POST", "/internal/tasks", {"client_id": "{client}", "type": "drift_review", "title": "Drift"}),
    (
        "POST",
        "/internal/tasks/{task}/steps",
        {"name": "dns", "status": "succeeded", "human": False, "idempotency_key": "dns-1"},
    ),
]


@pytest.fixture
def world(api, admin_h, auth):
    client = make_client(api, admin_h)
    created = create_request(api, auth("client_user", "u", client["id"]), purchase_body())
    return {"client": client["id"], "request": created["id"], "task": created["task_ids"][0]}


def _call(api, headers, method, path, body, ids):
    if body is not None:
        body = {k: (v.format(**ids) if isinstance(v, str) else v) for k, v in body.items()}
    return api.request(method, path.format(**ids), json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), BROKER_ROUTES + VENDOR_SYNC_ROUTES)
@pytest.mark.parametrize(
    ("role", "sub"),
    [
        ("service", "svc:intake"),
        ("service", "svc:unknown"),
        ("admin", "admin-1"),
        ("technician", "tech-1"),
        ("client_admin", "c"),
    ],
)
def test_other_callers_get_403(api, auth, world, method, path, body, role, sub):
    allowed = "svc:secrets_broker" if (method, path, body) in BROKER_ROUTES else "svc:vendor_sync"
    headers = auth(role, sub, world["client"] if role == "client_admin" else None)
    assert _call(api, headers, method, path, body, world).status_code == 403
    # The other allowlisted service is refused too: the allowlist is per route, not per role.
    other = "svc:vendor_sync" if allowed == "svc:secrets_broker" else "svc:secrets_broker"
    assert _call(api, auth("service", other), method, path, body, world).status_code == 403
    assert _call(api, auth("service", allowed), method, path, body, world).status_code in (200, 201)


def test_no_token_is_401(api, world):
    assert api.get(f"/internal/tasks/{world['task']}/authorization").status_code == 401


def test_authorization_view_shape(api, admin_h, tech_h, broker_h, world):
    assert assign(api, tech_h, world["task"], "tech-1").status_code == 200
    assert move(api, tech_h, world["task"], "in_progress").status_code == 200
    view = api.get(f"/internal/tasks/{world['task']}/authorization", headers=broker_h).json()
    assert set(view) == {
        "task_id",
        "status",
        "assignee",
        "assigned_by",
        "client_id",
        "client_status",
        "scope",
        "approvals",
        "updated_at",
    }
    assert (
        view["task_id"],
        view["status"],
        view["assignee"],
        view["assigned_by"],
        view["client_id"],
        view["client_status"],
    ) == (world["task"], "in_progress", "tech-1", "tech-1", world["client"], "active")
    assert set(view["scope"]) == {"credential_categories", "vendor_account_ids", "credential_ids"}


def test_authorization_view_of_a_missing_task_is_404(api, broker_h):
    response = api.get(f"/internal/tasks/{uuid.uuid4()}/authorization", headers=broker_h)
    assert response.status_code == 404


def test_updated_at_changes_on_every_status_and_assignee_change(api, admin_h, tech_h, broker_h, world):
    def updated() -> str:
        return api.get(f"/internal/tasks/{world['task']}/authorization", headers=broker_h).json()["updated_at"]

    seen = [updated()]
    steps = [
        lambda: assign(api, tech_h, world["task"], "tech-1"),
        lambda: move(api, tech_h, world["task"], "in_progress"),
        lambda: assign(api, admin_h, world["task"], "tech-2"),
        lambda: move(api, admin_h, world["task"], "on_hold"),
        lambda: move(api, admin_h, world["task"], "in_progress"),
    ]
    for step in steps:
        assert step().status_code == 200
        seen.append(updated())
    assert seen == sorted(set(seen))  # strictly increasing


def test_authorization_list_filters_by_assignee_and_status(api, admin_h, tech_h, broker_h, world, auth):
    assert assign(api, tech_h, world["task"], "tech-1").status_code == 200
    assert move(api, tech_h, world["task"], "in_progress").status_code == 200
    page = api.get(
        "/internal/tasks", params={"assignee": "tech-1", "status": "in_progress", "limit": 200}, headers=broker_h
    ).json()
    assert world["task"] in [v["task_id"] for v in page["items"]]
    assert all(v["assignee"] == "tech-1" and v["status"] == "in_progress" for v in page["items"])
    none = api.get("/internal/tasks", params={"assignee": "nobody-" + uuid.uuid4().hex}, headers=broker_h).json()
    assert none == {"items": [], "next_cursor": None}


def test_request_detail_has_the_typed_body(api, vs_h, world):
    detail = api.get(f"/internal/requests/{world['request']}", headers=vs_h).json()
    assert detail["id"] == world["request"]
    assert detail["task_ids"] == [world["task"]]
    assert detail["created_by"] == "u"
    assert detail["body"] == {**purchase_body(), "supplier": purchase_body()["supplier"]}


def test_system_task_starts_new_without_request(api, admin_h, auth, vs_h, world, sql):
    vendor_account = str(uuid.uuid4())
    task = system_task(
        api,
        vs_h,
        world["client"],
        type="drift_review",
        title="DNS drift on acme.example",
        vendor_account_ids=[vendor_account],
        credential_categories=["dns_host"],
    )
    assert task["status"] == "new"
    assert task["request_id"] is None
    assert task["scope"] == {
        "credential_categories": ["dns_host"],
        "vendor_account_ids": [vendor_account],
        "credential_ids": [],
    }
    assert outbox(sql, world["client"])[-1] == (
        "task.created",
        {"task_id": task["id"], "request_id": None, "status": "new"},
    )
    # The client sees it, without internal notes.
    client_view = get_task(api, auth("client_user", "u", world["client"]), task["id"])
    assert "internal_notes" not in client_view


def test_system_task_dedupe_key_returns_the_same_task(api, vs_h, world, sql):
    body = {"client_id": world["client"], "type": "provisioning", "title": "Provision", "dedupe_key": "job-42"}
    first = api.post("/internal/tasks", json=body, headers=vs_h)
    again = api.post("/internal/tasks", json=body, headers=vs_h)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert [t for t, _ in outbox(sql, world["client"])].count("task.created") == 2  # the request's and this one


def test_system_task_for_a_missing_or_inactive_client(api, admin_h, vs_h, world):
    response = api.post(
        "/internal/tasks", json={"client_id": str(uuid.uuid4()), "type": "drift_review", "title": "x"}, headers=vs_h
    )
    assert response.status_code == 404
    api.patch(f"/v1/clients/{world['client']}", json={"status": "inactive"}, headers=admin_h)
    response = api.post(
        "/internal/tasks", json={"client_id": world["client"], "type": "drift_review", "title": "x"}, headers=vs_h
    )
    assert response.status_code == 409


def test_steps_are_appended_and_visible_to_the_client(api, auth, vs_h, world):
    for name, status in (("create mx records", "succeeded"), ("verify", "failed")):
        response = api.post(
            f"/internal/tasks/{world['task']}/steps",
            json={"name": name, "status": status, "human": False, "detail": f"{name} detail", "idempotency_key": name},
            headers=vs_h,
        )
        assert response.status_code == 201
        assert response.json()["name"] == name
    steps = get_task(api, auth("client_user", "u", world["client"]), world["task"])["steps"]
    assert [(s["name"], s["status"], s["detail"]) for s in steps] == [
        ("create mx records", "succeeded", "create mx records detail"),
        ("verify", "failed", "verify detail"),
    ]


def test_step_on_a_missing_task_is_404(api, vs_h):
    body = {"name": "x", "status": "failed", "human": False, "idempotency_key": "x"}
    response = api.post(f"/internal/tasks/{uuid.uuid4()}/steps", json=body, headers=vs_h)
    assert response.status_code == 404


def test_client_status_is_read_by_the_broker_and_vendor_sync(api, admin_h, broker_h, vs_h, world):
    for headers in (broker_h, vs_h):
        response = api.get(f"/internal/clients/{world['client']}", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"id": world["client"], "status": "active"}
    assert api.patch(f"/v1/clients/{world['client']}", json={"status": "closed"}, headers=admin_h).status_code == 200
    # Read live: the next answer already says closed.
    assert api.get(f"/internal/clients/{world['client']}", headers=broker_h).json()["status"] == "closed"


def test_client_status_of_an_unknown_client_is_404(api, vs_h):
    response = api.get(f"/internal/clients/{uuid.uuid4()}", headers=vs_h)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("role", "sub"),
    [
        ("service", "svc:intake"),
        ("service", "svc:unknown"),
        ("admin", "admin-1"),
        ("technician", "tech-1"),
        ("client_admin", "c"),
    ],
)
def test_client_status_refuses_other_callers(api, auth, world, role, sub):
    headers = auth(role, sub, world["client"] if role == "client_admin" else None)
    response = api.get(f"/internal/clients/{world['client']}", headers=headers)
    assert (response.status_code, response.json()["error"]) == (403, "forbidden")
    assert "status" not in response.json()
