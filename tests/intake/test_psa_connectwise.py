"""ConnectWise PSA adapter: tickets, JSON Patch, notes, errors, retries, callbacks and their signing keys.

Ticket, board and callback-entry bodies are the shared fixtures (tests/fixtures/connectwise/). No recorded
callback, error body or key answer exists, so those are built here (see that folder's PROVENANCE.md): the
callback's field names follow a public ConnectWise webhook handler's payload type, with `Entity` the
fixture ticket encoded as a JSON string, and its signature is computed here independently of the adapter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import pickle
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from redis import Redis

from intake.psa.connectwise import (
    ConnectWiseAdapter,
    ConnectWiseAuthError,
    ConnectWiseNotFound,
    ConnectWisePermanentError,
    ConnectWiseRateLimited,
    ConnectWiseTransientError,
)
from intake.psa.protocol import (
    MAX_CALLBACK_BYTES,
    Callback,
    CallbackRejected,
    PsaAdapter,
    Ticket,
    TicketFields,
    callback_fingerprint,
)
from intake.settings import DEFAULT_PSA_STATUS_MAP
from mspkit.http import (
    BreakerConfig,
    CircuitOpen,
    RateLimited,
    RetryPolicy,
    VendorAuthError,
    VendorError,
    VendorNotFound,
    VendorPermanentError,
    VendorResponseError,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "connectwise"
SITE = "https://api-na.myconnectwise.net"
API = f"{SITE}/v4_6_release/apis/3.0"
TICKETS = f"{API}/service/tickets"
BOARDS = f"{API}/service/boards"
CALLBACKS = f"{API}/system/callbacks"
KEYS = f"{API}/system/callbackkeys"
KEY_URL = f"{KEYS}/key-1"
COMPANY, PUBLIC, PRIVATE, CLIENT_ID = "msp", "pubCanaryK3y", "privCanaryS3cret9x", "clientCanary-0f1e2d"
BASIC = base64.b64encode(f"{COMPANY}+{PUBLIC}:{PRIVATE}".encode()).decode()
SIGNING_KEY = "signingCanaryKey-77"
TASK = uuid.UUID("1a2b3c4d-5e6f-4a0b-8c0d-0e0f10111213")
PORTAL = f"https://portal.example/tasks/{TASK}"
BOARD = "Service Board"
JSON = {"Content-Type": "application/json"}
CALLBACK_URL = "https://intake.example/v1/webhooks/psa/connectwise"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def ticket_json(**overrides: Any) -> dict[str, Any]:
    """The fixture ticket, on our board and carrying our task's reference unless told otherwise."""
    data = fixture("service_ticket.json")
    data["board"] = {"id": 1, "name": BOARD}
    data["externalXRef"] = str(TASK)
    data.update(overrides)
    return data


def adapter(**options: Any) -> ConnectWiseAdapter:
    values: dict[str, Any] = {
        "site_url": SITE,
        "company": COMPANY,
        "public_key": PUBLIC,
        "private_key": PRIVATE,
        "client_id": CLIENT_ID,
        "board": BOARD,
        "status_maps": {BOARD: DEFAULT_PSA_STATUS_MAP},
        "closed_statuses": {BOARD: ["Closed", "Completed"]},
        "retry": RetryPolicy(max_attempts=1),
    }
    values.update(options)
    return ConnectWiseAdapter(**values)


def quick_retries(**options: Any) -> tuple[ConnectWiseAdapter, list[float]]:
    """Retries on, with the waits recorded instead of slept."""
    slept: list[float] = []
    made = adapter(retry=RetryPolicy(max_attempts=4, base_s=0, cap_s=0), sleep=slept.append, **options)
    return made, slept


def fields(**overrides: Any) -> TicketFields:
    values: dict[str, Any] = {
        "task_id": TASK,
        "task_type": "spam_filter_setup",
        "task_status": "ready",
        "company_id": "2",
        "portal_url": PORTAL,
        "assignee_member_id": "User1",
    }
    values.update(overrides)
    return TicketFields(**values)


def sign(raw: bytes, key: str = SIGNING_KEY) -> str:
    """ConnectWise's signature, computed here on its own: base64(HMAC-SHA256(SHA-256(key), body))."""
    return base64.b64encode(hmac.new(hashlib.sha256(key.encode()).digest(), raw, hashlib.sha256).digest()).decode()


