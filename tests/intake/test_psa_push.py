"""PSA out (issue 21, ConnectWise): clients' company ids, the push job, release notes, retries and routing.

The push and the note run against the real PostgreSQL: inside the test's rolled-back transaction where
nothing crosses a process, and with real commits (fresh client ids) where the Celery task itself runs
(retries, attempts, dead letters, two concurrent pushes). ConnectWise is respx with the shared fixtures
(tests/fixtures/connectwise/), as in test_psa_connectwise.py.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient
from intake_factories import (
    assign,
    client_state,
    connectwise_adapter,
    create_request,
    get_task,
    isp_body,
    make_client,
    make_staff,
    move,
    purchase_body,
)
from sqlalchemy import Connection, text
from sqlmodel import Session

Headers = dict[str, str]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "connectwise"
HOST = "api-na.myconnectwise.net"
SITE = f"https://{HOST}"
API = f"{SITE}/v4_6_release/apis/3.0"
TICKETS = f"{API}/service/tickets"
BOARD = "Service Board"
COMPANY = "2"


# --- helpers --------------------------------------------------------------------------------------------


def ticket_json(task_id: Any, **overrides: Any) -> dict[str, Any]:
    """The fixture ticket, on our board and carrying the task's reference."""
    data = json.loads((FIXTURES / "service_ticket.json").read_text())
    data.update(board={"id": 1, "name": BOARD}, externalXRef=str(task_id), owner=None)
    data.update(overrides)
    return data


def status_name(task_status: str) -> str:
    from intake.settings import DEFAULT_PSA_STATUS_MAP

    return DEFAULT_PSA_STATUS_MAP[task_status]


@pytest.fixture
def adapter() -> Iterator[Any]:
    made = connectwise_adapter()
    yield made
    made.close()


@pytest.fixture
def cw() -> Iterator[respx.MockRouter]:
    """respx for ConnectWise only: anything else (the issuer's keys, ...) goes through."""
    with respx.mock(assert_all_called=False) as router:
        router.route(host__regex=rf"^(?!{HOST.replace('.', '[.]')}$)").pass_through()
        yield router


def cw_calls(router: respx.MockRouter, method: str | None = None) -> list[httpx.Request]:
    """Every request that reached the mocked ConnectWise (of one method, when given)."""
    return [
        c.request for c in router.calls if c.request.url.host == HOST and (method is None or c.request.method == method)
    ]


def mock_create(router: respx.MockRouter, task_id: Any, ticket_id: int = 70, **ticket: Any) -> respx.Route:
    """ConnectWise without the task's ticket yet: the lookup finds nothing, the POST makes `ticket_id`."""
    router.get(TICKETS).respond(200, json=[])
    return router.post(TICKETS).respond(201, json=ticket_json(task_id, id=ticket_id, **ticket))


@pytest.fixture
def session(conn: Connection) -> Iterator[Session]:
    """A session in the test's transaction (the API's writes are visible; nothing survives the test)."""
    with Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False) as made:
        yield made


@pytest.fixture
def push(session: Session, adapter: Any) -> Callable[[Any], str]:
    """Run the push job's logic for one task and commit, as the Celery task does."""
    from intake.psa import push as logic
    from intake.settings import get_settings

    def _push(task_id: Any) -> str:
        outcome = logic.push_task(session, adapter=adapter, settings=get_settings(), task_id=uuid.UUID(str(task_id)))
        session.commit()
        return outcome

    return _push


def envelope(type_: str, client_id: Any, **data: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "occurred_at": datetime.now(UTC).isoformat(),
        "client_id": str(client_id),
        "aggregate_id": None,
        "data": {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in data.items()},
    }


def mapped_task(api: TestClient, admin_h: Headers, auth: Callable[..., Headers], body: Any = None) -> tuple[Any, str]:
    """A client mapped to ConnectWise company 2, and one task requested by its user."""
    client = make_client(api, admin_h, psa_company_ids={"connectwise": COMPANY})
    user = auth("client_user", "u", client["id"])
    return client, create_request(api, user, body or purchase_body())["task_ids"][0]


# --- clients' psa_company_ids ---------------------------------------------------------------------------


