"""vendor_sim's ConnectWise PSA: auth, tickets, conditions, JSON Patch, notes, callbacks, signing keys, control routes.

In-process tests use a TestClient on a loopback Host (the /_sim control API refuses any other). Callback
delivery is tested against a live simulator (uvicorn in a thread) posting to a receiver on another port of
127.0.0.1; each signature is checked here independently, with the key fetched from the callback's key URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from mspctl.ports import free_port
from mspctl.threaded_server import ThreadedServer
from vendor_sim.app import create_app

API = "/connectwise/v4_6_release/apis/3.0"
COMPANY = "acme"
PUBLIC = "pub-7c1e9a"
PRIVATE = "priv-canary-3f8b2d61"
CLIENT_ID = "client-5d0c"
LOGIN = f"{COMPANY}+{PUBLIC}:{PRIVATE}"
TOKEN = base64.b64encode(LOGIN.encode()).decode()
AUTH = {"Authorization": f"Basic {TOKEN}", "clientId": CLIENT_ID}
SIM_HOST = "http://127.0.0.1"


def basic(login: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(login.encode()).decode(), "clientId": CLIENT_ID}


def fp(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def signature(body: bytes, signing_key: str) -> str:
    """ConnectWise's scheme, written out here apart from the simulator's own code."""
    derived = hashlib.sha256(signing_key.encode("utf-8")).digest()
    return base64.b64encode(hmac.new(derived, body, hashlib.sha256).digest()).decode()


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("MSP_ENV", "dev")
    with TestClient(create_app(latency_ms=0), base_url=SIM_HOST) as client:
        yield client


def ticket_body(**extra: Any) -> dict[str, Any]:
    body = {
        "summary": "spam_filter_setup · task 1a2b3c4d",
        "board": {"name": "Service Board"},
        "company": {"id": 250},
        "status": {"name": "New"},
        **extra,
    }
    return body


def create(client: TestClient | httpx.Client, **extra: Any) -> dict[str, Any]:
    response = client.post(f"{API}/service/tickets", json=ticket_body(**extra), headers=AUTH)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


class Receiver:
    """A callback receiver on 127.0.0.1: records each POST's path, headers and raw body; answers `status`."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}  # names are case-insensitive
                receiver.calls.append({"path": self.path, "headers": headers, "raw": raw})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The calls once `count` have arrived (an API change calls back after it has answered)."""
        deadline = time.monotonic() + timeout
        while len(self.calls) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.calls


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    served = Receiver()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def _live_sim() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MSP_ENV", "dev")
        served = ThreadedServer(create_app(latency_ms=0), free_port(), lifespan="auto").start()
        yield served.url
        served.stop()


@pytest.fixture
def live(_live_sim: str) -> Iterator[httpx.Client]:
    """An HTTP client on a live simulator, reset before each test."""
    with httpx.Client(base_url=_live_sim, timeout=10) as client:
        client.post("/_sim/reset").raise_for_status()
        yield client


def register(client: TestClient | httpx.Client, url: str, **extra: Any) -> dict[str, Any]:
    body = {"url": url, "objectId": 1, "type": "Ticket", "level": "Board", "description": "intake", **extra}
    response = client.post(f"{API}/system/callbacks", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    entry: dict[str, Any] = response.json()
    return entry


# --- auth --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"clientId": CLIENT_ID},
        basic(f"{COMPANY}+bad-key:{PRIVATE}"),
        basic(f"{COMPANY}+{PUBLIC}:bad-key"),
        basic(f"{COMPANY}{PUBLIC}:{PRIVATE}"),  # no "+" between company and public key
        {"Authorization": "Basic not*base64", "clientId": CLIENT_ID},
        {"Authorization": f"Bearer {TOKEN}", "clientId": CLIENT_ID},
    ],
)
def test_refused_credentials_get_a_401(sim: TestClient, headers: dict[str, str]) -> None:
    response = sim.get(f"{API}/service/tickets", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "Unauthorized" and response.json()["message"]


def test_a_missing_client_id_is_refused_naming_it(sim: TestClient) -> None:
    response = sim.get(f"{API}/service/tickets", headers={"Authorization": f"Basic {TOKEN}"})
    assert response.status_code == 401
    assert response.json()["code"] == "Unauthorized" and "clientId" in response.json()["message"]
    assert sim.get(f"{API}/service/tickets", headers={**AUTH, "clientId": " "}).status_code == 401
    # Any other company, keys and clientId are accepted.
    assert sim.get(f"{API}/service/tickets", headers=basic("other+k:s")).status_code == 200


# --- tickets -----------------------------------------------------------------------------------------------


def test_create_then_get_and_find_by_external_ref(sim: TestClient) -> None:
    first = create(sim, externalXRef="task-a", owner={"identifier": "jdoe"}, initialDescription="see portal")
    second = create(sim, externalXRef="task-b")
    assert second["id"] == first["id"] + 1
    assert first["summary"] == "spam_filter_setup · task 1a2b3c4d" and first["recordType"] == "ServiceTicket"
    assert (first["board"]["id"], first["board"]["name"]) == (1, "Service Board")
    assert (first["status"]["id"], first["status"]["name"]) == (1, "New")
    assert first["status"]["_info"]["status_href"] == f"{SIM_HOST}{API}/service/boards/1/statuses/1"
    assert first["company"]["id"] == 250 and first["owner"]["identifier"] == "jdoe"
    assert first["externalXRef"] == "task-a" and first["closedFlag"] is False
    assert first["_info"]["notes_href"] == f"{SIM_HOST}{API}/service/tickets/{first['id']}/notes"
    assert first["_info"]["enteredBy"] == "api-member"
    # ConnectWise leaves null fields out: no owner on the second ticket.
    assert "owner" not in second and "closedDate" not in second
    assert sim.get(f"{API}/service/tickets/{first['id']}", headers=AUTH).json() == first

    found = sim.get(f"{API}/service/tickets", params={"conditions": 'externalXRef="task-b"'}, headers=AUTH)
    assert found.status_code == 200 and [t["id"] for t in found.json()] == [second["id"]]
    by_id = sim.get(f"{API}/service/tickets", params={"conditions": f"id = {first['id']}"}, headers=AUTH).json()
    assert [t["externalXRef"] for t in by_id] == ["task-a"]
    both = f'externalXRef="TASK-A" AND id={first["id"]}'  # strings compare without case, as ConnectWise does
    assert len(sim.get(f"{API}/service/tickets", params={"conditions": both}, headers=AUTH).json()) == 1
    none = f'externalXRef="task-a" and id={second["id"]}'
    assert sim.get(f"{API}/service/tickets", params={"conditions": none}, headers=AUTH).json() == []
    count = sim.get(f"{API}/service/tickets/count", params={"conditions": 'status/name="New"'}, headers=AUTH)
    assert count.json() == {"count": 2}
    # initialDescription becomes the ticket's first (description) note, by the API member.
    (note,) = sim.get(f"{API}/service/tickets/{first['id']}/notes", headers=AUTH).json()
    assert (note["text"], note["detailDescriptionFlag"], note["internalAnalysisFlag"]) == ("see portal", True, False)
    assert note["member"]["identifier"] == "api-member" and note["ticketId"] == first["id"]


@pytest.mark.parametrize(
    "conditions",
    [
        'summary like "spam%"',
        'externalXRef="a" or id=1',
        "nosuchfield=1",
        'id="1"',
        "id>1",
        "(id=1)",
        'externalXRef="a" and',
    ],
)
def test_unsupported_conditions_are_refused(sim: TestClient, conditions: str) -> None:
    create(sim, externalXRef="a")
    response = sim.get(f"{API}/service/tickets", params={"conditions": conditions}, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["code"] == "BadRequest" and response.json()["message"]


def test_create_is_validated_as_connectwise_does(sim: TestClient) -> None:
    wrong_status = sim.post(f"{API}/service/tickets", json=ticket_body(status={"name": "Dispatched"}), headers=AUTH)
    assert wrong_status.status_code == 400
    body = wrong_status.json()
    assert (body["code"], body["message"]) == ("InvalidObject", "ticket object is invalid")
    assert [(e["code"], e["field"]) for e in body["errors"]] == [("NotFound", "status/name")]
    assert "Service Board 1" in body["errors"][0]["message"]

    missing = sim.post(f"{API}/service/tickets", json={"board": {"id": 1}}, headers=AUTH).json()
    assert {(e["code"], e["field"]) for e in missing["errors"]} == {
        ("MissingRequiredField", "summary"),
        ("MissingRequiredField", "company"),
    }
    unknown = sim.post(f"{API}/service/tickets", json=ticket_body(clientName="Acme Ltd"), headers=AUTH)
    assert unknown.status_code == 400 and unknown.json()["code"] == "ConnectWiseApi"
    assert "Could not find member 'clientName' on object of type 'Ticket'" in unknown.json()["message"]
    not_json = sim.post(
        f"{API}/service/tickets", content=b"{nope", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 400 and not_json.json()["code"] == "ConnectWiseApi"
    assert sim.get("/_sim/connectwise/state").json()["tickets"] == []  # nothing was made

    # A real Ticket member the simulator does not model is accepted; a company by identifier gets an id.
    made = create(sim, priority={"id": 4}, company={"identifier": "AcmeCo"}, status={"id": 2})
    assert made["company"]["identifier"] == "AcmeCo" and isinstance(made["company"]["id"], int)
    assert made["status"]["name"] == "In Progress"
    defaulted = sim.post(f"{API}/service/tickets", json={"summary": "s", "company": {"id": 9}}, headers=AUTH).json()
    assert (defaulted["board"]["name"], defaulted["status"]["name"]) == ("Service Board", "New")


def test_paging_with_a_link_header(sim: TestClient) -> None:
    ids = [create(sim, externalXRef=f"x{i}")["id"] for i in range(9)]
    for _ in range(2):
        create(sim, status={"name": "In Progress"})  # left out by the condition below
    params = {"conditions": 'status/name="New"', "page": 3, "pageSize": 2}
    middle = sim.get(f"{API}/service/tickets", params=params, headers=AUTH)
    assert [t["id"] for t in middle.json()] == ids[4:6]
    links = dict(
        (part.split(";")[1].strip().removeprefix("rel=").strip('"'), part.split(";")[0].strip().strip("<>"))
        for part in middle.headers["link"].split(",")
    )
    assert set(links) == {"next", "last", "first", "prev"}
    pages = {rel: httpx.URL(url).params for rel, url in links.items()}
    assert {rel: (p["page"], p["pageSize"]) for rel, p in pages.items()} == {
        "next": ("4", "2"),
        "last": ("5", "2"),
        "first": ("1", "2"),
        "prev": ("2", "2"),
    }
    assert all(p["conditions"] == 'status/name="New"' for p in pages.values())
    assert links["next"].startswith(f"{SIM_HOST}{API}/service/tickets?")
    last = sim.get(links["last"].removeprefix(SIM_HOST), headers=AUTH)
    assert [t["id"] for t in last.json()] == ids[8:] and 'rel="next"' not in last.headers["link"]
    first = sim.get(f"{API}/service/tickets", params={"pageSize": 2}, headers=AUTH)
    assert 'rel="prev"' not in first.headers["link"] and len(first.json()) == 2
    assert "link" not in sim.get(f"{API}/service/tickets", headers=AUTH).headers  # one page (default 25)
    assert sim.get(f"{API}/service/tickets", params={"pageSize": 0}, headers=AUTH).status_code == 400
    assert sim.get(f"{API}/service/tickets", params={"page": "x"}, headers=AUTH).status_code == 400


def test_json_patch_updates_status_and_owner(sim: TestClient) -> None:
    ticket = create(sim)
    url = f"{API}/service/tickets/{ticket['id']}"
    patch = [
        {"op": "replace", "path": "status", "value": {"name": "In Progress"}},
        {"op": "replace", "path": "/owner", "value": {"identifier": "jdoe"}},
    ]
    updated = sim.patch(url, json=patch, headers=AUTH)
    assert updated.status_code == 200
    assert (updated.json()["status"]["name"], updated.json()["owner"]["identifier"]) == ("In Progress", "jdoe")
    assert updated.json()["_info"]["updatedBy"] == "api-member"
    assert sim.get(url, headers=AUTH).json() == updated.json()

    closed = sim.patch(url, json=[{"op": "replace", "path": "/status/name", "value": "Completed"}], headers=AUTH)
    assert closed.json()["closedFlag"] is True and closed.json()["closedBy"] == "api-member"
    unassigned = sim.patch(url, json=[{"op": "replace", "path": "owner", "value": None}], headers=AUTH).json()
    assert "owner" not in unassigned
    reopened = sim.patch(url, json=[{"op": "replace", "path": "status/id", "value": 1}], headers=AUTH).json()
    assert reopened["closedFlag"] is False and reopened["status"]["name"] == "New"

    # One bad operation changes nothing, the good ones included.
    bad = [
        {"op": "replace", "path": "owner", "value": {"identifier": "amy"}},
        {"op": "replace", "path": "status", "value": {"name": "Dispatched"}},
    ]
    refused = sim.patch(url, json=bad, headers=AUTH)
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "status/name"
    assert "owner" not in sim.get(url, headers=AUTH).json()
    unknown = sim.patch(url, json=[{"op": "replace", "path": "clientName", "value": "x"}], headers=AUTH)
    assert unknown.status_code == 400 and "clientName" in unknown.json()["message"]
    assert sim.patch(url, json={"status": {"name": "New"}}, headers=AUTH).status_code == 400  # not an array
    assert sim.patch(url, json=[{"op": "copy", "path": "status"}], headers=AUTH).status_code == 400


def test_notes(sim: TestClient) -> None:
    ticket = create(sim)
    url = f"{API}/service/tickets/{ticket['id']}/notes"
    body = {"text": "release.granted credential 42 rule in_scope audit #7", "internalAnalysisFlag": True}
    made = sim.post(url, json={**body, "detailDescriptionFlag": False}, headers=AUTH)
    assert made.status_code == 201
    note = made.json()
    assert (note["ticketId"], note["text"], note["internalAnalysisFlag"], note["detailDescriptionFlag"]) == (
        ticket["id"],
        body["text"],
        True,
        False,
    )
    assert note["createdBy"] == "api-member" and note["member"]["identifier"] == "api-member"
    assert sim.get(url, headers=AUTH).json() == [note]
    assert sim.post(url, json={"internalAnalysisFlag": True}, headers=AUTH).json()["errors"][0]["field"] == "text"
    assert sim.post(url, json={"text": "x", "secret": "y"}, headers=AUTH).json()["code"] == "ConnectWiseApi"
    (shown,) = sim.get(f"/_sim/psa/connectwise/tickets/{ticket['id']}").json()["notes"]
    assert (shown["id"], shown["text"], shown["internal"], shown["created_by"]) == (
        note["id"],
        body["text"],
        True,
        "api-member",
    )
    assert shown["created_at"] == note["dateCreated"]


def test_not_found_answers(sim: TestClient) -> None:
    missing = sim.get(f"{API}/service/tickets/999", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json() == {"code": "NotFound", "message": "Ticket 999 not found", "errors": None}
    assert sim.patch(f"{API}/service/tickets/999", json=[], headers=AUTH).status_code == 404
    assert sim.get(f"{API}/service/tickets/999/notes", headers=AUTH).status_code == 404
    assert sim.post(f"{API}/service/tickets/999/notes", json={"text": "x"}, headers=AUTH).status_code == 404
    assert sim.delete(f"{API}/system/callbacks/5", headers=AUTH).status_code == 404
    assert sim.get(f"{API}/service/boards/7/statuses", headers=AUTH).status_code == 404
    other = sim.get(f"{API}/service/nothing-here", headers=AUTH)
    assert other.status_code == 404 and other.json()["code"] == "NotFound"
    assert sim.get(f"{API}/system/callbackkeys/not-a-key").status_code == 404
    control = sim.get("/_sim/psa/connectwise/tickets/999")
    assert control.status_code == 404 and control.json()["error"] == "not_found"
    assert sim.post("/_sim/psa/connectwise/tickets/999/status", json={"status": "Closed"}).status_code == 404
    assert sim.get("/_sim/psa/connectwise/tickets/999/screen").status_code == 404


def test_boards_and_statuses(sim: TestClient) -> None:
    boards = sim.get(f"{API}/service/boards", params={"conditions": 'name="Service Board"'}, headers=AUTH).json()
    assert [(b["id"], b["name"]) for b in boards] == [(1, "Service Board")]
    assert sim.get(f"{API}/service/boards", params={"conditions": 'name="Other"'}, headers=AUTH).json() == []
    statuses = sim.get(f"{API}/service/boards/1/statuses", headers=AUTH).json()
    assert [(s["name"], s["closedStatus"]) for s in statuses] == [
        ("New", False),
        ("In Progress", False),
        ("Waiting Client", False),
        ("Completed", True),
        ("Closed", True),
    ]
    assert all(s["board"]["id"] == 1 and "sortOrder" in s for s in statuses)
    assert sim.get(f"{API}/service/boards/1/statuses/4", headers=AUTH).json()["name"] == "Completed"


# --- callback registrations --------------------------------------------------------------------------------


def test_callback_registrations(sim: TestClient) -> None:
    entry = register(sim, "http://127.0.0.1:9/hook")
    assert (entry["url"], entry["objectId"], entry["type"], entry["level"]) == (
        "http://127.0.0.1:9/hook",
        1,
        "Ticket",
        "Board",
    )
    assert entry["inactiveFlag"] is False and entry["isSelfSuppressedFlag"] is False
    assert isinstance(entry["memberId"], int) and entry["description"] == "intake"
    listed = sim.get(f"{API}/system/callbacks", headers=AUTH).json()
    assert listed == [entry]
    found = sim.get(f"{API}/system/callbacks", params={"conditions": f'url="{entry["url"]}"'}, headers=AUTH)
    assert found.json() == [entry]
    again = sim.post(f"{API}/system/callbacks", json={**entry, "id": None, "level": "Owner"}, headers=AUTH)
    assert again.status_code == 400 and again.json()["errors"][0]["field"] == "url"
    bad = {"url": "ftp://x", "objectId": 1, "type": "Ticket", "level": "Galaxy"}
    refused = sim.post(f"{API}/system/callbacks", json=bad, headers=AUTH).json()
    assert {e["field"] for e in refused["errors"]} == {"url", "level"}
    state_keys = ("id", "url", "objectId", "type", "level", "description", "inactiveFlag", "isSelfSuppressedFlag")
    assert sim.get("/_sim/connectwise/state").json()["callbacks"] == [
        {**{k: entry[k] for k in state_keys}, "memberId": entry["memberId"]}
    ]
    assert sim.delete(f"{API}/system/callbacks/{entry['id']}", headers=AUTH).status_code == 204
    assert sim.get(f"{API}/system/callbacks/{entry['id']}", headers=AUTH).status_code == 404
    assert sim.get(f"{API}/system/callbacks", headers=AUTH).json() == []


# --- callback delivery -------------------------------------------------------------------------------------


def verify(call: dict[str, Any]) -> dict[str, Any]:
    """Check one delivered callback as a consumer would: key from its key URL, then the HMAC; returns the body."""
    body: dict[str, Any] = json.loads(call["raw"])
    key = httpx.get(body["Metadata"]["key_url"], timeout=5)  # no credentials: the key URL needs none
    assert key.status_code == 200
    signing_key = key.json()["signing_key"]
    assert hmac.compare_digest(call["headers"]["x-content-signature"], signature(call["raw"], signing_key))
    assert not hmac.compare_digest(call["headers"]["x-content-signature"], signature(call["raw"] + b" ", signing_key))
    return body


def test_a_status_change_in_the_psa_delivers_a_signed_callback(live: httpx.Client, receiver: Receiver) -> None:
    register(live, f"{receiver.url}/v1/webhooks/psa/connectwise")
    ticket = create(live, externalXRef="task-a", owner={"identifier": "jdoe"})
    assert receiver.calls == []  # creating is not a change that calls back here
    changed = live.post(f"/_sim/psa/connectwise/tickets/{ticket['id']}/status", json={"status": "Completed"})
    assert changed.status_code == 200
    (delivery,) = changed.json()["deliveries"]
    assert (delivery["status"], delivery["error"], delivery["member"]) == (200, None, "dispatcher")
    assert changed.json()["ticket"]["status"] == "Completed"

    (call,) = receiver.calls
    assert call["path"] == "/v1/webhooks/psa/connectwise"
    assert call["headers"]["content-type"].startswith("application/json")
    body = verify(call)
    assert list(body) == ["MessageId", "FromUrl", "CompanyId", "MemberId", "Action", "Type", "ID", "Entity", "Metadata"]
    assert (body["Action"], body["Type"], body["ID"], body["MemberId"], body["CompanyId"]) == (
        "updated",
        "ticket",
        ticket["id"],
        "dispatcher",
        COMPANY,
    )
    site = str(live.base_url).rstrip("/") + "/connectwise"
    assert body["MessageId"] == delivery["message_id"] and body["FromUrl"] == site
    assert body["Metadata"]["key_url"].startswith(f"{site}/v4_6_release/apis/3.0/system/callbackkeys/")
    entity = json.loads(body["Entity"])  # the ticket, JSON-encoded as a string
    assert isinstance(body["Entity"], str)
    assert (entity["id"], entity["status"]["name"], entity["closedFlag"]) == (ticket["id"], "Completed", True)
    assert entity["_info"]["updatedBy"] == "dispatcher"
    shown = live.get(f"/_sim/psa/connectwise/tickets/{ticket['id']}").json()
    assert shown["callbacks_sent"] == [delivery]
    assert (shown["status"], shown["owner"], shown["externalXRef"]) == ("Completed", "jdoe", "task-a")


def test_api_and_owner_changes_call_back_as_who_made_them(live: httpx.Client, receiver: Receiver) -> None:
    register(live, f"{receiver.url}/board")
    register(live, f"{receiver.url}/quiet", level="Owner", objectId=0, isSelfSuppressedFlag=True)
    register(live, f"{receiver.url}/off", level="Owner", objectId=0, inactiveFlag=True)
    register(live, f"{receiver.url}/other-ticket", level="Ticket", objectId=4242)
    ticket = create(live)
    url = f"{API}/service/tickets/{ticket['id']}"
    patched = live.patch(url, json=[{"op": "replace", "path": "owner", "value": {"identifier": "jdoe"}}], headers=AUTH)
    assert patched.status_code == 200
    # The API member's own change reaches every active registration that does not suppress its own changes.
    assert [c["path"] for c in receiver.wait_for(1)] == ["/board"]
    api_call = verify(receiver.calls[0])
    assert api_call["MemberId"] == "api-member" and json.loads(api_call["Entity"])["owner"]["identifier"] == "jdoe"

    receiver.calls.clear()
    moved = live.post(f"/_sim/psa/connectwise/tickets/{ticket['id']}/owner", json={"owner": "amy"})
    assert moved.status_code == 200 and moved.json()["ticket"]["owner"] == "amy"
    assert sorted(c["path"] for c in receiver.calls) == ["/board", "/quiet"]
    for call in receiver.calls:
        body = verify(call)
        assert body["MemberId"] == "dispatcher" and json.loads(body["Entity"])["owner"]["identifier"] == "amy"
    receiver.calls.clear()
    cleared = live.post(f"/_sim/psa/connectwise/tickets/{ticket['id']}/owner", json={"owner": None, "member": "bob"})
    assert cleared.json()["ticket"]["owner"] is None
    assert {verify(c)["MemberId"] for c in receiver.calls} == {"bob"}
    assert all("owner" not in json.loads(verify(c)["Entity"]) for c in receiver.calls)
    assert live.get(url, headers=AUTH).json()["_info"]["updatedBy"] == "bob"
    # Notes call nobody back.
    receiver.calls.clear()
    assert live.post(f"{url}/notes", json={"text": "n"}, headers=AUTH).status_code == 201
    assert receiver.calls == []


def poll_sent(live: httpx.Client, ticket_id: int, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The ticket's `callbacks_sent` once `count` deliveries have ended (they run after the PATCH answered)."""
    deadline = time.monotonic() + timeout
    while True:
        sent: list[dict[str, Any]] = live.get(f"/_sim/psa/connectwise/tickets/{ticket_id}").json()["callbacks_sent"]
        if len(sent) >= count or time.monotonic() > deadline:
            return sent
        time.sleep(0.05)


