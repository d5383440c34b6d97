"""Need-to-know: a technician of client A gets on client B's ids exactly what a random missing id gets.

One matrix for every intake route a technician may call (`test_every_technician_route_is_in_the_matrix`
finds them in the published schema). A technician limited to A (`client_ids: [A]`) succeeds on A's
objects and gets 404 on B's; one without a staff row, or deactivated, gets 404 on both; the admin
sees all of them, so no 404 here can come from an object that is not there.
"""

from __future__ import annotations

import json
import uuid

import pytest
from intake_factories import (
    assign,
    client_state,
    create_request,
    get_task,
    isp_body,
    make_client,
    make_staff,
    move,
    purchase_body,
    walk,
)

APPROVAL_BODY = {
    "recipient": {"name": "R", "contact_email": "r@r.example", "party_category": "provider_for_client"},
    "information_categories": ["contact_info"],
    "expires_in_s": 600,
}
# (method, path, body, status for a technician of the object's client), in an order A's side can follow:
# {task} awaits approval {approval} of {request}; {ready} is unassigned; {mine} is assigned to the
# technician (on B's side, to tech-1) and has a pending human step {step}; {me} is the caller's sub.
ROUTES = [
    ("GET", "/v1/clients/{client}", None, 200),
    ("GET", "/v1/requests/{request}", None, 200),
    ("GET", "/v1/tasks/{task}", None, 200),
    ("GET", "/v1/approvals/{approval}", None, 200),
    ("POST", "/v1/tasks/{ready}/assign", {"assignee": "{me}"}, 200),
    ("POST", "/v1/tasks/{mine}/notes", {"body": "a note"}, 201),
    ("POST", "/v1/tasks/{mine}/steps/{step}", {"status": "succeeded"}, 200),
    ("POST", "/v1/tasks/{mine}/approvals", APPROVAL_BODY, 201),
    ("POST", "/v1/tasks/{mine}/transition", {"to": "in_progress"}, 200),
    ("POST", "/v1/tasks/{mine}/scope", {"add": {"credential_categories": ["isp"]}}, 403),  # admin only
    ("POST", "/v1/tasks/{task}/provisioning/retry", None, 409),  # an ISP setup is no provisioning
]
# Lists: a filter naming B's client is the 404 of a missing client; one naming B's task is an empty
# page; unfiltered ones are walked to their last page.
MISSING_CLIENT = {"error": "not_found", "detail": "client not found"}
FILTERED = [
    ("/v1/tasks", {"client_id": "{client}"}),
    ("/v1/requests", {"client_id": "{client}"}),
    ("/v1/approvals", {"client_id": "{client}"}),
    ("/v1/approvals", {"task_id": "{task}"}),
]
WALKED = [("/v1/tasks", "task"), ("/v1/requests", "request"), ("/v1/approvals", "approval"), ("/v1/clients", "client")]
KEYS = ("client", "request", "task", "approval", "ready", "mine", "step")


def _side(api, admin_h, auth, vs_h, client_id, worker):
    """A client's objects: an awaiting task, its approval and request, a ready task, and `worker`'s task with a step."""
    user = auth("client_user", f"user-{client_id}", client_id)
    request = create_request(api, user, isp_body())
    task = request["task_ids"][0]
    ready = create_request(api, user, purchase_body())["task_ids"][0]
    mine = create_request(api, user, purchase_body())["task_ids"][0]
    assert assign(api, admin_h, mine, worker).status_code == 200
    step = api.post(
        f"/internal/tasks/{mine}/steps",
        json={"name": "Order the line", "status": "pending", "human": True, "idempotency_key": "order"},
        headers=vs_h,
    )
    assert step.status_code == 201, step.text
    approval = get_task(api, admin_h, task)["approvals"][0]["id"]
    ids = {"client": client_id, "request": request["id"], "task": task, "approval": approval}
    return {**ids, "ready": ready, "mine": mine, "step": step.json()["id"]}