def callback_payload(**overrides: Any) -> dict[str, Any]:
    """A ticket callback as ConnectWise sends it: `Entity` is the ticket as a JSON-encoded string."""
    payload: dict[str, Any] = {
        "MessageId": "6f1c1d7e-0a52-4d5e-9c1b-5a8d1d3f0c11",
        "FromUrl": "api-na.myconnectwise.net",
        "CompanyId": COMPANY,
        "MemberId": "User1",
        "Action": "updated",
        "Type": "ticket",
        "ID": 69,
        "ProductInstanceId": "8d0c6a44-0000-4000-8000-0000000000aa",
        "PartnerId": "msp",
        "Entity": json.dumps(ticket_json(status={"id": 5, "name": "Completed"})),
        "Metadata": {"key_url": KEY_URL},
        "CallbackObjectRecId": 1,
    }
    payload.update(overrides)
    return payload


def raw_callback(**overrides: Any) -> bytes:
    return json.dumps(callback_payload(**overrides)).encode()


def key_answer(key: str = SIGNING_KEY) -> httpx.Response:
    return httpx.Response(200, json={"signing_key": key})


@pytest.fixture
def cw() -> Iterator[respx.MockRouter]:
    """respx for one test: every request mocked, routes a test sets up need not all be called."""
    with respx.mock(assert_all_called=False) as router:
        yield router


def sent_json(route: respx.Route, index: int = -1) -> Any:
    return json.loads(route.calls[index].request.content)


# --- the Protocol ------------------------------------------------------------------------------------------


def test_the_adapter_is_a_psa_adapter() -> None:
    made: PsaAdapter = adapter()
    assert made.provider == "connectwise"
    made.close()


# --- tickets -----------------------------------------------------------------------------------------------


def test_create_sends_only_the_allowed_fields(cw: respx.MockRouter) -> None:
    lookup = cw.get(TICKETS).respond(200, json=[])
    create = cw.post(TICKETS).respond(201, json=ticket_json(id=70, owner={"id": 176, "identifier": "User1"}))

    ticket = adapter().create_ticket(fields())

    assert ticket.ticket_id == "70" and ticket.external_ref == str(TASK) and ticket.owner_member_id == "User1"
    assert lookup.calls[0].request.url.params["conditions"] == f'externalXRef="{TASK}"'
    body = sent_json(create)
    assert body == {
        "summary": "spam_filter_setup · task 1a2b3c4d",
        "board": {"name": BOARD},
        "company": {"id": 2},
        "status": {"name": "New"},
        "owner": {"identifier": "User1"},
        "externalXRef": str(TASK),
        "initialDescription": PORTAL,
    }
    request = create.calls[0].request
    assert request.headers["Authorization"] == f"Basic {BASIC}"
    assert request.headers["clientId"] == CLIENT_ID


def test_create_without_an_assignee_sends_no_owner(cw: respx.MockRouter) -> None:
    cw.get(TICKETS).respond(200, json=[])
    create = cw.post(TICKETS).respond(201, json=ticket_json(id=70, owner=None))
    ticket = adapter().create_ticket(fields(assignee_member_id=None, task_status="awaiting_approval"))
    body = sent_json(create)
    assert "owner" not in body and body["status"] == {"name": "Waiting Client"}
    assert ticket.owner_member_id is None


def test_create_finds_the_ticket_already_made_and_posts_nothing(cw: respx.MockRouter) -> None:
    cw.get(TICKETS).respond(200, json=[ticket_json(id=69)])
    create = cw.post(TICKETS).respond(201, json=ticket_json(id=70))
    ticket = adapter().create_ticket(fields())
    assert ticket.ticket_id == "69"
    assert not create.called


def test_the_lookup_trusts_no_ticket_of_another_task(cw: respx.MockRouter) -> None:
    """A server that ignored the condition answers with other tickets: none of them is ours."""
    cw.get(TICKETS).respond(
        200, json=[ticket_json(id=12, externalXRef=str(uuid.uuid4())), fixture("service_ticket.json")]
    )
    create = cw.post(TICKETS).respond(201, json=ticket_json(id=70))
    assert adapter().create_ticket(fields()).ticket_id == "70"
    assert create.call_count == 1


def test_a_post_that_failed_is_not_retried_and_the_callers_retry_finds_the_ticket(cw: respx.MockRouter) -> None:
    """ConnectWise has no idempotency key: the kit never repeats the POST; the next create finds the ticket."""
    lookup = cw.get(TICKETS)
    lookup.side_effect = [httpx.Response(200, json=[]), httpx.Response(200, json=[ticket_json(id=70)])]
    create = cw.post(TICKETS).respond(502, json={"code": "Unknown", "message": "gateway"})
    made, _ = quick_retries()
    with pytest.raises(ConnectWiseTransientError):
        made.create_ticket(fields())
    assert create.call_count == 1
    # The Celery retry: the ticket the failed answer hid was made after all.
    assert made.create_ticket(fields()).ticket_id == "70"
    assert create.call_count == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"task_type": "Acme Corp mail"},
        {"company_id": "Acme Corp"},
        {"assignee_member_id": "bob smith"},
        {"portal_url": "javascript:alert(1)"},
        {"task_status": "archived"},
    ],
)
def test_bad_fields_are_refused_before_any_call(cw: respx.MockRouter, bad: dict[str, Any]) -> None:
    route = cw.route().respond(200, json=[])
    with pytest.raises(ValueError):
        adapter().create_ticket(fields(**bad))
    assert not route.called


