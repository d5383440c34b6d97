"""Provisioning at intake: vendor_sync's claim, its step reports moving the task, a person's retry, the
credentials it adds to a task's scope (checked at the real broker), and the relay's routes to vendor_sync.

Real PostgreSQL inside the test's rolled-back transaction. The scope cases run the real broker and
vendor_sync registry over HTTP (the live intake they ask shares the test's transaction, as in
test_schemathesis.py); every refusal is shown to change no row and write no event.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from intake_factories import (
    assign,
    client_state,
    create_request,
    events,
    get_task,
    isp_body,
    make_client,
    make_staff,
    move,
    purchase_body,
    spam_body,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "secrets_broker"))
import broker_fixtures

broker_app = broker_fixtures.broker_app
broker_live = broker_fixtures.broker_live

VS = "svc:vendor_sync"
Headers = dict[str, str]
TASK_EVENTS = ("task.assigned", "task.status_changed", "task.scope_changed", "provisioning.step_reported")


# ---- helpers -----------------------------------------------------------------------------------------


def decide(api, headers: Headers, approval_id: str, decision: str = "approved") -> None:
    response = api.post(f"/v1/approvals/{approval_id}/decision", json={"decision": decision}, headers=headers)
    assert response.status_code == 200, response.text


def claim(api, headers: Headers, task_id: str) -> Any:
    return api.post(f"/internal/tasks/{task_id}/claim", headers=headers)


def report(api, vs_h: Headers, task_id: str, name: str, status: str, key: str, **extra: Any) -> Any:
    body = {"name": name, "status": status, "human": False, "idempotency_key": key, **extra}
    return api.post(f"/internal/tasks/{task_id}/steps", json=body, headers=vs_h)


def retry(api, headers: Headers, task_id: str) -> Any:
    return api.post(f"/v1/tasks/{task_id}/provisioning/retry", headers=headers)


def set_status(sql, task_id: str, status: str, assignee: str | None = None) -> None:
    sql("UPDATE intake.tasks SET status = :s, assignee = :a WHERE id = :i", s=status, a=assignee, i=task_id)


def task_events(sql, client_id: str) -> list[tuple[str, dict[str, Any]]]:
    return events(sql, client_id, *TASK_EVENTS)


@pytest.fixture
def spam(api, admin_h, auth) -> Callable[..., dict[str, Any]]:
    """Factory: a client's spam-filter task, approved by its client_admin, so `ready` (or another request type)."""

    def _make(body: dict[str, Any] | None = None, client: dict[str, Any] | None = None) -> dict[str, Any]:
        client = client or make_client(api, admin_h)
        user = auth("client_user", "u", client["id"])
        task_id = create_request(api, user, body or spam_body())["task_ids"][0]
        approver = auth("client_admin", "boss", client["id"])
        for approval in get_task(api, admin_h, task_id)["approvals"]:
            decide(api, approver, approval["id"])
        return {"client": client["id"], "task": task_id, "user": user}

    return _make


# ---- claim ---------------------------------------------------------------------------------------------


def test_claim_takes_a_ready_task_for_vendor_sync_with_the_usual_events(api, admin_h, vs_h, broker_h, spam, sql):
    world = spam()
    before = get_task(api, admin_h, world["task"])
    assert (before["status"], before["assignee"]) == ("ready", None)
    seen = len(task_events(sql, world["client"]))

    response = claim(api, vs_h, world["task"])

    assert response.status_code == 200, response.text
    task = response.json()
    assert (task["status"], task["assignee"], task["assigned_by"]) == ("in_progress", VS, VS)
    assert task == get_task(api, admin_h, world["task"])
    assert task["updated_at"] > before["updated_at"]
    assert task_events(sql, world["client"])[seen:] == [
        (
            "task.assigned",
            {"task_id": world["task"], "assignee": VS, "previous_assignee": None, "assigned_by": VS, "status": "ready"},
        ),
        ("task.status_changed", {"task_id": world["task"], "from": "ready", "to": "in_progress", "assignee": VS}),
    ]
    # The broker's live view says who holds it: service releases for provisioning are decided on it.
    view = api.get(f"/internal/tasks/{world['task']}/authorization", headers=broker_h).json()
    assert (view["status"], view["assignee"]) == ("in_progress", VS)