@pytest.fixture
def world(api, admin_h, auth, vs_h):
    """Clients A and B with the same objects, and a technician limited to A (staff row made through the API)."""
    a = make_client(api, admin_h, name="A")["id"]
    b = make_client(api, admin_h, name="B")["id"]
    sub = make_staff(api, admin_h, client_ids=[a])["sub"]
    return {
        "a": _side(api, admin_h, auth, vs_h, a, sub),
        "b": _side(api, admin_h, auth, vs_h, b, "tech-1"),
        "sub": sub,
        "tech": auth("technician", sub, staff=False),
    }


def _fill(value, ids):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _call(api, headers, method, path, body, ids):
    return api.request(method, _fill(path, ids), json=_fill(body, ids), headers=headers)


def _masked(response, ids):
    """Status and body with the ids used replaced, so B's answer and a random id's compare byte for byte."""
    content = response.content
    for key in KEYS:
        content = content.replace(ids[key].encode(), f"<{key}>".encode())
    return response.status_code, content


def _random_ids(sub):
    return {**{k: str(uuid.uuid4()) for k in KEYS}, "me": sub}


def _sees_nothing_of(api, headers, ids, sub):
    """Every route and list on `ids` answers as on random ids: 404s, empty pages, nothing of `ids` anywhere."""
    ids = {**ids, "me": sub}
    random_ids = _random_ids(sub)
    for method, path, body, _ in ROUTES:
        foreign = _call(api, headers, method, path, body, ids)
        missing = _call(api, headers, method, path, body, random_ids)
        assert _masked(foreign, ids) == _masked(missing, random_ids), (method, path)
        assert foreign.status_code == 404, (method, path, foreign.text)
    for path, params in FILTERED:
        foreign = api.get(path, params=_fill(params, ids), headers=headers)
        missing = api.get(path, params=_fill(params, random_ids), headers=headers)
        assert _masked(foreign, ids) == _masked(missing, random_ids), (path, params)
        if "client_id" in params:
            assert (foreign.status_code, foreign.json()) == (404, MISSING_CLIENT), (path, params)
        else:
            assert (foreign.status_code, foreign.json()) == (200, {"items": [], "next_cursor": None}), (path, params)
    for path, _ in WALKED:
        content = json.dumps(walk(api, headers, path, limit=3)).encode()
        assert not [k for k in KEYS if ids[k].encode() in content], path


def test_a_technician_of_a_sees_nothing_of_b(api, admin_h, sql, world):
    b = world["b"]
    # The admin sees every one of B's objects: the 404s below are need-to-know, not absence.
    for method, path, _, _ in ROUTES:
        if method == "GET":
            assert _call(api, admin_h, method, path, None, b).status_code == 200, path
    before = client_state(sql, b["client"])
    _sees_nothing_of(api, world["tech"], b, world["sub"])
    assert client_state(sql, b["client"]) == before


def test_a_technician_of_a_works_on_as_objects(api, world):
    a, sub, tech = world["a"], world["sub"], world["tech"]
    for path, key in WALKED:
        assert a[key] in {item["id"] for item in walk(api, tech, path, limit=3)}, path
    for path, params in FILTERED:
        response = api.get(path, params=_fill(params, a), headers=tech)
        assert response.status_code == 200, (path, response.text)
        assert response.json()["items"], (path, params)
    own = {t["id"] for t in walk(api, tech, "/v1/tasks", client_id=a["client"])}
    assert {a["task"], a["ready"], a["mine"]} <= own
    for method, path, body, status in ROUTES:
        response = _call(api, tech, method, path, body, {**a, "me": sub})
        assert response.status_code == status, (method, path, response.text)
    assert get_task(api, tech, a["ready"])["assignee"] == sub
    assert get_task(api, tech, a["mine"])["status"] == "in_progress"