def test_update_sends_the_json_patch_exactly(cw: respx.MockRouter) -> None:
    patch = cw.patch(f"{TICKETS}/69").respond(200, json=ticket_json(status={"id": 3, "name": "In Progress"}))
    ticket = adapter().update_ticket("69", fields(task_status="in_progress"))
    assert sent_json(patch) == [
        {"op": "replace", "path": "status", "value": {"name": "In Progress"}},
        {"op": "replace", "path": "owner", "value": {"identifier": "User1"}},
    ]
    assert patch.calls[0].request.headers["Content-Type"] == "application/json"
    assert ticket.status == "In Progress" and not ticket.closed


def test_update_without_an_assignee_clears_the_owner(cw: respx.MockRouter) -> None:
    patch = cw.patch(f"{TICKETS}/69").respond(200, json=ticket_json(owner=None))
    adapter().update_ticket("69", fields(task_status="on_hold", assignee_member_id=None))
    assert sent_json(patch) == [
        {"op": "replace", "path": "status", "value": {"name": "Waiting Client"}},
        {"op": "replace", "path": "owner", "value": None},
    ]


def test_update_refuses_an_answer_for_another_ticket(cw: respx.MockRouter) -> None:
    cw.patch(f"{TICKETS}/69").respond(200, json=ticket_json(id=70))
    with pytest.raises(VendorResponseError):
        adapter().update_ticket("69", fields())


def test_note_is_internal(cw: respx.MockRouter) -> None:
    notes = cw.post(f"{TICKETS}/69/notes").respond(201, json=fixture("service_ticket_notes.json")[0])
    adapter().add_note("69", "release.granted: credential 5f0c, rule -, audit #12")
    assert sent_json(notes) == {
        "text": "release.granted: credential 5f0c, rule -, audit #12",
        "internalAnalysisFlag": True,
        "detailDescriptionFlag": False,
    }


@pytest.mark.parametrize("ticket_id", ["0", "-1", "69/notes", "69?x=1", "../boards", "", "1e3"])
def test_a_bad_ticket_id_is_refused_before_any_call(cw: respx.MockRouter, ticket_id: str) -> None:
    route = cw.route().respond(200, json={})
    with pytest.raises(ValueError):
        adapter().get_ticket(ticket_id)
    assert not route.called


def test_get_maps_the_fixture_ticket(cw: respx.MockRouter) -> None:
    cw.get(f"{TICKETS}/69").respond(200, json=fixture("service_ticket.json"))
    ticket = adapter().get_ticket("69")
    assert ticket == Ticket(
        ticket_id="69",
        status="New",
        closed=False,
        owner_member_id="User1",
        url=f"{SITE}/v4_6_release/services/system_io/Service/fv_sr100_request.rails?service_recid=69&companyName=msp",
        external_ref=None,
    )


@pytest.mark.parametrize(
    ("overrides", "closed"),
    [
        ({"status": {"id": 5, "name": "Completed"}}, True),
        ({"status": {"id": 6, "name": "Closed"}}, True),
        ({"status": {"id": 2, "name": "Waiting Client"}}, False),
        # Another board's statuses are not ours to read as closed...
        ({"status": {"id": 5, "name": "Completed"}, "board": {"id": 9, "name": "Projects"}}, False),
        # ...unless ConnectWise itself says the ticket is closed.
        ({"status": {"id": 5, "name": "Done"}, "board": {"id": 9, "name": "Projects"}, "closedFlag": True}, True),
    ],
)
def test_closed_comes_from_the_boards_closed_statuses_or_closed_flag(
    cw: respx.MockRouter, overrides: dict[str, Any], closed: bool
) -> None:
    cw.get(f"{TICKETS}/69").respond(200, json=ticket_json(**overrides))
    assert adapter().get_ticket("69").closed is closed


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>login</html>", headers={"Content-Type": "text/html"}),
        httpx.Response(200, json=[]),
        httpx.Response(200, json={**ticket_json(), "id": "69"}),
        httpx.Response(200, json={**ticket_json(), "status": "New"}),
        httpx.Response(200, json={**ticket_json(), "owner": {"identifier": "x y"}}),
        httpx.Response(200, json={**ticket_json(), "closedFlag": "yes"}),
        httpx.Response(200, json={**ticket_json(), "id": 70}),
    ],
)
def test_a_malformed_or_hostile_ticket_answer_is_refused(cw: respx.MockRouter, answer: httpx.Response) -> None:
    cw.get(f"{TICKETS}/69").mock(return_value=answer)
    with pytest.raises(VendorResponseError):
        adapter().get_ticket("69")


