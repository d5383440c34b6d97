"""PSA in (issue 21, ConnectWise): `POST /v1/webhooks/psa/{provider}` on the real PostgreSQL.

ConnectWise is respx (the ticket re-fetch and the signing key at the site's key path); the callbacks
are signed here on their own, as ConnectWise signs them. Every refusal is checked to change nothing:
no task change, no event, no note, no recorded callback, and (where it must not) no HTTP call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import respx
from fastapi.testclient import TestClient
from intake_factories import (
    CONNECTWISE_BOARD,
    CONNECTWISE_SITE,
    assign,
    connectwise_adapter,
    create_request,
    get_task,
    make_client,
    move,
    purchase_body,
)

Headers = dict[str, str]
HOST = "api-na.myconnectwise.net"
SITE, BOARD = CONNECTWISE_SITE, CONNECTWISE_BOARD
API = f"{SITE}/v4_6_release/apis/3.0"
TICKETS = f"{API}/service/tickets"
KEY_URL = f"{API}/system/callbackkeys/key-1"
SIGNING_KEY = "signingCanaryKey-77"
TICKET = 70
URL = "/v1/webhooks/psa/connectwise"


def status_name(task_status: str) -> str:
    from intake.settings import DEFAULT_PSA_STATUS_MAP

    return DEFAULT_PSA_STATUS_MAP[task_status]


def sign(raw: bytes, key: str = SIGNING_KEY) -> str:
    """ConnectWise's signature: base64(HMAC-SHA256(SHA-256(key), body))."""
    return base64.b64encode(hmac.new(hashlib.sha256(key.encode()).digest(), raw, hashlib.sha256).digest()).decode()


def callback(action: str = "updated", key_url: str = KEY_URL, **entity: Any) -> bytes:
    """A ticket callback as ConnectWise sends it (`Entity` is a JSON-encoded string; the route ignores it)."""
    body = {
        "MessageId": str(uuid.uuid4()),
        "Action": action,
        "Type": "ticket",
        "ID": TICKET,
        "Entity": json.dumps({"id": TICKET, **entity}),
        "Metadata": {"key_url": key_url},
    }
    return json.dumps(body).encode()


def ticket(status: str, owner: str | None = None, closed: bool = False) -> dict[str, Any]:
    return {
        "id": TICKET,
        "summary": "purchase · task",
        "board": {"id": 1, "name": BOARD},
        "status": {"id": 9, "name": status},
        "owner": {"id": 5, "identifier": owner} if owner else None,
        "closedFlag": closed,
    }


@pytest.fixture
def cw() -> Iterator[respx.MockRouter]:
    """respx for ConnectWise only: anything else (the issuer's keys, ...) goes through."""
    with respx.mock(assert_all_called=False) as router:
        router.route(host__regex=rf"^(?!{HOST.replace('.', '[.]')}$)").pass_through()
        router.get(KEY_URL).respond(200, json={"signing_key": SIGNING_KEY})
        yield router