@pytest.mark.parametrize("who", ["no staff row", "deactivated"])
def test_a_technician_without_an_active_staff_row_reads_nothing(api, admin_h, auth, world, who):
    sub = f"tech-{uuid.uuid4().hex[:8]}"
    if who == "deactivated":
        make_staff(api, admin_h, sub=sub, active=False)
    headers = auth("technician", sub, staff=False)
    for side in ("a", "b"):
        _sees_nothing_of(api, headers, world[side], sub)
    for path, _ in WALKED:
        assert walk(api, headers, path) == [], path
        assert walk(api, admin_h, path, limit=200), path


def test_a_closed_task_assigned_to_them_stays_readable_after_losing_its_client(api, admin_h, auth, world, sql):
    """Need-to-know also covers "tasks assigned to them": the work they closed before a client was taken away.

    An open one cannot stay assigned outside their clients: narrowing unassigns it, and assigning it
    is 422 (test_staff_unassign.py). A closed one keeps its assignee, so it is the reachable case.
    """
    a, b, sub, tech = world["a"], world["b"], world["sub"], world["tech"]
    assert api.patch(f"/v1/staff/{sub}", json={"client_ids": None}, headers=admin_h).status_code == 200
    assert assign(api, admin_h, b["ready"], sub).status_code == 200
    assert move(api, tech, b["ready"], "in_progress").status_code == 200
    assert move(api, tech, b["ready"], "done").status_code == 200
    assert api.patch(f"/v1/staff/{sub}", json={"client_ids": [a["client"]]}, headers=admin_h).status_code == 200
    task = get_task(api, tech, b["ready"])
    assert (task["client_id"], task["assignee"], task["status"]) == (b["client"], sub, "done")
    listed = {t["id"] for t in walk(api, tech, "/v1/tasks")}
    assert b["ready"] in listed
    assert not {b["task"], b["mine"]} & listed
    # Nothing else of B's: not its other tasks, its requests (this task's own included), nor a filter on B.
    request_id = get_task(api, admin_h, b["ready"])["request_id"]
    assert api.get(f"/v1/requests/{request_id}", headers=tech).status_code == 404
    response = api.get("/v1/tasks", params={"client_id": b["client"]}, headers=tech)
    assert (response.status_code, response.json()) == (404, MISSING_CLIENT)
    for method, path, body, _ in ROUTES:
        if "{ready}" not in path:
            assert _call(api, tech, method, path, body, {**b, "me": sub}).status_code == 404, path
    # Deactivated, they lose even that.
    assert api.patch(f"/v1/staff/{sub}", json={"active": False}, headers=admin_h).status_code == 200
    assert api.get(f"/v1/tasks/{b['ready']}", headers=tech).status_code == 404


# The matrix's placeholders, as the app names its path parameters.
PARAMS = {"client": "client_id", "request": "request_id", "task": "task_id", "ready": "task_id", "mine": "task_id"}
PARAMS |= {"approval": "approval_id", "step": "step_id"}


def _template(path):
    for key, name in PARAMS.items():
        path = path.replace(f"{{{key}}}", f"{{{name}}}")
    return path


def test_every_technician_route_is_in_the_matrix(api, auth, world):
    """Any route that does not refuse a technician outright (403 whatever the id) must be in the matrix above."""
    headers = world["tech"]
    schema = api.get("/openapi.json").json()
    covered = {(method, _template(path)) for method, path, _, _ in ROUTES}
    covered |= {("GET", path) for path, _ in FILTERED + WALKED}
    # A PSA's signed callback carries no person's token.
    exempt = {("POST", "/v1/webhooks/psa/{provider}")}
    callable_by_technician = set()
    for path, item in schema["paths"].items():
        for method in item:
            concrete = path
            for name in [part[1:-1] for part in path.split("/") if part.startswith("{")]:
                concrete = concrete.replace(f"{{{name}}}", str(uuid.uuid4()))
            response = api.request(method.upper(), concrete, json={}, headers=headers)
            if response.status_code != 403:
                callable_by_technician.add((method.upper(), path))
    assert ("GET", "/v1/tasks/{task_id}") in callable_by_technician  # the probe is not vacuous
    assert callable_by_technician - exempt - covered == set()