# --- errors ------------------------------------------------------------------------------------------------


def test_401_is_an_auth_error(cw: respx.MockRouter) -> None:
    cw.get(f"{TICKETS}/69").respond(401, json={"code": "Unauthorized", "message": "Authentication failed"})
    with pytest.raises(ConnectWiseAuthError) as raised:
        adapter().get_ticket("69")
    assert isinstance(raised.value, VendorAuthError) and raised.value.status == 401
    assert "Unauthorized: Authentication failed" in str(raised.value)


def test_404_is_not_found(cw: respx.MockRouter) -> None:
    cw.get(f"{TICKETS}/404").respond(404, json={"code": "NotFound", "message": "Ticket record not found"})
    with pytest.raises(ConnectWiseNotFound) as raised:
        adapter().get_ticket("404")
    assert isinstance(raised.value, VendorNotFound) and raised.value.vendor_code == "NotFound"


def test_400_error_body_is_mapped_with_its_fields(cw: respx.MockRouter) -> None:
    cw.get(TICKETS).respond(200, json=[])
    cw.post(TICKETS).respond(
        400,
        json={
            "code": "InvalidObject",
            "message": "ticket object is invalid",
            "errors": [
                {
                    "code": "NullValue",
                    "message": "The summary field is required.",
                    "resource": "ticket",
                    "field": "summary",
                },
                {"code": "InvalidField", "message": "company not found", "resource": "ticket", "field": "company"},
            ],
        },
    )
    with pytest.raises(ConnectWisePermanentError) as raised:
        adapter().create_ticket(fields())
    error = raised.value
    assert isinstance(error, VendorPermanentError) and error.status == 400 and error.body is None
    assert error.details is not None and error.details.fields == ("summary", "company")
    assert error.vendor_code == "InvalidObject"
    words = "InvalidObject: ticket object is invalid [summary: The summary field is required.; company: company"
    assert words in str(error)


def test_an_error_body_echoing_the_keys_is_scrubbed(cw: respx.MockRouter) -> None:
    echo = f"bad header Basic {BASIC} for {PUBLIC}:{PRIVATE.upper()} client {CLIENT_ID}\x1b[31m"
    cw.get(f"{TICKETS}/69").respond(400, json={"code": "BadRequest", "message": echo, "errors": [{"field": PRIVATE}]})
    with pytest.raises(ConnectWisePermanentError) as raised:
        adapter().get_ticket("69")
    text = f"{raised.value} {raised.value!r} {raised.value.details!r} {raised.value.args}"
    for secret in (PRIVATE, CLIENT_ID, BASIC, PUBLIC, "\x1b"):
        assert secret.lower() not in text.lower()
    assert "[redacted]" in text


def test_429_with_retry_after_seconds_is_retried_then_succeeds(cw: respx.MockRouter) -> None:
    route = cw.get(f"{TICKETS}/69")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "2"}, json={"code": "TooManyRequests", "message": "slow down"}),
        httpx.Response(200, json=ticket_json()),
    ]
    made, slept = quick_retries()
    assert made.get_ticket("69").ticket_id == "69"
    assert route.call_count == 2 and slept and slept[0] >= 2


def test_429_gives_up_after_the_attempts_with_its_retry_after(cw: respx.MockRouter) -> None:
    route = cw.get(f"{TICKETS}/69").respond(429, headers={"Retry-After": "3"})
    made, slept = quick_retries()
    with pytest.raises(ConnectWiseRateLimited) as raised:
        made.get_ticket("69")
    assert isinstance(raised.value, RateLimited) and raised.value.retry_after == 3
    assert route.call_count == 4 and len(slept) == 3


def test_429_with_a_long_retry_after_is_left_to_the_caller(cw: respx.MockRouter) -> None:
    route = cw.get(f"{TICKETS}/69").respond(429, headers={"Retry-After": "600"})
    made, slept = quick_retries()
    with pytest.raises(ConnectWiseRateLimited) as raised:
        made.get_ticket("69")
    assert raised.value.retry_after == 600 and route.call_count == 1 and not slept


def test_a_redirect_to_another_origin_is_refused_and_carries_no_keys(cw: respx.MockRouter) -> None:
    cw.get(f"{TICKETS}/69").respond(302, headers={"Location": "https://evil.example/steal"})
    evil = cw.get("https://evil.example/steal").respond(200, json=ticket_json())
    with pytest.raises(VendorError):
        adapter().get_ticket("69")
    assert not evil.called


