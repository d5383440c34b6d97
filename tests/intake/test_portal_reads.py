"""intake's reads behind the portal: a technician's client list, and a task's internal notes for staff only.

`GET /v1/clients` is held by `mspkit.tenancy.visible`, as every other list: a technician reads the
clients of their staff row (`client_ids: null`: every client), one without an active row reads
nothing. Runs in the per-test rolled-back transaction on the real PostgreSQL.
"""

from __future__ import annotations

import uuid

import pytest
from intake_factories import create_request, make_client, make_staff, purchase_body, walk

EMPTY = {"items": [], "next_cursor": None}
MISSING_CLIENT = {"error": "not_found", "detail": "client not found"}


@pytest.fixture
def clients(api, admin_h):
    """Three fresh clients, oldest first."""
    return [make_client(api, admin_h, name=f"Client {n}")["id"] for n in "ABC"]


def test_a_technician_lists_only_the_clients_of_their_staff_row_one_page_at_a_time(api, admin_h, auth, clients):
    a, b, c = clients
    sub = make_staff(api, admin_h, client_ids=[a, b])["sub"]
    tech = auth("technician", sub, staff=False)

    first = api.get("/v1/clients", params={"limit": 1}, headers=tech)
    assert first.status_code == 200, first.text
    assert [x["id"] for x in first.json()["items"]] == [a]
    assert first.json()["next_cursor"]
    second = api.get("/v1/clients", params={"limit": 1, "cursor": first.json()["next_cursor"]}, headers=tech)
    assert ([x["id"] for x in second.json()["items"]], second.json()["next_cursor"]) == ([b], None)
    assert c not in first.text + second.text
    assert [x["id"] for x in walk(api, tech, "/v1/clients", status="active")] == [a, b]

    # The client read of one outside their row is a missing client's 404, and the admin sees it.
    other = api.get(f"/v1/clients/{c}", headers=tech)
    missing = api.get(f"/v1/clients/{uuid.uuid4()}", headers=tech)
    assert (other.status_code, other.json()) == (missing.status_code, missing.json()) == (404, MISSING_CLIENT)
    assert c in {x["id"] for x in walk(api, admin_h, "/v1/clients")}


def test_a_technician_of_every_client_lists_every_client(api, admin_h, auth, clients):
    sub = make_staff(api, admin_h, client_ids=None)["sub"]
    listed = {x["id"] for x in walk(api, auth("technician", sub, staff=False), "/v1/clients")}
    assert set(clients) <= listed
    assert listed == {x["id"] for x in walk(api, admin_h, "/v1/clients")}


@pytest.mark.parametrize("who", ["no staff row", "inactive", "no clients"])
def test_a_technician_without_clients_to_see_lists_none(api, admin_h, auth, clients, who):
    sub = f"tech-{uuid.uuid4().hex[:8]}"
    if who == "inactive":
        make_staff(api, admin_h, sub=sub, active=False, client_ids=None)
    elif who == "no clients":
        make_staff(api, admin_h, sub=sub, client_ids=[])
    tech = auth("technician", sub, staff=False)

    listed = api.get("/v1/clients", headers=tech)
    assert (listed.status_code, listed.json()) == (200, EMPTY)
    assert api.get("/v1/clients", params={"status": "active"}, headers=tech).json() == EMPTY


def test_internal_notes_are_in_the_staff_view_of_a_task_and_never_in_a_client_roles(api, admin_h, auth, clients):
    a = clients[0]
    task_id = create_request(api, auth("client_user", "u-a", a), purchase_body())["task_ids"][0]
    words = f"Supplier quote pending {uuid.uuid4().hex}"
    assert api.post(f"/v1/tasks/{task_id}/notes", json={"body": words}, headers=admin_h).status_code == 201
    # A technician of the client who does not hold the task is staff too.
    staff_tech = auth("technician", make_staff(api, admin_h, client_ids=[a])["sub"], staff=False)

    for headers in (admin_h, staff_tech):
        view = api.get(f"/v1/tasks/{task_id}", headers=headers)
        assert view.status_code == 200, view.text
        assert [(n["kind"], n["author"], n["body"]) for n in view.json()["internal_notes"]] == [
            ("note", "admin-1", words)
        ]
    for role in ("client_admin", "client_user"):
        view = api.get(f"/v1/tasks/{task_id}", headers=auth(role, f"{role}-a", a))
        assert view.status_code == 200, view.text
        assert "internal_notes" not in view.json()
        assert words.encode() not in view.content