@pytest.fixture
def psa(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """intake configured for ConnectWise, with an adapter on the respx site."""
    from intake.settings import DEFAULT_PSA_STATUS_MAP, get_settings
    from intake.webhooks import service

    adapter = connectwise_adapter()
    settings = get_settings()
    monkeypatch.setattr(settings, "psa_provider", "connectwise")
    monkeypatch.setattr(settings, "psa_board", BOARD)
    monkeypatch.setattr(settings, "psa_status_maps", {BOARD: DEFAULT_PSA_STATUS_MAP})
    monkeypatch.setattr(service, "get_adapter", lambda: adapter)
    yield adapter
    adapter.close()


def linked_task(
    api: TestClient,
    admin_h: Headers,
    tech_h: Headers,
    auth: Callable[..., Headers],
    sql: Callable[..., list[Any]],
    *,
    in_progress: bool,
    pushed_owner: str | None = None,
) -> str:
    """A task linked to ticket 70, as the push left it: `pushed_*` is what the ticket was last told."""
    client = make_client(api, admin_h, psa_company_ids={"connectwise": "2"})
    task_id = str(create_request(api, auth("client_user", "u", client["id"]), purchase_body())["task_ids"][0])
    status = "ready"
    if in_progress:
        api.patch("/v1/staff/tech-1", json={"psa_member_ids": {"connectwise": "Tech1"}}, headers=admin_h)
        assert assign(api, tech_h, task_id, "tech-1").status_code == 200
        assert move(api, tech_h, task_id, "in_progress").status_code == 200
        status = "in_progress"
    sql(
        "INSERT INTO intake.task_psa_links (task_id, provider, ticket_id, ticket_url, pushed_status, pushed_owner,"
        " created_at, updated_at) VALUES (:t, 'connectwise', :n, 'https://cw.example/t', :s, :o, now(), now())",
        t=task_id,
        n=str(TICKET),
        s=status,
        o=pushed_owner,
    )
    return task_id


def snapshot(sql: Callable[..., list[Any]], task_id: str) -> dict[str, Any]:
    """Everything a callback may change: the task, its events, its notes, the recorded callbacks."""
    return {
        "task": sql("SELECT status, assignee, updated_at FROM intake.tasks WHERE id = :t", t=task_id),
        "events": sql("SELECT count(*) FROM intake.outbox WHERE envelope->>'aggregate_id' = :t", t=task_id),
        "notes": sql("SELECT kind, body FROM intake.task_notes WHERE task_id = :t ORDER BY created_at", t=task_id),
        "callbacks": sql("SELECT count(*) FROM intake.psa_callbacks"),
        "link": sql("SELECT seen_status, seen_owner FROM intake.task_psa_links WHERE task_id = :t", t=task_id),
    }


def post(api: TestClient, raw: bytes, signature: str | None = "sign") -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["x-content-signature"] = sign(raw) if signature == "sign" else signature
    return api.post(URL, content=raw, headers=headers)


def events_of(sql: Callable[..., list[Any]], task_id: str) -> list[tuple[str, dict[str, Any]]]:
    rows = sql("SELECT type, envelope FROM intake.outbox WHERE envelope->>'aggregate_id' = :t ORDER BY id", t=task_id)
    return [(r[0], r[1]["data"]) for r in rows]


# --- narrowing --------------------------------------------------------------------------------------------


def test_a_closed_ticket_closes_a_task_in_progress_and_a_replay_changes_nothing_more(
    api: TestClient, admin_h: Headers, tech_h: Headers, auth: Any, sql: Any, psa: Any, cw: respx.MockRouter
) -> None:
    task_id = linked_task(api, admin_h, tech_h, auth, sql, in_progress=True, pushed_owner="Tech1")
    fetch = cw.get(f"{TICKETS}/{TICKET}").respond(200, json=ticket("Closed", "Tech1", closed=True))
    raw = callback()
    first = post(api, raw)
    assert first.status_code == 200, first.text
    assert first.json() == {"applied": True, "outcome": "closed"}
    assert fetch.call_count == 1
    task = get_task(api, admin_h, task_id)
    assert task["status"] == "done"
    assert [e for e in events_of(sql, task_id) if e[0] == "task.status_changed"][-1][1]["to"] == "done"
    before = snapshot(sql, task_id)
    again = post(api, raw)
    assert again.status_code == 200 and again.json() == {"applied": False, "outcome": "duplicate"}
    assert snapshot(sql, task_id) == before
    assert fetch.call_count == 1  # a replay is not even re-fetched


def test_a_closed_ticket_cancels_a_task_not_in_progress(
    api: TestClient, admin_h: Headers, tech_h: Headers, auth: Any, sql: Any, psa: Any, cw: respx.MockRouter
) -> None:
    task_id = linked_task(api, admin_h, tech_h, auth, sql, in_progress=False)
    cw.get(f"{TICKETS}/{TICKET}").respond(200, json=ticket("Completed"))
    assert post(api, callback()).json() == {"applied": True, "outcome": "closed"}
    assert get_task(api, admin_h, task_id)["status"] == "cancelled"


def test_a_deleted_ticket_closes_its_task(
    api: TestClient, admin_h: Headers, tech_h: Headers, auth: Any, sql: Any, psa: Any, cw: respx.MockRouter
) -> None:
    task_id = linked_task(api, admin_h, tech_h, auth, sql, in_progress=False)
    cw.get(f"{TICKETS}/{TICKET}").respond(404, json={"code": "NotFound", "message": "Ticket not found"})
    assert post(api, callback("deleted")).json()["outcome"] == "closed"
    assert get_task(api, admin_h, task_id)["status"] == "cancelled"


def test_an_owner_change_away_from_the_assignee_unassigns_and_assigns_nobody(
    api: TestClient, admin_h: Headers, tech_h: Headers, auth: Any, sql: Any, psa: Any, cw: respx.MockRouter
) -> None:
    task_id = linked_task(api, admin_h, tech_h, auth, sql, in_progress=True, pushed_owner="Tech1")
    cw.get(f"{TICKETS}/{TICKET}").respond(200, json=ticket(status_name("in_progress"), "Tech2"))
    answer = post(api, callback())
    assert answer.json() == {"applied": True, "outcome": "unassigned"}, answer.text
    task = get_task(api, admin_h, task_id)
    assert (task["status"], task["assignee"]) == ("on_hold", None)
    assigned = [data for type_, data in events_of(sql, task_id) if type_ == "task.assigned"]
    assert assigned[-1]["assignee"] is None and assigned[-1]["previous_assignee"] == "tech-1"
    [note] = [n for n in task["internal_notes"] if n["kind"] == "psa"]
    assert "Tech2" in note["body"] and "nobody was assigned" in note["body"]


def test_our_own_update_coming_back_changes_nothing(
    api: TestClient, admin_h: Headers, tech_h: Headers, auth: Any, sql: Any, psa: Any, cw: respx.MockRouter
) -> None:
    task_id = linked_task(api, admin_h, tech_h, auth, sql, in_progress=True, pushed_owner="Tech1")
    cw.get(f"{TICKETS}/{TICKET}").respond(200, json=ticket(status_name("in_progress"), "Tech1"))
    before = snapshot(sql, task_id)
    assert post(api, callback()).json() == {"applied": False, "outcome": "unchanged"}
    after = snapshot(sql, task_id)
    assert {k: after[k] for k in ("task", "events", "notes")} == {k: before[k] for k in ("task", "events", "notes")}


@pytest.mark.parametrize("in_progress", [False, True])
def test_a_start_or_an_assignment_in_the_psa_is_only_a_note(
    api: TestClient,
    admin_h: Headers,
    tech_h: Headers,
    auth: Any,
    sql: Any,
    psa: Any,
    cw: respx.MockRouter,
    in_progress: bool,
) -> None:
    owner = "Tech1" if in_progress else None
    task_id = linked_task(api, admin_h, tech_h, auth, sql, in_progress=in_progress, pushed_owner=owner)
    before = get_task(api, admin_h, task_id)
    # Not in progress: the PSA starts it and gives it an owner; in progress: it puts it back to waiting.
    shown = ticket(status_name("in_progress"), "Tech2") if not in_progress else ticket("Waiting", "Tech1")
    cw.get(f"{TICKETS}/{TICKET}").respond(200, json=shown)
    events_before = events_of(sql, task_id)
    answer = post(api, callback())
    assert answer.status_code == 200 and answer.json()["applied"] is True, answer.text
    after = get_task(api, admin_h, task_id)
    assert (after["status"], after["assignee"]) == (before["status"], before["assignee"])
    assert events_of(sql, task_id) == events_before
    assert [n for n in after["internal_notes"] if n["kind"] == "psa"]


def test_a_reopened_ticket_of_a_done_task_is_only_a_note(
    api: TestClient, admin_h: Headers, tech_h: Headers, auth: Any, sql: Any, psa: Any, cw: respx.MockRouter
) -> None:
    task_id = linked_task(api, admin_h, tech_h, auth, sql, in_progress=True, pushed_owner="Tech1")
    assert move(api, tech_h, task_id, "done").status_code == 200
    sql("UPDATE intake.task_psa_links SET pushed_status = 'done' WHERE task_id = :t", t=task_id)
    cw.get(f"{TICKETS}/{TICKET}").respond(200, json=ticket(status_name("in_progress"), "Tech1"))
    events_before = events_of(sql, task_id)
    assert post(api, callback()).json() == {"applied": True, "outcome": "noted"}
    task = get_task(api, admin_h, task_id)
    assert task["status"] == "done" and events_of(sql, task_id) == events_before
    [note] = [n for n in task["internal_notes"] if n["kind"] == "psa"]
    assert "reopened" in note["body"]


def test_a_ticket_no_task_is_linked_to_changes_nothing(
    api: TestClient, sql: Any, psa: Any, cw: respx.MockRouter
) -> None:
    fetch = cw.get(f"{TICKETS}/{TICKET}").respond(200, json=ticket("Closed", closed=True))
    outbox = sql("SELECT count(*) FROM intake.outbox")
    assert post(api, callback()).json() == {"applied": False, "outcome": "unlinked"}
    assert fetch.call_count == 0 and sql("SELECT count(*) FROM intake.outbox") == outbox


# --- refusals ---------------------------------------------------------------------------------------------


def test_a_bad_signature_is_401_and_changes_nothing(
    api: TestClient, admin_h: Headers, tech_h: Headers, auth: Any, sql: Any, psa: Any, cw: respx.MockRouter
) -> None:
    task_id = linked_task(api, admin_h, tech_h, auth, sql, in_progress=True, pushed_owner="Tech1")
    fetch = cw.get(f"{TICKETS}/{TICKET}").respond(200, json=ticket("Closed", closed=True))
    before = snapshot(sql, task_id)
    raw = callback()
    for signature in (sign(raw, "another-key"), None, "not base64!"):
        answer = post(api, raw, signature=signature)
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] == "unauthenticated"
    assert snapshot(sql, task_id) == before
    assert fetch.call_count == 0