# --- callback registration ---------------------------------------------------------------------------------


def _boards() -> list[dict[str, Any]]:
    board = fixture("service_boards.json")[0]
    return [{**board, "id": 7, "name": BOARD}, board]


def test_register_posts_a_board_level_ticket_callback(cw: respx.MockRouter) -> None:
    boards = cw.get(BOARDS).respond(200, json=_boards())
    listing = cw.get(CALLBACKS).respond(200, json=[fixture("system_callback_entry.json")])
    post = cw.post(CALLBACKS).respond(201, json={**fixture("system_callback_entry.json"), "url": CALLBACK_URL})
    adapter().register_callback(CALLBACK_URL)
    assert boards.calls[0].request.url.params["conditions"] == f'name="{BOARD}"'
    assert listing.calls[0].request.url.params["page"] == "1"
    assert sent_json(post) == {
        "url": CALLBACK_URL,
        "objectId": 7,
        "type": "Ticket",
        "level": "Board",
        "description": "msp intake",
        "inactiveFlag": False,
    }


def test_register_does_nothing_when_an_active_entry_has_the_url(cw: respx.MockRouter) -> None:
    cw.get(BOARDS).respond(200, json=_boards())
    entry = {**fixture("system_callback_entry.json"), "url": CALLBACK_URL}
    cw.get(CALLBACKS).respond(200, json=[entry])
    post = cw.post(CALLBACKS).respond(201, json=entry)
    adapter().register_callback(CALLBACK_URL)
    assert not post.called


def test_register_reads_every_page_and_ignores_an_inactive_entry(cw: respx.MockRouter) -> None:
    cw.get(BOARDS).respond(200, json=_boards())
    other = fixture("system_callback_entry.json")
    pages = cw.get(CALLBACKS)
    pages.side_effect = [
        httpx.Response(200, json=[{**other, "id": n} for n in range(100)]),
        httpx.Response(200, json=[{**other, "url": CALLBACK_URL, "inactiveFlag": True}]),
    ]
    post = cw.post(CALLBACKS).respond(201, json=other)
    adapter().register_callback(CALLBACK_URL)
    assert [c.request.url.params["page"] for c in pages.calls] == ["1", "2"]
    assert post.call_count == 1


def test_register_without_the_board_fails_clearly(cw: respx.MockRouter) -> None:
    cw.get(BOARDS).respond(200, json=[fixture("service_boards.json")[0]])
    with pytest.raises(ConnectWisePermanentError, match="no service board named 'Service Board'"):
        adapter().register_callback(CALLBACK_URL)


# --- callbacks: parsing ------------------------------------------------------------------------------------


def test_parse_a_ticket_callback_whose_entity_is_a_json_string() -> None:
    callback = adapter().parse_callback(raw_callback())
    assert callback == Callback(ticket_id="69", action="updated", key_ref=KEY_URL)


def test_parse_accepts_a_numeric_string_id_and_any_case_of_type() -> None:
    callback = adapter().parse_callback(raw_callback(ID="69", Type="Ticket", Action="Added"))
    assert (callback.ticket_id, callback.action) == ("69", "added")


def test_parse_a_deleted_ticket_without_an_entity() -> None:
    assert adapter().parse_callback(raw_callback(Action="deleted", Entity=None)).ticket_id == "69"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'"ticket"',
        b"\xff\xfe{}",
        raw_callback(Type="company"),
        raw_callback(Type=None),
        raw_callback(ID=None),
        raw_callback(ID=True),
        raw_callback(ID=-1),
        raw_callback(ID="69abc"),
        raw_callback(ID=1.5),
        raw_callback(Action=None),
        raw_callback(Action="up dated"),
        raw_callback(Action=""),
        raw_callback(Entity=None),
        raw_callback(Entity=ticket_json()),  # an object, not the JSON string ConnectWise sends
        raw_callback(Entity="{not json"),
        raw_callback(Entity='"a string"'),
        raw_callback(Entity=json.dumps(ticket_json(id=70))),  # about another ticket
        raw_callback(Metadata=None),
        raw_callback(Metadata={}),
        raw_callback(Metadata={"key_url": 7}),
        raw_callback(Metadata=KEY_URL),
        raw_callback().replace(b'"ID": 69', b'"ID": 69, "ID": 70'),  # a duplicate key
        raw_callback(Padding="x" * MAX_CALLBACK_BYTES),
    ],
)
def test_a_malformed_callback_is_rejected(raw: bytes) -> None:
    with pytest.raises(CallbackRejected) as raised:
        adapter().parse_callback(raw)
    assert raised.value.reason == "malformed"