def test_a_failed_delivery_never_fails_the_change(live: httpx.Client, receiver: Receiver) -> None:
    closed_port = free_port()
    register(live, f"http://127.0.0.1:{closed_port}/hook")
    register(live, f"{receiver.url}/hook")
    receiver.status = 500
    ticket = create(live)
    patched = live.patch(
        f"{API}/service/tickets/{ticket['id']}",
        json=[{"op": "replace", "path": "status", "value": {"name": "Closed"}}],
        headers=AUTH,
    )
    assert patched.status_code == 200 and patched.json()["status"]["name"] == "Closed"
    sent = poll_sent(live, ticket["id"], 2)
    outcomes = {d["url"]: (d["status"], d["error"]) for d in sent}
    assert outcomes[f"{receiver.url}/hook"] == (500, None)
    status, error = outcomes[f"http://127.0.0.1:{closed_port}/hook"]
    assert status is None and error
    bad = live.post(f"/_sim/psa/connectwise/tickets/{ticket['id']}/status", json={"status": "Dispatched"})
    assert bad.status_code == 400 and bad.json()["field"] == "status"


def test_rotate_key(live: httpx.Client, receiver: Receiver) -> None:
    register(live, receiver.url + "/hook")
    ticket = create(live)
    before = live.get("/_sim/psa/connectwise/callback-key").json()
    assert set(before) == {"key_id", "key_url"}
    old_key = httpx.get(before["key_url"]).json()["signing_key"]
    live.post(f"/_sim/psa/connectwise/tickets/{ticket['id']}/status", json={"status": "In Progress"})
    assert json.loads(receiver.calls[0]["raw"])["Metadata"]["key_url"] == before["key_url"]

    rotated = live.post("/_sim/psa/connectwise/rotate-key")
    assert rotated.status_code == 200 and rotated.json()["key_id"] != before["key_id"]
    gone = httpx.get(before["key_url"])
    assert gone.status_code == 404 and gone.json()["code"] == "NotFound"
    new_key = httpx.get(rotated.json()["key_url"]).json()["signing_key"]
    assert new_key != old_key
    live.post(f"/_sim/psa/connectwise/tickets/{ticket['id']}/status", json={"status": "New"})
    latest = receiver.calls[-1]
    assert json.loads(latest["raw"])["Metadata"]["key_url"] == rotated.json()["key_url"]
    assert verify(latest) and latest["headers"]["x-content-signature"] != signature(latest["raw"], old_key)


