"""The PSA on the whole stack as `make up` runs it (slow: every part, real processes, the demo data).

intake's worker pushes each task of a mapped client to the simulator's ConnectWise (the demo maps Acme
Dental to the company `AcmeDental` and its technicians to members), notes every release on the ticket,
and registered its callback URL when it started; the simulator's control routes change a ticket as a
person in ConnectWise would, which sends ConnectWise's real signed callback to intake's webhook. Everything
is read back through the APIs and the simulator's control API, signed in as the demo people.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

# --import-mode=importlib puts no test dir on sys.path: the full-stack helpers live with the browser tests.
sys.path.insert(0, str(Path(__file__).parents[1] / "browser"))

from browser_helpers import FullStack, Person, fresh_stack, isp_setup_request, poll

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

CLIENT = "Acme Dental"


@pytest.fixture(scope="module")
def stack() -> Iterator[FullStack]:
    with fresh_stack("msp-psa-") as started:
        yield started


class Acme:
    """The demo client's people, the technicians and an admin, each with a token, and the simulator."""

    def __init__(self, stack: FullStack) -> None:
        self.user, self.boss = stack.client_people(CLIENT)
        assert self.user.client_id
        self.client_id: str = self.user.client_id
        self.stack = stack
        self.sim = httpx.Client(base_url=stack.urls["vendor_sim"], timeout=30)
        self.clients: list[httpx.Client] = [self.sim]
        self.admin = self.api("intake", stack.token("admin", "psa-admin"))
        self.tech1 = {name: self.api(name, stack.token("technician", "tech1")) for name in ("intake", "secrets_broker")}
        self.tech2 = self.api("secrets_broker", stack.token("technician", "tech2"))

    def api(self, name: str, token: str) -> httpx.Client:
        client = self.stack.api(name, token)
        self.clients.append(client)
        return client

    def person(self, name: str, person: Person) -> httpx.Client:
        return self.api(name, self.stack.person_token(person))

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def task(self, task_id: str) -> dict[str, Any]:
        got = self.admin.get(f"/v1/tasks/{task_id}")
        assert got.status_code == 200, got.text
        return dict(got.json())

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        got = self.sim.get(f"/_sim/psa/connectwise/tickets/{ticket_id}")
        assert got.status_code == 200, got.text
        return dict(got.json())

    def request(self, body: dict[str, Any]) -> str:
        """A request by the client's office; its one task's id, once the task has its ticket."""
        asked = self.person("intake", self.user).post(
            "/v1/requests", headers={"Idempotency-Key": f"psa-{uuid.uuid4()}"}, json=body
        )
        assert asked.status_code == 201, asked.text
        [task_id] = asked.json()["task_ids"]
        poll(f"task {task_id}'s ticket", lambda: self.task(task_id)["psa"], lambda psa: psa is not None)
        return str(task_id)

    def approved(self, task_id: str) -> str:
        """The task, once the client's owner approved its one approval."""
        [approval] = self.task(task_id)["approvals"]
        decided = self.person("intake", self.boss).post(
            f"/v1/approvals/{approval['id']}/decision", json={"decision": "approved"}
        )
        assert decided.status_code == 200, decided.text
        return task_id

    def working(self, task_id: str) -> None:
        """The task assigned to tech1 and in progress (the ticket follows: owner TOne, In Progress)."""
        assert self.admin.post(f"/v1/tasks/{task_id}/assign", json={"assignee": "tech1"}).status_code == 200
        moved = self.tech1["intake"].post(f"/v1/tasks/{task_id}/transition", json={"to": "in_progress"})
        assert moved.status_code == 200, moved.text
        ticket_id = self.task(task_id)["psa"]["ticket_id"]
        poll(
            f"ticket {ticket_id} to show tech1 and In Progress",
            lambda: self.ticket(ticket_id),
            lambda t: (t["owner"], t["status"]) == ("TOne", "In Progress"),
        )

    def release(self, task_id: str, credential_id: str) -> httpx.Response:
        return self.tech1["secrets_broker"].post(
            "/v1/releases",
            json={"task_id": task_id, "credential_id": credential_id, "reason": "check the ISP portal's contact"},
        )

    def change(self, ticket_id: str, what: str, value: Any) -> dict[str, Any]:
        """Change the ticket as a person in ConnectWise would: the simulator sends the signed callback."""
        changed = self.sim.post(f"/_sim/psa/connectwise/tickets/{ticket_id}/{what}", json={what: value})
        assert changed.status_code == 200, changed.text
        answer = dict(changed.json())
        assert [d["status"] for d in answer["deliveries"]] == [200], answer["deliveries"]
        return answer