def test_claim_is_idempotent_for_vendor_sync(api, vs_h, spam, sql):
    world = spam()
    first = claim(api, vs_h, world["task"])
    assert first.status_code == 200, first.text
    state = client_state(sql, world["client"])

    again = claim(api, vs_h, world["task"])

    assert (again.status_code, again.json()) == (200, first.json())
    assert client_state(sql, world["client"]) == state  # no second event, nothing touched


def test_claim_takes_an_unassigned_on_hold_task(api, vs_h, spam, sql):
    world = spam()
    set_status(sql, world["task"], "on_hold")
    seen = len(task_events(sql, world["client"]))
    response = claim(api, vs_h, world["task"])
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["assignee"]) == ("in_progress", VS)
    assert [(t, d.get("from")) for t, d in task_events(sql, world["client"])[seen:]] == [
        ("task.assigned", None),
        ("task.status_changed", "on_hold"),
    ]


@pytest.mark.parametrize(
    ("status", "assignee", "allowed"),
    [
        ("new", None, ["awaiting_approval", "ready", "cancelled"]),
        ("awaiting_approval", None, ["cancelled"]),
        ("in_progress", "tech-1", ["on_hold", "done", "cancelled"]),
        ("done", VS, []),
        ("rejected", None, []),
        ("cancelled", None, []),
    ],
)
def test_claim_from_any_other_status_is_invalid_transition_and_changes_nothing(
    api, vs_h, spam, sql, status, assignee, allowed
):
    world = spam()
    set_status(sql, world["task"], status, assignee)
    state = client_state(sql, world["client"])

    response = claim(api, vs_h, world["task"])

    assert response.status_code == 409, response.text
    assert response.json() == {
        "error": "invalid_transition",
        "detail": f"cannot move a task from {status} to in_progress",
        "current_status": status,
        "allowed": allowed,
    }
    assert client_state(sql, world["client"]) == state


def test_claim_never_takes_a_task_from_a_person(api, vs_h, tech_h, spam, sql):
    world = spam()
    assert assign(api, tech_h, world["task"], "tech-1").status_code == 200
    state = client_state(sql, world["client"])
    response = claim(api, vs_h, world["task"])
    assert (response.status_code, response.json()) == (
        409,
        {
            "error": "conflict",
            "detail": "the task is held by tech-1; only an admin may reassign it",
            "field": "assignee",
            "current_status": "ready",
        },
    )
    assert client_state(sql, world["client"]) == state


@pytest.mark.parametrize("body", [purchase_body(), isp_body()], ids=["purchase", "isp_account_setup"])
def test_claim_of_a_type_that_is_not_provisioned_is_409_naming_the_type(api, vs_h, spam, sql, body):
    world = spam(body)
    task = get_task(api, world["user"], world["task"])
    assert task["status"] == "ready"
    state = client_state(sql, world["client"])
    response = claim(api, vs_h, world["task"])
    assert (response.status_code, response.json()) == (
        409,
        {
            "error": "conflict",
            "detail": f"a {task['type']} task is not provisioned at vendors",
            "field": "type",
            "current_status": "ready",
        },
    )
    assert client_state(sql, world["client"]) == state


def test_claim_for_an_inactive_client_is_409_naming_the_client(api, vs_h, spam, sql):
    world = spam()
    # Set underneath: leaving `active` through the API cancels the task first.
    sql("UPDATE intake.clients SET status = 'inactive' WHERE id = :c", c=world["client"])
    state = client_state(sql, world["client"])
    response = claim(api, vs_h, world["task"])
    assert (response.status_code, response.json()["error"], response.json()["field"]) == (409, "conflict", "client_id")
    assert client_state(sql, world["client"]) == state