# --- rate limit, faults, control guard ---------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(sim: TestClient) -> None:
    assert sim.post("/_sim/ratelimit", json={"vendor": "connectwise", "per_second": 1}).status_code == 200
    assert sim.get(f"{API}/service/tickets", headers=AUTH).status_code == 200
    over = sim.get(f"{API}/service/tickets", headers=AUTH)
    assert over.status_code == 429 and int(over.headers["retry-after"]) >= 1
    assert over.json()["code"] == "TooManyRequests"
    entries = sim.get("/_sim/requests", params={"path_prefix": "/connectwise/"}).json()["items"]
    assert [(e["vendor"], e["over_limit"], e["status"]) for e in entries] == [
        ("connectwise", False, 200),
        ("connectwise", True, 429),
    ]
    assert sim.get("/_sim/ratelimit").json()["limits"]["connectwise"] == 1.0


def test_faults_and_latency_apply_to_connectwise(sim: TestClient) -> None:
    sim.post("/_sim/faults", json={"mode": "503", "count": 1, "path_prefix": "/connectwise/", "retry_after": 3})
    faulted = sim.post(f"{API}/service/tickets", json=ticket_body(), headers=AUTH)
    assert faulted.status_code == 503 and faulted.headers["retry-after"] == "3"
    assert faulted.json()["code"] == "ServiceUnavailable"
    assert sim.get("/_sim/connectwise/state").json()["tickets"] == []  # the fault answered; nothing was made
    assert create(sim)["id"] >= 1
    logged = sim.get("/_sim/requests", params={"path_prefix": API}).json()["items"]
    assert [(e["fault"], e["status"]) for e in logged] == [("503", 503), (None, 201)]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/_sim/psa/connectwise/tickets/1", None),
        ("POST", "/_sim/psa/connectwise/tickets/1/status", {"status": "Closed"}),
        ("POST", "/_sim/psa/connectwise/tickets/1/owner", {"owner": None}),
        ("GET", "/_sim/psa/connectwise/tickets/1/screen", None),
        ("POST", "/_sim/psa/connectwise/rotate-key", None),
        ("GET", "/_sim/psa/connectwise/callback-key", None),
        ("GET", "/_sim/connectwise/state", None),
        ("PUT", "/_sim/connectwise/state", {"tickets": [], "callbacks": []}),
    ],
)
def test_control_routes_answer_only_a_loopback_host(
    sim: TestClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    create(sim)
    key = sim.get("/_sim/psa/connectwise/callback-key").json()
    response = sim.request(method, path, json=body, headers={"Host": "psa.example.net"})
    assert response.status_code == 403 and "loopback Host" in response.json()["detail"]
    assert sim.get("/_sim/psa/connectwise/callback-key").json() == key  # the refused call changed nothing
    assert sim.get("/_sim/connectwise/state").json()["tickets"][0]["status"] == "New"
    if method != "GET":
        form = sim.request(method, path, content=b"status=Closed", headers={"Content-Type": "text/plain"})
        assert form.status_code == 415


# --- the ticket screen -------------------------------------------------------------------------------------


class Frames(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.iframes: list[dict[str, str | None]] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "iframe":
            self.iframes.append(dict(attrs))
        self.scripts += tag == "script"


def test_the_screen_frames_the_portal_pod(sim: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    ticket = create(sim, summary="<b>renewal</b> & more")
    monkeypatch.delenv("VENDOR_SIM_PORTAL_URL", raising=False)
    default = sim.get(f"/_sim/psa/connectwise/tickets/{ticket['id']}/screen")
    assert default.status_code == 200 and default.headers["content-type"].startswith("text/html")
    parsed = Frames()
    parsed.feed(default.text)
    (frame,) = parsed.iframes
    assert frame["src"] == f"http://localhost:8000/pod/connectwise/tickets/{ticket['id']}"
    assert frame["title"] and int(frame["width"] or 0) >= 300 and int(frame["height"] or 0) >= 300
    assert parsed.scripts == 0
    assert f'#<span id="ticket-number">{ticket["id"]}</span>' in default.text
    assert "&lt;b&gt;renewal&lt;/b&gt; &amp; more" in default.text and "<b>renewal" not in default.text
    assert '<dd id="ticket-status">New</dd>' in default.text

    monkeypatch.setenv("VENDOR_SIM_PORTAL_URL", "http://localhost:8123/")
    sim.post(f"/_sim/psa/connectwise/tickets/{ticket['id']}/status", json={"status": "Waiting Client"})
    configured = Frames()
    page = sim.get(f"/_sim/psa/connectwise/tickets/{ticket['id']}/screen", headers={"Host": "127.0.0.1:8010"})
    configured.feed(page.text)
    assert configured.iframes[0]["src"] == f"http://localhost:8123/pod/connectwise/tickets/{ticket['id']}"
    assert '<dd id="ticket-status">Waiting Client</dd>' in page.text
    monkeypatch.setenv("VENDOR_SIM_PORTAL_URL", "javascript:alert(1)")
    assert sim.get(f"/_sim/psa/connectwise/tickets/{ticket['id']}/screen").status_code == 500


# --- state, reset, keys only as fingerprints ---------------------------------------------------------------


def test_state_round_trip_validation_and_reset(sim: TestClient) -> None:
    state = {
        "tickets": [
            {
                "id": 40,
                "summary": "seeded",
                "status": "Waiting Client",
                "company": 7,
                "owner": "jdoe",
                "externalXRef": "task-z",
                "notes": [{"text": "hello", "internal": True}],
            }
        ],
        "callbacks": [{"url": "http://127.0.0.1:9/h", "objectId": 0, "type": "ticket", "level": "owner"}],
    }
    put = sim.put("/_sim/connectwise/state", json=state)
    assert put.status_code == 200, put.text
    shown = put.json()
    (ticket,) = shown["tickets"]
    assert (ticket["id"], ticket["status"], ticket["owner"]) == (40, "Waiting Client", "jdoe")
    assert ticket["board"] == "Service Board"
    assert ticket["company"] == {"id": 7, "identifier": "Company7"} and ticket["notes"][0]["internal"] is True
    # GET's output is accepted back unchanged.
    assert sim.put("/_sim/connectwise/state", json=sim.get("/_sim/connectwise/state").json()).json() == shown
    served = sim.get(f"{API}/service/tickets/40", headers=AUTH).json()
    assert (served["externalXRef"], served["owner"]["identifier"], served["status"]["name"]) == (
        "task-z",
        "jdoe",
        "Waiting Client",
    )
    assert create(sim)["id"] == 41  # new ids follow the seeded ones

    bad = {
        "tickets": [{"summary": "", "status": "Dispatched", "company": "x", "colour": 1}],
        "callbacks": [{"url": "nope", "objectId": -1, "type": "ticket", "level": "galaxy"}],
    }
    refused = sim.put("/_sim/connectwise/state", json=bad)
    assert refused.status_code == 400
    assert {e["field"] for e in refused.json()["errors"]} == {
        "tickets.0.summary",
        "tickets.0.status",
        "tickets.0.company",
        "tickets.0.colour",
        "callbacks.0.url",
        "callbacks.0.objectId",
        "callbacks.0.level",
    }
    assert [t["id"] for t in sim.get("/_sim/connectwise/state").json()["tickets"]] == [40, 41]  # unchanged

    assert sim.post("/_sim/reset").status_code == 200
    assert sim.get("/_sim/connectwise/state").json() == {"tickets": [], "callbacks": []}
    assert create(sim)["id"] == 42  # ids never come back after a reset


def test_keys_appear_only_as_fingerprints(sim: TestClient) -> None:
    ticket = create(sim, externalXRef="task-a")
    sim.post(f"{API}/service/tickets/{ticket['id']}/notes", json={"text": "n"}, headers=AUTH)
    register(sim, "http://127.0.0.1:9/hook")
    sim.get(f"{API}/service/tickets", headers=basic(f"{COMPANY}+bad-key:{PRIVATE}"))
    sim.get(f"{API}/system/callbacks", headers={"Authorization": f"Basic {TOKEN}"})
    items = sim.get("/_sim/requests", params={"path_prefix": "/connectwise/"}).json()["items"]
    assert len(items) == 5
    assert {e.get("key_fingerprint") for e in items} == {fp(LOGIN), fp(f"{COMPANY}+bad-key:{PRIVATE}")}
    shown = (
        json.dumps(items)
        + sim.get("/_sim/connectwise/state").text
        + sim.get(f"/_sim/psa/connectwise/tickets/{ticket['id']}").text
    )
    for secret in (PRIVATE, PUBLIC, TOKEN, LOGIN, CLIENT_ID):
        assert secret not in shown
    # The callback signing key is not state either: it is served only at its key URL.
    key_url = sim.get("/_sim/psa/connectwise/callback-key").json()["key_url"]
    signing_key = sim.get(key_url.removeprefix(SIM_HOST)).json()["signing_key"]
    assert signing_key not in shown


def test_the_state_file_keeps_tickets_and_the_signing_key(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSP_ENV", "dev")
    path = tmp_path / "state.json"
    with TestClient(create_app(latency_ms=0, state_file=path), base_url=SIM_HOST) as first:
        assert first.get("/_sim/psa/connectwise/callback-key").status_code == 200
        assert not path.exists()  # an empty ConnectWise keeps nothing
        ticket = create(first, externalXRef="task-a")
        register(first, "http://127.0.0.1:9/hook")
        key = first.get("/_sim/psa/connectwise/callback-key").json()
        signing_key = first.get(key["key_url"].removeprefix(SIM_HOST)).json()["signing_key"]
        saved = json.loads(path.read_text())["connectwise"]
        assert saved["signing_key"] == {"id": key["key_id"], "key": signing_key}
        assert {k: v for k, v in saved.items() if k != "signing_key"} == first.get("/_sim/connectwise/state").json()
        assert PRIVATE not in path.read_text() and TOKEN not in path.read_text()
    with TestClient(create_app(latency_ms=0, state_file=path), base_url=SIM_HOST) as second:
        assert second.get(f"{API}/service/tickets/{ticket['id']}", headers=AUTH).json()["externalXRef"] == "task-a"
        assert second.get("/_sim/psa/connectwise/callback-key").json() == key
        assert second.get(key["key_url"].removeprefix(SIM_HOST)).json()["signing_key"] == signing_key
        second.post("/_sim/reset")
        assert "connectwise" not in json.loads(path.read_text())