@pytest.fixture(scope="module")
def acme(stack: FullStack) -> Iterator[Acme]:
    handle = Acme(stack)
    try:
        yield handle
    finally:
        handle.close()


def purchase() -> dict[str, Any]:
    return {
        "type": "purchase",
        "items": [{"description": "Label printer for the front desk", "quantity": 1, "unit_price_cents": 19900}],
        "justification": "The old printer jams",
        "supplier": {"name": "Printers Galore", "contact_email": "sales@printers-galore.example"},
    }


def isp_credential(acme: Acme, task_id: str) -> str:
    listed = acme.tech1["secrets_broker"].get("/v1/credentials", params={"task_id": task_id})
    assert listed.status_code == 200, listed.text
    [credential] = [c for c in listed.json()["items"] if c["category"] == "isp"]
    return str(credential["id"])


def test_a_request_makes_a_ticket_that_holds_no_client_data(acme: Acme) -> None:
    body = purchase()
    task_id = acme.request(body)
    psa = acme.task(task_id)["psa"]
    assert psa["provider"] == "connectwise" and psa["ticket_url"].endswith(f"/tickets/{psa['ticket_id']}/screen")
    found = acme.admin.get("/v1/tasks", params={"psa_ticket_id": psa["ticket_id"]}).json()["items"]
    assert [t["id"] for t in found] == [task_id]
    ticket = acme.ticket(psa["ticket_id"])
    assert ticket["company"]["identifier"] == "AcmeDental" and ticket["externalXRef"] == task_id
    assert ticket["status"] == "New" and ticket["owner"] is None
    shown = json.dumps(ticket)
    for private in (CLIENT, body["items"][0]["description"], body["justification"], "Printers Galore", "@"):
        assert private not in shown, private


def test_a_release_adds_a_note_with_the_credential_and_rule_and_no_secret_or_name(acme: Acme) -> None:
    task_id = acme.approved(acme.request(isp_setup_request()))
    acme.working(task_id)
    credential_id = isp_credential(acme, task_id)
    released = acme.release(task_id, credential_id)
    assert released.status_code == 201, released.text
    unwrapped = acme.tech1["secrets_broker"].post("/v1/unwrap", json={"wrap_token": released.json()["wrap_token"]})
    assert unwrapped.status_code == 200, unwrapped.text
    secret, name = unwrapped.json()["secret"], unwrapped.json()["name"]
    ticket_id = acme.task(task_id)["psa"]["ticket_id"]
    notes = poll(
        f"a release note on ticket {ticket_id}",
        lambda: [n for n in acme.ticket(ticket_id)["notes"] if credential_id in n["text"]],
        lambda found: bool(found),
    )
    [note] = notes
    assert note["internal"] is True and "release.granted" in note["text"] and "rule:" in note["text"]
    for private in (secret, name, "tech1", "check the ISP portal"):
        assert private not in note["text"], private
    # A refused release is noted too, with its rule (tech2 is not the assignee).
    refused = acme.tech2.post(
        "/v1/releases",
        json={"task_id": task_id, "credential_id": credential_id, "reason": "check the ISP portal's contact"},
    )
    assert refused.status_code in (403, 404), refused.text
    if refused.status_code == 403:
        rule = refused.json()["rule"]
        poll(
            f"the refusal's note on ticket {ticket_id}",
            lambda: [n["text"] for n in acme.ticket(ticket_id)["notes"] if "release.denied" in n["text"]],
            lambda found: any(rule in text for text in found),
        )