def test_claim_of_a_missing_task_is_404(api, vs_h):
    response = claim(api, vs_h, str(uuid.uuid4()))
    assert (response.status_code, response.json()) == (404, {"error": "not_found", "detail": "task not found"})


@pytest.mark.parametrize(
    ("role", "sub"),
    [
        ("service", "svc:secrets_broker"),
        ("service", "svc:intake"),
        ("technician", "tech-1"),
        ("admin", "admin-1"),
        ("client_admin", "boss"),
    ],
)
def test_claim_by_anyone_but_vendor_sync_is_403_and_changes_nothing(api, auth, spam, sql, role, sub):
    world = spam()
    state = client_state(sql, world["client"])
    headers = auth(role, sub, world["client"] if role.startswith("client") else None)
    response = claim(api, headers, world["task"])
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"
    assert client_state(sql, world["client"]) == state


# ---- steps ---------------------------------------------------------------------------------------------


@pytest.fixture
def claimed(api, vs_h, spam) -> dict[str, Any]:
    """A spam-filter task claimed by vendor_sync."""
    world = spam()
    assert claim(api, vs_h, world["task"]).status_code == 200
    return world


def test_the_last_worker_success_moves_the_task_to_done(api, admin_h, vs_h, claimed, sql):
    task_id = claimed["task"]
    seen = len(task_events(sql, claimed["client"]))
    # The plan first, then each outcome under the step's name: the task shows each step once.
    for name in ("Domain at MailChannels", "MX records at Cloudflare"):
        assert report(api, vs_h, task_id, name, "pending", f"plan:{name}").status_code == 201
    first = report(api, vs_h, task_id, "Domain at MailChannels", "succeeded", "done:domain", detail="created")
    assert first.status_code == 201, first.text
    assert get_task(api, admin_h, task_id)["status"] == "in_progress"  # one step still to go

    last = report(api, vs_h, task_id, "MX records at Cloudflare", "succeeded", "done:mx", detail="replaced mx.old")

    assert last.status_code == 201, last.text
    task = get_task(api, admin_h, task_id)
    assert (task["status"], task["assignee"]) == ("done", VS)  # done keeps who did the work
    assert [(s["name"], s["status"], s["detail"]) for s in task["steps"]] == [
        ("Domain at MailChannels", "succeeded", "created"),
        ("MX records at Cloudflare", "succeeded", "replaced mx.old"),
    ]
    [domain, mx] = (s["id"] for s in task["steps"])
    assert [(t, d.get("step_id"), d.get("status"), d.get("to")) for t, d in task_events(sql, claimed["client"])][
        seen:
    ] == [
        ("provisioning.step_reported", domain, "pending", None),
        ("provisioning.step_reported", mx, "pending", None),
        ("provisioning.step_reported", domain, "succeeded", None),
        ("provisioning.step_reported", mx, "succeeded", None),
        ("task.status_changed", None, None, "done"),
    ]
    assert task_events(sql, claimed["client"])[-1] == (
        "task.status_changed",
        {"task_id": task_id, "from": "in_progress", "to": "done", "assignee": VS},
    )
    # The request follows its only task.
    [(request_status,)] = sql(
        "SELECT r.status FROM intake.requests r JOIN intake.tasks t ON t.request_id = r.id WHERE t.id = :i", i=task_id
    )
    assert request_status == "done"