def test_a_client_is_created_patched_and_read_with_its_psa_company_ids(api: TestClient, admin_h: Headers) -> None:
    client = make_client(api, admin_h, psa_company_ids={"connectwise": "2", "halo": "17"})
    assert client["psa_company_ids"] == {"connectwise": "2", "halo": "17"}
    url = f"/v1/clients/{client['id']}"
    assert api.get(url, headers=admin_h).json()["psa_company_ids"] == {"connectwise": "2", "halo": "17"}
    # Replaced as a whole; a null leaves it; {} unmaps every PSA.
    patched = api.patch(url, json={"psa_company_ids": {"autotask": "0042"}}, headers=admin_h)
    assert patched.status_code == 200, patched.text
    assert patched.json()["psa_company_ids"] == {"autotask": "0042"}
    assert api.patch(url, json={"psa_company_ids": None}, headers=admin_h).json()["psa_company_ids"] == {
        "autotask": "0042"
    }
    assert api.patch(url, json={"psa_company_ids": {}}, headers=admin_h).json()["psa_company_ids"] == {}
    assert api.get(url, headers=admin_h).json()["psa_company_ids"] == {}
    assert make_client(api, admin_h)["psa_company_ids"] == {}


@pytest.mark.parametrize(
    ("ids", "field"),
    [
        ({"jira": "1"}, "psa_company_ids.jira.[key]"),
        ({"none": "1"}, "psa_company_ids.none.[key]"),
        ({"connectwise": ""}, "psa_company_ids.connectwise"),
        ({"connectwise": "Acme Corp"}, "psa_company_ids.connectwise"),
        ({"halo": "x" * 65}, "psa_company_ids.halo"),
        ({"autotask": 42}, "psa_company_ids.autotask"),
        ({"connectwise": "2\u0000"}, "psa_company_ids.connectwise"),
    ],
)
def test_bad_psa_company_ids_are_422_naming_the_field_and_write_nothing(
    api: TestClient, admin_h: Headers, sql: Callable[..., list[Any]], ids: dict[str, Any], field: str
) -> None:
    client = make_client(api, admin_h, psa_company_ids={"connectwise": "2"})
    before = client_state(sql, client["id"])
    patched = api.patch(f"/v1/clients/{client['id']}", json={"psa_company_ids": ids}, headers=admin_h)
    assert patched.status_code == 422, patched.text
    assert [e["field"] for e in patched.json()["errors"]] == [field]
    assert client_state(sql, client["id"]) == before
    count = sql("SELECT count(*) FROM intake.clients")[0][0]
    body = {
        "name": "X",
        "primary_domain": "x.example",
        "approver_emails": ["a@x.example"],
        "purchase_approval_threshold_cents": 0,
        "psa_company_ids": ids,
    }
    created = api.post("/v1/clients", json=body, headers=admin_h)
    assert created.status_code == 422 and created.json()["field"] == field
    assert sql("SELECT count(*) FROM intake.clients")[0][0] == count


# --- the push -------------------------------------------------------------------------------------------


def test_a_mapped_task_gets_one_ticket_carrying_no_client_details(
    api: TestClient, admin_h: Headers, auth: Callable[..., Headers], cw: respx.MockRouter, push: Any
) -> None:
    from intake.settings import get_settings

    client, task_id = mapped_task(api, admin_h, auth, isp_body())
    task = get_task(api, admin_h, task_id)
    create = mock_create(cw, task_id, status={"id": 1, "name": status_name(task["status"])})

    assert push(task_id) == "created"

    raw = create.calls[0].request.content.decode()
    sent = json.loads(raw)
    assert sent == {
        "summary": f"isp_account_setup · task {uuid.UUID(task_id).hex[:8]}",
        "board": {"name": BOARD},
        "company": {"id": 2},
        "status": {"name": status_name(task["status"])},
        "externalXRef": task_id,
        "initialDescription": f"{get_settings().portal_url.rstrip('/')}/tasks/{task_id}",
    }
    # Nothing of the client, its request or its people leaves: no name, domain, address or contact.
    for private in (client["name"], "acme-dental", "FastFiber", "Main Street", "Dana", "217 555", "Business 500"):
        assert private.lower() not in raw.lower()
    shown = get_task(api, admin_h, task_id)["psa"]
    assert shown["provider"] == "connectwise" and shown["ticket_id"] == "70"
    assert "service_recid=70" in shown["ticket_url"]