def test_missing_fields_are_each_rejected() -> None:
    for name in ("ID", "Type", "Action", "Metadata"):
        payload = callback_payload()
        del payload[name]
        with pytest.raises(CallbackRejected):
            adapter().parse_callback(json.dumps(payload).encode())


# --- callbacks: signatures and keys ------------------------------------------------------------------------


@pytest.fixture
def made() -> Iterator[ConnectWiseAdapter]:
    made = adapter()
    yield made
    made.close()


def verify(made: ConnectWiseAdapter, raw: bytes, signature: str | None = None, **headers: str) -> None:
    sent = {"x-content-signature": sign(raw) if signature is None else signature, **headers}
    made.verify_callback(raw, sent, made.parse_callback(raw))


def test_a_good_signature_verifies(cw: respx.MockRouter, made: ConnectWiseAdapter) -> None:
    key = cw.get(KEY_URL).mock(return_value=key_answer())
    verify(made, raw_callback())
    request = key.calls[0].request
    # Our credentials never go to the key URL.
    assert "authorization" not in request.headers and "clientid" not in request.headers


def test_the_header_name_is_matched_in_any_case(cw: respx.MockRouter, made: ConnectWiseAdapter) -> None:
    cw.get(KEY_URL).mock(return_value=key_answer())
    raw = raw_callback()
    made.verify_callback(raw, {"X-Content-Signature": sign(raw)}, made.parse_callback(raw))


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (sign(raw_callback(), key="another-key"), "bad signature"),
        (sign(raw_callback() + b" "), "bad signature"),
        ("not base64!", "bad signature"),
        (base64.b64encode(b"short").decode(), "bad signature"),
        (hashlib.sha256(b"x").hexdigest(), "bad signature"),
    ],
)
def test_a_bad_signature_is_rejected(
    cw: respx.MockRouter, made: ConnectWiseAdapter, signature: str, reason: str
) -> None:
    cw.get(KEY_URL).mock(return_value=key_answer())
    with pytest.raises(CallbackRejected) as raised:
        verify(made, raw_callback(), signature)
    assert raised.value.reason == reason


def test_an_unsigned_callback_is_rejected_without_a_fetch(cw: respx.MockRouter, made: ConnectWiseAdapter) -> None:
    key = cw.get(KEY_URL).mock(return_value=key_answer())
    raw = raw_callback()
    with pytest.raises(CallbackRejected) as raised:
        made.verify_callback(raw, {}, made.parse_callback(raw))
    assert raised.value.reason == "unsigned" and not key.called


def test_a_callback_checked_against_another_body_is_rejected(cw: respx.MockRouter, made: ConnectWiseAdapter) -> None:
    cw.get(KEY_URL).mock(return_value=key_answer())
    raw, other = raw_callback(), raw_callback(ID=70, Entity=json.dumps(ticket_json(id=70)))
    with pytest.raises(CallbackRejected):
        made.verify_callback(raw, {"x-content-signature": sign(raw)}, made.parse_callback(other))


def test_a_replay_verifies_the_same_way_and_has_a_stable_fingerprint(
    cw: respx.MockRouter, made: ConnectWiseAdapter
) -> None:
    """Verification is pure: the route dedupes replays on the body's fingerprint in the database."""
    key = cw.get(KEY_URL).mock(return_value=key_answer())
    raw = raw_callback()
    verify(made, raw)
    verify(made, raw)
    assert key.call_count == 1  # cached
    assert callback_fingerprint(raw) == callback_fingerprint(bytes(raw)) == hashlib.sha256(raw).hexdigest()
    assert callback_fingerprint(raw) != callback_fingerprint(raw_callback(Action="added"))


@pytest.mark.parametrize(
    "key_url",
    [
        "https://evil.example/v4_6_release/apis/3.0/system/callbackkeys/key-1",
        "http://api-na.myconnectwise.net/v4_6_release/apis/3.0/system/callbackkeys/key-1",
        "https://api-na.myconnectwise.net:8443/v4_6_release/apis/3.0/system/callbackkeys/key-1",
        "https://api-na.myconnectwise.net.evil.example/v4_6_release/apis/3.0/system/callbackkeys/key-1",
        "https://user@api-na.myconnectwise.net/v4_6_release/apis/3.0/system/callbackkeys/key-1",
        "https://API-NA.myconnectwise.net/v4_6_release/apis/3.0/system/callbackkeys/key-1",
        "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/service/tickets/69",
        "https://api-na.myconnectwise.net/v4_6_release/system/callbackkey/index.rails?id=key-1",
        f"{KEY_URL}?x=1",
        f"{KEY_URL}#frag",
        f"{KEY_URL}/",
        f"{KEYS}/../../service/tickets",
        f"{KEYS}/%2e%2e",
        f"{KEYS}/key%2D1",
        f"{KEYS}/",
        f"{KEYS}/{'k' * 65}",
        f"{KEYS}/key 1",
        f"{KEYS}/key-1\n",
        "//evil.example/key-1",
        "key-1",
    ],
)
def test_a_key_url_anywhere_else_is_refused_without_any_fetch(
    cw: respx.MockRouter, made: ConnectWiseAdapter, key_url: str
) -> None:
    anything = cw.route().mock(return_value=key_answer())
    raw = raw_callback(Metadata={"key_url": key_url})
    with pytest.raises(CallbackRejected) as raised:
        verify(made, raw)
    assert raised.value.reason == "foreign key url"
    assert not anything.called