def test_a_failed_step_puts_the_task_on_hold_unassigned_with_its_error(api, admin_h, vs_h, claimed, sql):
    task_id = claimed["task"]
    assert report(api, vs_h, task_id, "Domain at MailChannels", "pending", "plan:domain").status_code == 201
    error = "MailChannels answered 409: the domain belongs to another customer"

    response = report(api, vs_h, task_id, "Domain at MailChannels", "failed", "done:domain", detail=error)

    assert response.status_code == 201, response.text
    task = get_task(api, admin_h, task_id)
    assert (task["status"], task["assignee"], task["assigned_by"]) == ("on_hold", None, VS)
    [step] = task["steps"]
    assert (step["id"], step["status"], step["detail"]) == (response.json()["id"], "failed", error)
    [note] = [n for n in task["internal_notes"] if n["kind"] == "provisioning"]
    assert note["author"] == VS
    assert f"step 'Domain at MailChannels' failed: {error}" in note["body"]
    assert task_events(sql, claimed["client"])[-3:] == [
        ("provisioning.step_reported", {"task_id": task_id, "step_id": step["id"], "status": "failed", "human": False}),
        ("task.status_changed", {"task_id": task_id, "from": "in_progress", "to": "on_hold", "assignee": VS}),
        (
            "task.assigned",
            {"task_id": task_id, "assignee": None, "previous_assignee": VS, "assigned_by": VS, "status": "on_hold"},
        ),
    ]
    # Events carry ids and statuses only: never the step's name or its error.
    assert all(error not in str(d) and "MailChannels" not in str(d) for _, d in task_events(sql, claimed["client"]))


def test_human_steps_never_move_the_task(api, admin_h, vs_h, claimed):
    task_id = claimed["task"]
    for status in ("pending", "failed", "succeeded"):
        body = {"name": f"Check with the client ({status})", "status": status, "human": True, "idempotency_key": status}
        assert api.post(f"/internal/tasks/{task_id}/steps", json=body, headers=vs_h).status_code == 201
    task = get_task(api, admin_h, task_id)
    # Only human steps: nothing a worker did says the work is over.
    assert (task["status"], task["assignee"]) == ("in_progress", VS)


def test_a_success_stands_and_a_repeated_report_applies_once(api, admin_h, vs_h, claimed, sql):
    task_id = claimed["task"]
    for name in ("one", "two"):
        assert report(api, vs_h, task_id, name, "pending", f"plan:{name}").status_code == 201
    done = report(api, vs_h, task_id, "one", "succeeded", "done:one", detail="ok")
    assert done.status_code == 201
    state = client_state(sql, claimed["client"])
    # The same report again (a lost answer), and a stale run's failure of a step that succeeded.
    again = report(api, vs_h, task_id, "one", "failed", "done:one", detail="changed")
    stale = report(api, vs_h, task_id, "one", "failed", "stale:one", detail="from an old run")
    assert (again.status_code, again.json()) == (200, done.json())
    assert (stale.status_code, stale.json()) == (200, done.json())
    assert client_state(sql, claimed["client"]) == state
    assert get_task(api, admin_h, task_id)["status"] == "in_progress"
    # A key of the plan repeated answers with the step as it stands now, and changes nothing either.
    replay = report(api, vs_h, task_id, "one", "pending", "plan:one")
    assert (replay.status_code, replay.json()["status"]) == (200, "succeeded")
    assert client_state(sql, claimed["client"]) == state


def test_a_report_on_a_task_provisioning_does_not_hold_moves_nothing(api, admin_h, tech_h, vs_h, spam):
    world = spam()
    assert assign(api, tech_h, world["task"], "tech-1").status_code == 200
    assert move(api, tech_h, world["task"], "in_progress").status_code == 200
    assert report(api, vs_h, world["task"], "x", "failed", "x").status_code == 201
    assert report(api, vs_h, world["task"], "y", "succeeded", "y").status_code == 201
    task = get_task(api, admin_h, world["task"])
    assert (task["status"], task["assignee"]) == ("in_progress", "tech-1")


# ---- retry ---------------------------------------------------------------------------------------------


@pytest.fixture
def held(api, vs_h, claimed) -> dict[str, Any]:
    """A claimed spam-filter task whose first step failed: on hold, unassigned."""
    assert report(api, vs_h, claimed["task"], "Domain", "pending", "plan:domain").status_code == 201
    assert report(api, vs_h, claimed["task"], "MX", "pending", "plan:mx").status_code == 201
    assert report(api, vs_h, claimed["task"], "Domain", "failed", "run1:domain", detail="500").status_code == 201
    return claimed