def test_fifty_deliveries_make_exactly_one_ticket(
    api: TestClient, admin_h: Headers, auth: Callable[..., Headers], cw: respx.MockRouter, push: Any
) -> None:
    _, task_id = mapped_task(api, admin_h, auth)
    create = mock_create(cw, task_id, status={"id": 1, "name": status_name("ready")})
    outcomes = [push(task_id) for _ in range(50)]
    assert outcomes == ["created"] + ["unchanged"] * 49
    assert create.call_count == 1
    assert [r.method for r in cw_calls(cw)] == ["GET", "POST"]


def test_a_ticket_found_by_the_task_id_is_linked_and_brought_up_to_date(
    api: TestClient, admin_h: Headers, auth: Callable[..., Headers], cw: respx.MockRouter, push: Any
) -> None:
    """An attempt whose commit was lost made the ticket: the next push finds it, posts nothing, patches it."""
    _, task_id = mapped_task(api, admin_h, auth)
    cw.get(TICKETS).respond(200, json=[ticket_json(task_id, id=69, status={"id": 9, "name": "Closed"})])
    create = cw.post(TICKETS).respond(201, json=ticket_json(task_id, id=70))
    update = cw.patch(f"{TICKETS}/69").respond(200, json=ticket_json(task_id, id=69))
    assert push(task_id) == "created"
    assert not create.called and update.call_count == 1
    assert json.loads(update.calls[0].request.content)[0]["value"] == {"name": status_name("ready")}
    assert get_task(api, admin_h, task_id)["psa"]["ticket_id"] == "69"


def test_status_and_assignee_changes_patch_the_ticket_once_each(
    api: TestClient, admin_h: Headers, auth: Callable[..., Headers], cw: respx.MockRouter, push: Any
) -> None:
    _, task_id = mapped_task(api, admin_h, auth)
    mock_create(cw, task_id, status={"id": 1, "name": status_name("ready")})
    update = cw.patch(f"{TICKETS}/70").respond(200, json=ticket_json(task_id, id=70))
    assert push(task_id) == "created"
    member = f"m-{uuid.uuid4().hex[:10]}"
    tech = make_staff(api, admin_h, psa_member_ids={"connectwise": member})
    assert assign(api, admin_h, task_id, tech["sub"]).status_code == 200

    assert push(task_id) == "updated"
    assert json.loads(update.calls[-1].request.content) == [
        {"op": "replace", "path": "status", "value": {"name": status_name("ready")}},
        {"op": "replace", "path": "owner", "value": {"identifier": member}},
    ]
    moved = move(api, auth("technician", tech["sub"], staff=False), task_id, "in_progress")
    assert moved.status_code == 200, moved.text
    assert push(task_id) == "updated"
    assert json.loads(update.calls[-1].request.content)[0]["value"] == {"name": "In Progress"}
    # A redelivered (or stale) event pushes the current state, which the ticket already shows.
    assert push(task_id) == "unchanged"
    assert update.call_count == 2
    assert len(cw_calls(cw, "POST")) == 1


def test_an_assignee_without_a_psa_member_leaves_the_ticket_unowned(
    api: TestClient, admin_h: Headers, auth: Callable[..., Headers], cw: respx.MockRouter, push: Any
) -> None:
    _, task_id = mapped_task(api, admin_h, auth)
    tech = make_staff(api, admin_h, psa_member_ids={"halo": "7"})
    assert assign(api, admin_h, task_id, tech["sub"]).status_code == 200
    create = mock_create(cw, task_id, status={"id": 1, "name": status_name("ready")})
    assert push(task_id) == "created"
    assert "owner" not in json.loads(create.calls[0].request.content)


def test_an_unmapped_client_gets_no_ticket_and_one_internal_note(
    api: TestClient,
    admin_h: Headers,
    auth: Callable[..., Headers],
    cw: respx.MockRouter,
    push: Any,
    sql: Callable[..., list[Any]],
) -> None:
    client = make_client(api, admin_h, psa_company_ids={"halo": "17"})
    task_id = create_request(api, auth("client_user", "u", client["id"]), purchase_body())["task_ids"][0]
    assert push(task_id) == "unmapped"
    assert push(task_id) == "unmapped_noted_before"
    assert cw_calls(cw) == []
    notes = [n for n in get_task(api, admin_h, task_id)["internal_notes"] if n["kind"] == "psa_unmapped"]
    assert len(notes) == 1 and "psa_company_ids.connectwise" in notes[0]["body"]
    assert sql("SELECT count(*) FROM intake.task_psa_links WHERE task_id = :t", t=task_id) == [(0,)]
    # Client roles never see it.
    assert "internal_notes" not in get_task(api, auth("client_user", "u", client["id"]), task_id)