def test_a_ticket_closed_in_the_psa_closes_the_task_and_revokes_what_is_out(acme: Acme) -> None:
    task_id = acme.approved(acme.request(isp_setup_request()))
    acme.working(task_id)
    credential_id = isp_credential(acme, task_id)
    released = acme.release(task_id, credential_id)
    assert released.status_code == 201, released.text
    ticket_id = acme.task(task_id)["psa"]["ticket_id"]

    acme.change(ticket_id, "status", "Closed")
    assert (
        poll(f"task {task_id} to close", lambda: acme.task(task_id)["status"], lambda s: s != "in_progress") == "done"
    )
    # The release issued before is worth nothing once the event has gone round (the broker's worker revokes it).
    unwrap = poll(
        "the earlier release to be refused",
        lambda: acme.tech1["secrets_broker"].post("/v1/unwrap", json={"wrap_token": released.json()["wrap_token"]}),
        lambda r: r.status_code != 200 or pytest.fail(f"the closed task's release unwrapped: {r.status_code}"),
    )
    assert unwrap.status_code in (403, 410), unwrap.text
    again = acme.release(task_id, credential_id)
    assert again.status_code == 403 and again.json()["rule"] == "task_not_in_progress", again.text


def test_an_owner_change_in_the_psa_unassigns_and_a_reopen_is_only_a_note(acme: Acme) -> None:
    task_id = acme.request(purchase())
    acme.working(task_id)
    ticket_id = acme.task(task_id)["psa"]["ticket_id"]

    acme.change(ticket_id, "owner", "TTwo")
    task = poll(f"task {task_id} to be unassigned", lambda: acme.task(task_id), lambda t: t["assignee"] is None)
    assert task["status"] == "on_hold", task
    assert any("TTwo" in n["body"] for n in task["internal_notes"] if n["kind"] == "psa"), task["internal_notes"]

    # Closed by intake's own people, then reopened in the PSA: nothing moves, a note says so.
    assert acme.admin.post(f"/v1/tasks/{task_id}/transition", json={"to": "cancelled"}).status_code == 200
    poll(f"ticket {ticket_id} to show Closed", lambda: acme.ticket(ticket_id)["status"], lambda s: s == "Closed")
    acme.change(ticket_id, "status", "In Progress")
    task = poll(
        f"a reopen note on task {task_id}",
        lambda: acme.task(task_id),
        lambda t: any("reopened" in n["body"] for n in t["internal_notes"] if n["kind"] == "psa"),
    )
    assert (task["status"], task["assignee"]) == ("cancelled", None)


def sign(raw: bytes, key: str) -> str:
    return base64.b64encode(hmac.new(hashlib.sha256(key.encode()).digest(), raw, hashlib.sha256).digest()).decode()


def test_a_bad_signature_and_a_replayed_callback_change_nothing_more(acme: Acme) -> None:
    task_id = acme.request(purchase())
    acme.working(task_id)
    ticket_id = acme.task(task_id)["psa"]["ticket_id"]
    before = acme.task(task_id)
    key = acme.sim.get("/_sim/psa/connectwise/callback-key").json()
    signing_key = acme.sim.get(key["key_url"]).json()["signing_key"]
    raw = json.dumps(
        {
            "MessageId": str(uuid.uuid4()),
            "Action": "updated",
            "Type": "ticket",
            "ID": int(ticket_id),
            "Entity": json.dumps({"id": int(ticket_id)}),
            "Metadata": {"key_url": key["key_url"]},
        }
    ).encode()
    webhook = httpx.Client(base_url=acme.stack.urls["intake"], timeout=30)
    acme.clients.append(webhook)
    headers = {"Content-Type": "application/json"}
    forged = webhook.post(
        "/v1/webhooks/psa/connectwise", content=raw, headers={**headers, "x-content-signature": sign(raw, "guess")}
    )
    assert forged.status_code == 401 and forged.json()["error"] == "unauthenticated", forged.text
    # Signed as ConnectWise signs (the key is served at the key URL): applied once, then a replay.
    signed = {**headers, "x-content-signature": sign(raw, signing_key)}
    first = webhook.post("/v1/webhooks/psa/connectwise", content=raw, headers=signed)
    assert first.status_code == 200 and first.json()["outcome"] == "unchanged", first.text
    replay = webhook.post("/v1/webhooks/psa/connectwise", content=raw, headers=signed)
    assert replay.json() == {"applied": False, "outcome": "duplicate"}
    after = acme.task(task_id)
    assert (after["status"], after["assignee"], after["internal_notes"]) == (
        before["status"],
        before["assignee"],
        before["internal_notes"],
    )