@pytest.mark.parametrize("who", ["admin", "technician"])
def test_retry_hands_an_on_hold_task_back_to_provisioning(api, admin_h, tech_h, vs_h, held, sql, who):
    headers = admin_h if who == "admin" else tech_h
    sub = "admin-1" if who == "admin" else "tech-1"
    task_id = held["task"]

    response = retry(api, headers, task_id)

    assert response.status_code == 202, response.text
    assert (response.json()["status"], response.json()["assignee"]) == ("ready", None)
    assert task_events(sql, held["client"])[-1] == (
        "task.status_changed",
        {"task_id": task_id, "from": "on_hold", "to": "ready", "assignee": None},
    )
    [note] = [n for n in get_task(api, admin_h, task_id)["internal_notes"] if n["author"] == sub]
    assert (note["kind"], note["body"]) == (
        "provisioning",
        f"Provisioning retried by {sub}: the task is ready again and its unfinished steps run again.",
    )

    # Provisioning starts again: it claims the task and re-runs only the unfinished steps.
    assert claim(api, vs_h, task_id).status_code == 200
    assert report(api, vs_h, task_id, "Domain", "succeeded", "run2:domain", detail="created").status_code == 201
    assert report(api, vs_h, task_id, "MX", "succeeded", "run2:mx").status_code == 201
    task = get_task(api, admin_h, task_id)
    assert task["status"] == "done"
    assert [(s["name"], s["status"]) for s in task["steps"]] == [("Domain", "succeeded"), ("MX", "succeeded")]


def test_retry_of_a_task_a_person_holds(api, admin_h, tech_h, tech2_h, held, sql):
    task_id = held["task"]
    assert assign(api, admin_h, task_id, "tech-1").status_code == 200
    state = client_state(sql, held["client"])
    # Another technician may not take it away from its holder.
    response = retry(api, tech2_h, task_id)
    assert (response.status_code, response.json()) == (
        403,
        {"error": "forbidden", "detail": "only the assignee or an admin may retry provisioning of this task"},
    )
    assert client_state(sql, held["client"]) == state
    # Its holder may: the task is then unassigned (the broker revokes on `task.assigned`), then ready.
    assert retry(api, tech_h, task_id).status_code == 202
    assert [(t, d.get("assignee"), d.get("to")) for t, d in task_events(sql, held["client"])[-2:]] == [
        ("task.assigned", None, None),
        ("task.status_changed", None, "ready"),
    ]


def test_retry_by_a_technician_of_other_clients_is_404(api, admin_h, auth, held, sql):
    other = make_client(api, admin_h, name="Other")
    sub = make_staff(api, admin_h, client_ids=[other["id"]])["sub"]
    state = client_state(sql, held["client"])
    response = retry(api, auth("technician", sub, staff=False), held["task"])
    assert (response.status_code, response.json()) == (404, {"error": "not_found", "detail": "task not found"})
    assert client_state(sql, held["client"]) == state


@pytest.mark.parametrize(
    ("status", "assignee", "allowed"),
    [
        ("ready", None, ["in_progress", "cancelled"]),
        ("in_progress", VS, ["on_hold", "done", "cancelled"]),
        ("awaiting_approval", None, ["cancelled"]),
        ("done", VS, ["ready"]),  # an admin may reopen it through /transition, never through a retry
        ("cancelled", None, ["ready"]),
    ],
)
def test_retry_from_any_other_status_is_409_naming_it(api, admin_h, spam, sql, status, assignee, allowed):
    world = spam()
    set_status(sql, world["task"], status, assignee)
    state = client_state(sql, world["client"])
    response = retry(api, admin_h, world["task"])
    assert (response.status_code, response.json()) == (
        409,
        {
            "error": "invalid_transition",
            "detail": f"only an on_hold task can be retried; this one is {status}",
            "current_status": status,
            "allowed": allowed,
        },
    )
    assert client_state(sql, world["client"]) == state