def test_a_key_url_on_another_origin_is_refused_without_fetching_it(
    api: TestClient, admin_h: Headers, tech_h: Headers, auth: Any, sql: Any, psa: Any, cw: respx.MockRouter
) -> None:
    task_id = linked_task(api, admin_h, tech_h, auth, sql, in_progress=True, pushed_owner="Tech1")
    evil = cw.get("https://evil.example/v4_6_release/apis/3.0/system/callbackkeys/key-1").respond(
        200, json={"signing_key": "attacker"}
    )
    before = snapshot(sql, task_id)
    raw = callback(key_url="https://evil.example/v4_6_release/apis/3.0/system/callbackkeys/key-1")
    answer = post(api, raw, signature=sign(raw, "attacker"))
    assert answer.status_code == 401 and answer.json()["error"] == "unauthenticated"
    assert evil.call_count == 0 and snapshot(sql, task_id) == before


@pytest.mark.parametrize(
    "raw",
    [b"{", b"[]", json.dumps({"ID": TICKET, "Type": "company", "Action": "updated"}).encode(), b"null"],
    ids=["truncated", "array", "not-a-ticket", "null"],
)
def test_a_body_that_is_no_ticket_callback_is_422_before_any_key_fetch(
    api: TestClient, sql: Any, psa: Any, cw: respx.MockRouter, raw: bytes
) -> None:
    callbacks = sql("SELECT count(*) FROM intake.psa_callbacks")
    answer = post(api, raw)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "validation_error" and answer.json()["field"] == "body"
    assert [c for c in cw.calls if c.request.url.host == HOST] == []
    assert sql("SELECT count(*) FROM intake.psa_callbacks") == callbacks