def test_a_ticket_is_found_by_psa_ticket_id(
    api: TestClient,
    admin_h: Headers,
    auth: Callable[..., Headers],
    cw: respx.MockRouter,
    push: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from intake.settings import get_settings

    _, task_id = mapped_task(api, admin_h, auth)
    mock_create(cw, task_id, ticket_id=4711, status={"id": 1, "name": status_name("ready")})
    push(task_id)
    monkeypatch.setattr(get_settings(), "psa_provider", "connectwise")
    found = api.get("/v1/tasks", params={"psa_ticket_id": "4711"}, headers=admin_h).json()["items"]
    assert [t["id"] for t in found] == [task_id]
    assert api.get("/v1/tasks", params={"psa_ticket_id": "4712"}, headers=admin_h).json()["items"] == []


# --- release notes --------------------------------------------------------------------------------------


def broker_event(type_: str, client_id: Any, task_id: Any, **data: Any) -> dict[str, Any]:
    """A release event shaped as the broker writes it (release/gate.py: ids, the rule and the actor)."""
    return envelope(type_, client_id, task_id=task_id, credential_id=uuid.uuid4(), actor="tech-secret-sub", **data)


def test_each_release_adds_one_note_with_the_credential_and_rule_only(
    api: TestClient,
    admin_h: Headers,
    auth: Callable[..., Headers],
    cw: respx.MockRouter,
    push: Any,
    session: Session,
    adapter: Any,
) -> None:
    from intake.psa import push as logic

    client, task_id = mapped_task(api, admin_h, auth)
    mock_create(cw, task_id, status={"id": 1, "name": status_name("ready")})
    push(task_id)
    notes = cw.post(f"{TICKETS}/70/notes").respond(201, json={"id": 3, "ticketId": 70})
    granted = broker_event(
        "release.granted", client["id"], task_id, release_id=uuid.uuid4(), recipient_type="technician"
    )
    denied = broker_event("release.denied", client["id"], task_id, rule="out_of_scope")

    for event in (granted, granted, denied, denied, granted):
        logic.add_release_note(session, adapter=adapter, envelope=event)
        session.commit()

    assert notes.call_count == 2
    first, second = (json.loads(c.request.content) for c in notes.calls)
    assert first["internalAnalysisFlag"] is True and first["detailDescriptionFlag"] is False
    assert "release.granted" in first["text"] and granted["data"]["credential_id"] in first["text"]
    assert "release.denied" in second["text"] and denied["data"]["credential_id"] in second["text"]
    assert "rule: out_of_scope" in second["text"]
    for body in (first["text"], second["text"]):
        assert "tech-secret-sub" not in body and client["name"] not in body


def test_an_audit_index_in_the_event_is_noted(
    api: TestClient,
    admin_h: Headers,
    auth: Callable[..., Headers],
    cw: respx.MockRouter,
    push: Any,
    session: Session,
    adapter: Any,
) -> None:
    from intake.psa import push as logic

    client, task_id = mapped_task(api, admin_h, auth)
    mock_create(cw, task_id, status={"id": 1, "name": status_name("ready")})
    push(task_id)
    notes = cw.post(f"{TICKETS}/70/notes").respond(201, json={"id": 3})
    event = broker_event("release.denied", client["id"], task_id, rule="quota_exceeded", audit_index=41)
    assert logic.add_release_note(session, adapter=adapter, envelope=event) == "noted"
    assert "audit entry: 41" in json.loads(notes.calls[0].request.content)["text"]


def test_a_release_on_a_task_without_a_ticket_notes_nothing(
    api: TestClient,
    admin_h: Headers,
    auth: Callable[..., Headers],
    cw: respx.MockRouter,
    session: Session,
    adapter: Any,
) -> None:
    from intake.psa import push as logic

    client, task_id = mapped_task(api, admin_h, auth)
    event = broker_event("release.granted", client["id"], task_id)
    assert logic.add_release_note(session, adapter=adapter, envelope=event) == "no_ticket"
    assert cw_calls(cw) == []


# --- the Celery tasks (real commits, fresh clients) -----------------------------------------------------


@pytest.fixture
def worker_adapter(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The PSA tasks' per-process adapter, replaced by one aimed at the respx ConnectWise."""
    from intake.psa import jobs

    made = connectwise_adapter()
    monkeypatch.setattr(jobs, "get_adapter", lambda: made)
    yield made
    made.close()


def live_mapped_task(live_api: TestClient, admin_h: Headers, auth: Callable[..., Headers]) -> tuple[Any, str]:
    """As `mapped_task`, committed (the Celery task reads through its own connections)."""
    return mapped_task(live_api, admin_h, auth)


def attempts(admin_engine: Any, key: str) -> list[tuple[Any, ...]]:
    with admin_engine.connect() as c:
        return [
            tuple(r)
            for r in c.execute(
                text("SELECT attempts, last_error FROM intake.job_attempts WHERE job_key = :k"), {"k": key}
            )
        ]


def links(admin_engine: Any, task_id: Any) -> list[tuple[Any, ...]]:
    with admin_engine.connect() as c:
        return [
            tuple(r)
            for r in c.execute(
                text("SELECT ticket_id, pushed_status FROM intake.task_psa_links WHERE task_id = :t"), {"t": task_id}
            )
        ]


def test_provider_none_does_nothing(
    live_api: TestClient, admin_h: Headers, auth: Callable[..., Headers], cw: respx.MockRouter, admin_engine: Any
) -> None:
    from intake.psa import jobs
    from intake.settings import get_settings

    assert get_settings().psa_provider == "none"
    jobs.get_adapter.cache_clear()
    client, task_id = live_mapped_task(live_api, admin_h, auth)
    event = envelope("task.created", client["id"], task_id=task_id)
    assert jobs.push_task.apply(args=[event]).result == "disabled"
    note = broker_event("release.granted", client["id"], task_id)
    assert jobs.release_note.apply(args=[note]).result == "disabled"
    assert cw_calls(cw) == [] and links(admin_engine, task_id) == []


def test_a_500_is_retried_with_the_attempt_counted_and_no_half_written_link(
    live_api: TestClient,
    admin_h: Headers,
    auth: Callable[..., Headers],
    cw: respx.MockRouter,
    admin_engine: Any,
    worker_adapter: Any,
) -> None:
    from intake.psa import jobs

    client, task_id = live_mapped_task(live_api, admin_h, auth)
    cw.get(TICKETS).respond(200, json=[])
    seen_links: list[list[Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen_links.append(links(admin_engine, task_id))
        if len(seen_links) == 1:
            return httpx.Response(500, json={"code": "Unknown", "message": "boom"})
        return httpx.Response(201, json=ticket_json(task_id, id=71, status={"id": 1, "name": status_name("ready")}))

    create = cw.post(TICKETS).mock(side_effect=answer)
    event = envelope("task.created", client["id"], task_id=task_id)

    # Eager: the Celery retry runs at once (its countdown is not waited).
    assert jobs.push_task.apply(args=[event]).result == "created"

    assert create.call_count == 2
    assert seen_links == [[], []]  # the failed attempt wrote no link
    assert attempts(admin_engine, f"intake.psa.push_task:{event['event_id']}") == [(1, "ConnectWiseTransientError")]
    assert links(admin_engine, task_id) == [("71", "ready")]


def test_a_psa_down_for_good_is_dead_lettered_after_the_attempts(
    live_api: TestClient,
    admin_h: Headers,
    auth: Callable[..., Headers],
    cw: respx.MockRouter,
    admin_engine: Any,
    worker_adapter: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from intake.psa import jobs
    from intake.settings import get_settings

    monkeypatch.setattr(get_settings(), "notify_max_attempts", 3)
    client, task_id = live_mapped_task(live_api, admin_h, auth)
    cw.get(TICKETS).respond(200, json=[])
    create = cw.post(TICKETS).respond(503, json={"code": "Unavailable", "message": "down"})
    event = envelope("task.created", client["id"], task_id=task_id)

    assert jobs.push_task.apply(args=[event]).result == "dead_lettered"

    key = f"intake.psa.push_task:{event['event_id']}"
    assert create.call_count == 3
    assert attempts(admin_engine, key) == [(3, "ConnectWiseTransientError")]
    assert links(admin_engine, task_id) == []
    with admin_engine.connect() as c:
        parked = c.execute(text("SELECT task_name, attempts FROM intake.dead_letters WHERE job_key = :k"), {"k": key})
        assert list(parked) == [("intake.psa.push_task", 3)]


def test_a_malformed_envelope_is_dead_lettered_without_a_call(
    cw: respx.MockRouter, admin_engine: Any, worker_adapter: Any
) -> None:
    from intake.psa import jobs

    event = envelope("task.created", uuid.uuid4(), task_id="not-a-uuid")
    assert jobs.push_task.apply(args=[event]).result == "dead_lettered"
    assert cw_calls(cw) == []
    with admin_engine.connect() as c:
        parked = c.execute(
            text("SELECT error FROM intake.dead_letters WHERE job_key = :k"),
            {"k": f"intake.psa.push_task:{event['event_id']}"},
        )
        assert list(parked) == [("MalformedEvent",)]


def test_two_concurrent_pushes_of_one_task_make_one_ticket(
    live_api: TestClient,
    admin_h: Headers,
    auth: Callable[..., Headers],
    cw: respx.MockRouter,
    admin_engine: Any,
    worker_adapter: Any,
) -> None:
    """Without the task's advisory lock both would find no ticket at the PSA and both would POST."""
    from intake.psa import jobs

    client, task_id = live_mapped_task(live_api, admin_h, auth)
    cw.get(TICKETS).respond(200, json=[])

    def slow_create(request: httpx.Request) -> httpx.Response:
        time.sleep(0.5)
        return httpx.Response(201, json=ticket_json(task_id, id=72, status={"id": 1, "name": status_name("ready")}))

    create = cw.post(TICKETS).mock(side_effect=slow_create)
    results: list[str] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                jobs.push_task.apply(args=[envelope("task.created", client["id"], task_id=task_id)]).result
            )
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == ["created", "unchanged"]
    assert create.call_count == 1
    assert links(admin_engine, task_id) == [("72", "ready")]


def test_a_release_note_through_the_celery_task_is_added_once(
    live_api: TestClient,
    admin_h: Headers,
    auth: Callable[..., Headers],
    cw: respx.MockRouter,
    worker_adapter: Any,
) -> None:
    from intake.psa import jobs

    client, task_id = live_mapped_task(live_api, admin_h, auth)
    mock_create(cw, task_id, ticket_id=73, status={"id": 1, "name": status_name("ready")})
    assert jobs.push_task.apply(args=[envelope("task.created", client["id"], task_id=task_id)]).result == "created"
    notes = cw.post(f"{TICKETS}/73/notes").respond(201, json={"id": 5})
    event = broker_event("release.granted", client["id"], task_id, release_id=uuid.uuid4())
    assert [jobs.release_note.apply(args=[event]).result for _ in range(3)] == ["noted", "duplicate", "duplicate"]
    assert notes.call_count == 1


# --- routing --------------------------------------------------------------------------------------------


def test_task_and_release_events_are_routed_to_the_registered_psa_tasks() -> None:
    import intake.psa.jobs  # noqa: F401 - registers the tasks
    from intake import events
    from intake.celery_app import QUEUE, app
    from secrets_broker.events import ROUTES as BROKER_ROUTES

    for type_ in ("task.created", "task.assigned", "task.status_changed"):
        assert (events.PSA_PUSH, QUEUE) in events.ROUTES[type_]
    for type_ in ("release.granted", "release.denied"):
        assert (events.PSA_RELEASE_NOTE, QUEUE) in BROKER_ROUTES[type_]
    assert {events.PSA_PUSH, events.PSA_RELEASE_NOTE} <= set(app.tasks)
    assert "intake.psa.jobs" in app.conf.include


# --- migration 0009 -------------------------------------------------------------------------------------


def test_migration_0009_maps_existing_clients_to_nothing_and_downgrades(scratch_url: str, scratch_alembic: Any) -> None:
    from alembic import command
    from intake_factories import insert_client
    from sqlalchemy import create_engine, inspect

    command.upgrade(scratch_alembic, "0008")
    engine = create_engine(scratch_url)
    client_id = uuid.uuid4()
    with engine.begin() as conn:
        insert_client(conn, client_id, datetime.now(UTC))
    try:
        command.upgrade(scratch_alembic, "0009")
        with engine.connect() as conn:
            ids = conn.execute(text("SELECT psa_company_ids FROM intake.clients WHERE id = :c"), {"c": client_id})
            assert ids.scalar_one() == {}
        assert "psa_notes_sent" in inspect(engine).get_table_names(schema="intake")
        command.downgrade(scratch_alembic, "0008")
        inspector = inspect(engine)
        assert "psa_notes_sent" not in inspector.get_table_names(schema="intake")
        assert "psa_company_ids" not in {c["name"] for c in inspector.get_columns("clients", schema="intake")}
    finally:
        engine.dispose()