def test_the_key_is_cached_per_key_id(cw: respx.MockRouter) -> None:
    key = cw.get(KEY_URL).mock(return_value=key_answer())
    other = cw.get(f"{KEYS}/key-2").mock(return_value=key_answer("second-key"))
    made = adapter()
    verify(made, raw_callback())
    verify(made, raw_callback(Action="added"))
    raw2 = raw_callback(Metadata={"key_url": f"{KEYS}/key-2"})
    verify(made, raw2, sign(raw2, "second-key"))
    assert (key.call_count, other.call_count) == (1, 1)
    # Without a cache every callback fetches its key.
    uncached = adapter(key_cache_s=0)
    verify(uncached, raw_callback())
    verify(uncached, raw_callback())
    assert key.call_count == 3


def test_a_cached_key_expires(cw: respx.MockRouter) -> None:
    now = [1000.0]
    key = cw.get(KEY_URL).mock(return_value=key_answer())
    made = adapter(key_cache_s=300, clock=lambda: now[0])
    verify(made, raw_callback())
    now[0] += 299
    verify(made, raw_callback())
    now[0] += 2
    verify(made, raw_callback())
    assert key.call_count == 2


def test_a_redirect_of_the_key_fetch_is_not_followed(cw: respx.MockRouter, made: ConnectWiseAdapter) -> None:
    cw.get(KEY_URL).respond(302, headers={"Location": f"{KEYS}/key-2"})
    target = cw.get(f"{KEYS}/key-2").mock(return_value=key_answer())
    with pytest.raises(CallbackRejected) as raised:
        verify(made, raw_callback())
    assert raised.value.reason == "key unavailable" and not target.called


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, json={"signing_key": SIGNING_KEY, "padding": "x" * 5000}),
        httpx.Response(200, json={}),
        httpx.Response(200, json={"signing_key": ""}),
        httpx.Response(200, json={"signing_key": 7}),
        httpx.Response(200, json=[SIGNING_KEY]),
        httpx.Response(200, text=f"<html>{SIGNING_KEY}</html>", headers={"Content-Type": "text/html"}),
        httpx.Response(404, json={"code": "NotFound"}),
        httpx.Response(500),
    ],
)
def test_an_oversized_failed_or_malformed_key_answer_is_rejected(
    cw: respx.MockRouter, made: ConnectWiseAdapter, answer: httpx.Response
) -> None:
    cw.get(KEY_URL).mock(return_value=answer)
    with pytest.raises(CallbackRejected) as raised:
        verify(made, raw_callback())
    assert raised.value.reason == "key unavailable"


def test_key_fetches_are_rate_limited(cw: respx.MockRouter) -> None:
    """A flood of callbacks naming made-up key ids cannot make us hammer the PSA."""
    keys = cw.get(url__startswith=f"{KEYS}/").mock(return_value=key_answer())
    made = adapter(key_fetch_rate="2/minute")
    for n in (1, 2):
        raw = raw_callback(Metadata={"key_url": f"{KEYS}/flood-{n}"})
        verify(made, raw)
    raw = raw_callback(Metadata={"key_url": f"{KEYS}/flood-3"})
    with pytest.raises(CallbackRejected) as raised:
        verify(made, raw)
    assert raised.value.reason == "key fetch rate limited"
    assert keys.call_count == 2
    # A key already fetched still verifies.
    verify(made, raw_callback(Metadata={"key_url": f"{KEYS}/flood-1"}))


# --- shared limits through Redis ---------------------------------------------------------------------------


@pytest.fixture
def rds(stack_env: dict[str, str]) -> Iterator[Redis]:
    """The test stack's Redis (a database of its own), never the machine's 6379."""
    client = Redis.from_url(stack_env["MSP_REDIS_URL"].rsplit("/", 1)[0] + "/7")
    yield client
    client.close()