def test_retry_of_a_type_that_is_not_provisioned_is_409_naming_the_type(api, admin_h, spam, sql):
    world = spam(purchase_body())
    set_status(sql, world["task"], "on_hold")
    state = client_state(sql, world["client"])
    response = retry(api, admin_h, world["task"])
    assert (response.status_code, response.json()) == (
        409,
        {
            "error": "conflict",
            "detail": "a purchase task is not provisioned at vendors",
            "field": "type",
            "current_status": "on_hold",
        },
    )
    assert client_state(sql, world["client"]) == state


@pytest.mark.parametrize(
    ("role", "sub"),
    [("client_admin", "boss"), ("client_user", "u"), ("service", VS), ("service", "svc:secrets_broker")],
)
def test_retry_by_client_roles_and_services_is_403(api, auth, held, sql, role, sub):
    state = client_state(sql, held["client"])
    headers = auth(role, sub, held["client"] if role.startswith("client") else None)
    response = retry(api, headers, held["task"])
    assert (response.status_code, response.json()["error"]) == (403, "forbidden")
    assert client_state(sql, held["client"]) == state


def test_the_workflow_offers_the_retry_edge_to_provisioning_alone():
    from intake.tasks.workflow import ALLOWED, TRANSITIONS, Actor, Rule, reachable

    assert TRANSITIONS[("on_hold", "ready")] is Rule.PROVISIONING_RETRY
    assert ALLOWED[Rule.PROVISIONING_RETRY] == frozenset({Actor.PROVISIONING})
    for actor in (Actor.ADMIN, Actor.ASSIGNEE, Actor.SYSTEM, Actor.APPROVAL):
        assert "ready" not in reachable("on_hold", actor)


# ---- the relay's routes to vendor_sync -------------------------------------------------------------------


def test_creations_and_status_changes_are_routed_to_vendor_syncs_provisioning():
    from intake.events import NOTIFY_TASK_CREATED, NOTIFY_TASK_STATUS_CHANGED, PSA_PUSH, QUEUE, ROUTES

    ready = ("vendor_sync.events.task_ready", "vendor_sync")
    assert ROUTES["task.created"] == [(NOTIFY_TASK_CREATED, QUEUE), ready, (PSA_PUSH, QUEUE)]
    assert ROUTES["task.status_changed"] == [
        ("secrets_broker.events.task_status_changed", "secrets_broker"),
        (NOTIFY_TASK_STATUS_CHANGED, QUEUE),
        ready,
        (PSA_PUSH, QUEUE),
    ]
    # Nothing else goes to provisioning: it starts only on a task that is (or becomes) ready.
    assert [t for t, routes in ROUTES.items() if ready in routes] == ["task.created", "task.status_changed"]


# ---- POST /internal/tasks/{id}/scope: credentials vendor_sync stored, checked at the real broker ---------


@pytest.fixture(scope="module")
def registry(vendor_sync_live, auth):
    """An admin client of the live vendor_sync registry."""
    with httpx.Client(base_url=vendor_sync_live, headers=auth("admin", "prov-vs-admin"), timeout=10) as http:
        yield http


def spam_account(registry, client_id: str) -> str:
    """A fresh MailChannels vendor and the client's account there (request expansion scopes it)."""
    vendor = registry.post(
        "/v1/vendors",
        json={"name": f"MailChannels {uuid.uuid4().hex[:8]}", "kind": "spam_filter", "adapter": "mailchannels"},
    )
    assert vendor.status_code == 201, vendor.text
    account = registry.post(
        f"/v1/clients/{client_id}/vendor-accounts",
        json={"vendor_id": vendor.json()["id"], "account_number": f"MC-{uuid.uuid4().hex[:8]}"},
    )
    assert account.status_code == 201, account.text
    return str(account.json()["id"])