def test_an_oversized_body_is_413(api: TestClient, psa: Any, cw: respx.MockRouter) -> None:
    from intake.psa.protocol import MAX_CALLBACK_BYTES

    answer = post(api, b"{" + b" " * MAX_CALLBACK_BYTES + b"}")
    assert answer.status_code == 413 and answer.json()["error"] == "payload_too_large"
    assert [c for c in cw.calls if c.request.url.host == HOST] == []


@pytest.mark.parametrize("provider", ["autotask", "halo", "servicenow"])
def test_only_the_configured_provider_is_routed(api: TestClient, psa: Any, provider: str) -> None:
    raw = callback()
    answer = api.post(f"/v1/webhooks/psa/{provider}", content=raw, headers={"x-content-signature": sign(raw)})
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"


def test_no_provider_configured_routes_nothing(api: TestClient) -> None:
    from intake.settings import get_settings

    assert get_settings().psa_provider == "none"
    raw = callback()
    answer = api.post(URL, content=raw, headers={"x-content-signature": sign(raw)})
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"


def test_a_psa_that_fails_the_refetch_is_503_and_the_callback_applies_when_sent_again(
    api: TestClient, admin_h: Headers, tech_h: Headers, auth: Any, sql: Any, psa: Any, cw: respx.MockRouter
) -> None:
    task_id = linked_task(api, admin_h, tech_h, auth, sql, in_progress=True, pushed_owner="Tech1")
    fetch = cw.get(f"{TICKETS}/{TICKET}")
    fetch.side_effect = [
        httpx.Response(503, json={"code": "Unavailable", "message": "down"}),
        httpx.Response(200, json=ticket("Closed", "Tech1", closed=True)),
    ]
    before = snapshot(sql, task_id)
    raw = callback()
    failed = post(api, raw)
    assert failed.status_code == 503 and failed.json()["error"] == "unavailable", failed.text
    assert snapshot(sql, task_id) == before
    assert post(api, raw).json() == {"applied": True, "outcome": "closed"}
    assert get_task(api, admin_h, task_id)["status"] == "done"