def _reset(made: ConnectWiseAdapter) -> None:
    if made.http.breaker is not None:
        made.http.breaker.reset()
    if made.http.limiter is not None:
        made.http.limiter.reset("connectwise")
    made.keys.budget.reset()


def test_the_key_fetch_budget_is_shared_through_redis(cw: respx.MockRouter, rds: Redis) -> None:
    cw.get(url__startswith=f"{KEYS}/").mock(return_value=key_answer())
    first, second = adapter(redis=rds, key_fetch_rate="2/minute"), adapter(redis=rds, key_fetch_rate="2/minute")
    _reset(first)
    try:
        for n in (1, 2):
            verify(first, raw_callback(Metadata={"key_url": f"{KEYS}/shared-{n}"}))
        with pytest.raises(CallbackRejected, match="key fetch rate limited"):
            verify(second, raw_callback(Metadata={"key_url": f"{KEYS}/shared-3"}))
    finally:
        _reset(first)


def test_calls_share_a_rate_limit_and_a_circuit_breaker(cw: respx.MockRouter, rds: Redis) -> None:
    route = cw.get(f"{TICKETS}/69").respond(503)
    made = adapter(redis=rds, rate="100/minute", breaker=BreakerConfig(failure_threshold=2, cooldown_s=60))
    # A rate with no room after one call, and no waiting for room: refused locally, before any request.
    limited = adapter(redis=rds, rate="1/minute")
    limited.http.rate_wait_s = 0
    _reset(made)
    _reset(limited)
    try:
        for _ in range(2):
            with pytest.raises(ConnectWiseTransientError):
                made.get_ticket("69")
        with pytest.raises(CircuitOpen):
            made.get_ticket("69")
        assert route.call_count == 2  # the open circuit made no call
        _reset(made)
        route.respond(200, json=ticket_json())
        limited.get_ticket("69")
        with pytest.raises(RateLimited) as raised:
            limited.get_ticket("69")
        assert raised.value.local and route.call_count == 3
    finally:
        _reset(made)
        _reset(limited)
        made.close()
        limited.close()


# --- secrets -----------------------------------------------------------------------------------------------


def test_no_key_in_any_exception_repr_or_log(cw: respx.MockRouter, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    echo = {"code": "Unauthorized", "message": f"{PUBLIC}:{PRIVATE} {CLIENT_ID} {BASIC}"}
    cw.get(f"{TICKETS}/1").respond(401, json=echo)
    cw.get(f"{TICKETS}/2").respond(400, json=echo)
    cw.get(f"{TICKETS}/3").respond(429, headers={"Retry-After": "1"}, json=echo)
    cw.get(KEY_URL).mock(return_value=key_answer())
    cw.get(f"{KEYS}/bad").respond(500, json={"signing_key": SIGNING_KEY})
    made, _ = quick_retries()
    seen: list[str] = [repr(made), repr(made.keys), repr(made._auth), str(made.__dict__)]
    for ticket_id in ("1", "2", "3"):
        with pytest.raises(VendorError) as raised:
            made.get_ticket(ticket_id)
        seen += [str(raised.value), repr(raised.value), repr(getattr(raised.value, "details", None))]
    verify(made, raw_callback())
    for raw, signature in (
        (raw_callback(), sign(raw_callback(), "wrong")),
        (raw_callback(Metadata={"key_url": f"{KEYS}/bad"}), None),
    ):
        with pytest.raises(CallbackRejected) as rejected:
            verify(made, raw, signature)
        seen += [str(rejected.value), repr(rejected.value)]
    with pytest.raises(TypeError):
        pickle.dumps(made._auth)
    assert any("retrying" in r.getMessage() for r in caplog.records)
    text = "\n".join(seen) + caplog.text
    for secret in (PRIVATE, CLIENT_ID, BASIC, SIGNING_KEY, hashlib.sha256(SIGNING_KEY.encode()).hexdigest()):
        assert secret not in text


def test_bad_keys_are_refused_without_being_echoed() -> None:
    for options in ({"private_key": "two words"}, {"client_id": ""}, {"public_key": "a:b"}, {"company": "a+b"}):
        values = {"public_key": PUBLIC, "private_key": PRIVATE, "client_id": CLIENT_ID, "company": COMPANY, **options}
        with pytest.raises(ValueError) as refused:
            ConnectWiseAdapter(
                site_url=SITE,
                board=BOARD,
                status_maps={BOARD: DEFAULT_PSA_STATUS_MAP},
                closed_statuses={},
                **values,
            )
        assert "two words" not in str(refused.value)


def test_plain_http_is_refused_off_loopback() -> None:
    with pytest.raises(ValueError, match="https"):
        adapter(site_url="http://cw.example.com")
    adapter(site_url="http://127.0.0.1:8099/connectwise").close()