def store(broker_url: str, headers: Headers, client_id: str, account: str, task_id: str | None) -> str:
    """Store an API key at the broker as `headers` say (vendor_sync names the task it stores it for)."""
    body: dict[str, Any] = {
        "client_id": client_id,
        "vendor_account_id": account,
        "kind": "api_key",
        "owner": "msp",
        "category": "spam_filter",
        "name": "MailChannels API key",
        "username": "msp",
        "secret": f"prov-{uuid.uuid4().hex}",
    }
    if task_id is not None:
        body["task_id"] = task_id
    response = httpx.post(f"{broker_url}/v1/credentials", json=body, headers=headers, timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def provisioning(api, admin_h, auth, vs_h, spam, registry, broker_live) -> Callable[[], dict[str, Any]]:
    """Factory: a client with a MailChannels account, its claimed spam-filter task, and the key vendor_sync stored."""
    as_vendor_sync = auth("service", VS, aud=["secrets_broker"])

    def _make() -> dict[str, Any]:
        client = make_client(api, admin_h)
        account = spam_account(registry, client["id"])
        world = spam(client=client)
        assert get_task(api, admin_h, world["task"])["scope"]["vendor_account_ids"] == [account]
        assert claim(api, vs_h, world["task"]).status_code == 200
        credential = store(broker_live, as_vendor_sync, client["id"], account, world["task"])
        return {**world, "account": account, "credential": credential}

    return _make


def add(api, headers: Headers, task_id: str, *credential_ids: str) -> Any:
    return api.post(
        f"/internal/tasks/{task_id}/scope", json={"add": {"credential_ids": list(credential_ids)}}, headers=headers
    )


def test_vendor_sync_adds_the_credential_it_stored_for_the_task(api, admin_h, vs_h, provisioning, sql):
    world = provisioning()
    task_id, credential = world["task"], world["credential"]
    before = get_task(api, admin_h, task_id)

    response = add(api, vs_h, task_id, credential)

    assert response.status_code == 200, response.text
    task = response.json()
    assert task["scope"]["credential_ids"] == [credential]
    assert task["scope"]["vendor_account_ids"] == before["scope"]["vendor_account_ids"]
    assert task == get_task(api, admin_h, task_id)
    [note] = [n for n in task["internal_notes"] if n["kind"] == "scope"]
    assert (note["author"], note["body"]) == (VS, f"Scope changed by {VS}: added credentials {credential}.")
    event, data = events(sql, world["client"])[-1]
    assert event == "task.scope_changed"
    assert data == {
        "task_id": task_id,
        "added": {"credential_ids": [credential], "vendor_account_ids": [], "credential_categories": []},
        "removed": {"credential_ids": [], "vendor_account_ids": [], "credential_categories": []},
        "scope": {
            "credential_ids": [credential],
            "vendor_account_ids": before["scope"]["vendor_account_ids"],
            "credential_categories": ["spam_filter", "dns_host"],
        },
    }
    # Adding it again changes nothing and writes nothing.
    state = client_state(sql, world["client"])
    again = add(api, vs_h, task_id, credential)
    assert (again.status_code, again.json()["scope"]) == (200, task["scope"])
    assert client_state(sql, world["client"]) == state


def _refused(api, vs_h, sql, world, credential: str, detail: str) -> None:
    state = client_state(sql, world["client"])
    response = add(api, vs_h, world["task"], credential)
    field = "add.credential_ids"
    assert (response.status_code, response.json()) == (
        422,
        {
            "error": "validation_error",
            "detail": f"{field}: {credential} {detail}",
            "field": field,
            "errors": [{"field": field, "detail": f"{field}: {credential} {detail}"}],
        },
    )
    assert client_state(sql, world["client"]) == state


def test_another_clients_credential_is_refused(api, vs_h, provisioning, sql):
    mine, theirs = provisioning(), provisioning()
    _refused(api, vs_h, sql, mine, theirs["credential"], "is not a credential of the task's client")


def test_an_unknown_credential_is_refused_as_another_clients(api, vs_h, provisioning, sql):
    world = provisioning()
    _refused(api, vs_h, sql, world, str(uuid.uuid4()), "is not a credential of the task's client")


def test_a_credential_stored_by_someone_else_is_refused(api, vs_h, auth, provisioning, broker_live, sql):
    world = provisioning()
    by_admin = store(broker_live, auth("admin", "prov-admin"), world["client"], world["account"], None)
    _refused(api, vs_h, sql, world, by_admin, "was not stored by vendor_sync")


def test_a_credential_stored_for_another_task_is_refused(api, admin_h, vs_h, spam, provisioning, sql):
    world = provisioning()
    # A second task of the same client, also claimed: its key is the same client's, by vendor_sync.
    second = spam(client={"id": world["client"]})
    assert claim(api, vs_h, second["task"]).status_code == 200
    _refused(api, vs_h, sql, second, world["credential"], "was stored for another task")


def test_every_refusal_is_listed_and_nothing_is_added(api, vs_h, auth, provisioning, broker_live, sql):
    world = provisioning()
    by_admin = store(broker_live, auth("admin", "prov-admin"), world["client"], world["account"], None)
    unknown = str(uuid.uuid4())
    state = client_state(sql, world["client"])
    response = add(api, vs_h, world["task"], world["credential"], by_admin, unknown)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"field": "add.credential_ids", "detail": f"add.credential_ids: {by_admin} was not stored by vendor_sync"},
        {
            "field": "add.credential_ids",
            "detail": f"add.credential_ids: {unknown} is not a credential of the task's client",
        },
    ]
    assert client_state(sql, world["client"]) == state  # the good one is not added either