# --- registration at start ----------------------------------------------------------------------------


def test_a_worker_start_registers_the_callback_once_and_retries_a_psa_that_is_down(
    psa: Any, cw: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from celery.exceptions import Retry

    from intake.psa import jobs
    from intake.settings import get_settings

    monkeypatch.setattr(get_settings(), "psa_callback_url", "https://intake.example/v1/webhooks/psa/connectwise")
    monkeypatch.setattr(jobs, "get_adapter", lambda: psa)
    cw.get(f"{API}/service/boards").respond(200, json=[{"id": 1, "name": BOARD}])
    listing = cw.get(f"{API}/system/callbacks")
    listing.side_effect = [
        httpx.Response(503, json={"code": "Unavailable", "message": "down"}),
        httpx.Response(200, json=[]),
    ]
    made = cw.post(f"{API}/system/callbacks").respond(201, json={"id": 9})
    with pytest.raises(Retry):
        jobs.register_callback.apply(throw=True).get()
    assert made.call_count == 0
    assert jobs.register_callback.apply().get() == "registered"
    [sent] = [json.loads(c.request.content) for c in made.calls]
    assert (sent["url"], sent["type"], sent["level"], sent["objectId"]) == (
        "https://intake.example/v1/webhooks/psa/connectwise",
        "Ticket",
        "Board",
        1,
    )
    # The worker_ready hook queues it only when a PSA and a callback URL are configured.
    queued: list[str] = []
    monkeypatch.setattr(jobs.register_callback, "delay", lambda: queued.append("sent"))
    jobs._register_at_start()
    monkeypatch.setattr(get_settings(), "psa_callback_url", "")
    jobs._register_at_start()
    assert queued == ["sent"]