def test_a_closed_tasks_scope_does_not_change(api, vs_h, provisioning, sql):
    world = provisioning()
    set_status(sql, world["task"], "cancelled", VS)
    state = client_state(sql, world["client"])
    response = add(api, vs_h, world["task"], world["credential"])
    assert (response.status_code, response.json()) == (
        409,
        {"error": "conflict", "detail": "a closed task's scope cannot change", "current_status": "cancelled"},
    )
    assert client_state(sql, world["client"]) == state


@pytest.mark.parametrize(
    "body",
    [
        {"add": {"credential_ids": []}},
        {"add": {"vendor_account_ids": [str(uuid.UUID(int=1))], "credential_ids": [str(uuid.UUID(int=2))]}},
        {"add": {"credential_ids": [str(uuid.UUID(int=2))]}, "remove": {"credential_ids": [str(uuid.UUID(int=3))]}},
        {"credential_ids": [str(uuid.UUID(int=2))]},
    ],
    ids=["empty", "vendor-account", "remove", "flat"],
)
def test_anything_but_adding_credentials_is_422(api, vs_h, spam, sql, body):
    world = spam()
    state = client_state(sql, world["client"])
    response = api.post(f"/internal/tasks/{world['task']}/scope", json=body, headers=vs_h)
    assert (response.status_code, response.json()["error"]) == (422, "validation_error")
    assert client_state(sql, world["client"]) == state


@pytest.mark.parametrize(
    ("role", "sub"),
    [("service", "svc:secrets_broker"), ("service", "svc:intake"), ("technician", "tech-1"), ("admin", "admin-1")],
)
def test_scope_by_anyone_but_vendor_sync_is_403(api, auth, spam, sql, role, sub):
    world = spam()
    state = client_state(sql, world["client"])
    response = add(api, auth(role, sub), world["task"], str(uuid.uuid4()))
    assert (response.status_code, response.json()["error"]) == (403, "forbidden")
    assert client_state(sql, world["client"]) == state


def test_the_broker_record_decides_each_rule():
    """The pure check on the broker's record, every branch (a record without a task is taken on the others)."""
    from intake.credentials_client import CredentialInfo
    from intake.tasks.scope import _not_provisioned_for

    client, task, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    def why(info: CredentialInfo | None) -> str | None:
        return _not_provisioned_for(client, task, "c", info)

    assert why(None) == "c is not a credential of the task's client"
    assert why(CredentialInfo(other, VS, task)) == "c is not a credential of the task's client"
    assert why(CredentialInfo(client, "admin-1", task)) == "c was not stored by vendor_sync"
    assert why(CredentialInfo(client, VS, other)) == "c was stored for another task"
    assert why(CredentialInfo(client, VS, task)) is None
    assert why(CredentialInfo(client, VS, None)) is None
