"""The staff directory (/v1/staff, admin) and the staff view other services read (/internal/staff/{sub})."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from intake_factories import make_client, make_staff, staff_events, staff_state, walk

CONTRACT_KEYS = {"sub", "display_name", "email", "role", "active", "psa_member_ids", "client_ids"}
# Beyond the contract's seven keys, intake shows when the row was made and last changed (as for every object).
BODY_KEYS = CONTRACT_KEYS | {"created_at", "updated_at"}


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_an_admin_adds_a_technician_and_reads_the_contract_body(api, admin_h, sql):
    a = make_client(api, admin_h, name="A")
    sub = f"auth0|{uuid.uuid4().hex}"
    created = make_staff(
        api,
        admin_h,
        sub=sub,
        display_name="Ada Tech",
        email="ada@msp.example",
        psa_member_ids={"halo": "17"},
        client_ids=[a["id"], a["id"]],
    )
    assert set(created) == BODY_KEYS
    assert {k: created[k] for k in CONTRACT_KEYS} == {
        "sub": sub,
        "display_name": "Ada Tech",
        "email": "ada@msp.example",
        "role": "technician",
        "active": True,
        "psa_member_ids": {"halo": "17"},
        "client_ids": [a["id"]],  # stored once
    }
    assert created["created_at"] == created["updated_at"]
    assert created["created_at"].endswith("Z")
    response = api.get(f"/v1/staff/{sub}", headers=admin_h)
    assert response.status_code == 200
    assert response.json() == created
    [row] = sql("SELECT role, active, client_ids FROM intake.staff WHERE sub = :s", s=sub)
    assert tuple(row) == ("technician", True, [a["id"]])


def test_defaults_are_active_every_client_and_no_psa_ids(api, admin_h):
    created = make_staff(api, admin_h, role="admin")
    assert (created["role"], created["active"], created["client_ids"], created["psa_member_ids"]) == (
        "admin",
        True,
        None,
        {},
    )


def test_every_change_writes_one_staff_changed_event(api, admin_h, sql):
    created = make_staff(api, admin_h)
    sub = created["sub"]
    patched = api.patch(f"/v1/staff/{sub}", json={"active": False}, headers=admin_h).json()
    renamed = api.patch(f"/v1/staff/{sub}", json={"display_name": "T. Tech"}, headers=admin_h).json()
    envelopes = staff_events(sql, sub)
    assert [e["data"] for e in envelopes] == [
        {"sub": sub, "active": active, "updated_at": envelopes[i]["data"]["updated_at"]}
        for i, active in enumerate([True, False, False])
    ]
    # The event's stamp is the row's: a consumer can tell which view is newer.
    stamps = [_at(e["data"]["updated_at"]) for e in envelopes]
    assert stamps == [_at(created["updated_at"]), _at(patched["updated_at"]), _at(renamed["updated_at"])]
    assert stamps == sorted(stamps)
    assert {(e["type"], e["client_id"], e["aggregate_id"]) for e in envelopes} == {("staff.changed", None, None)}


@pytest.mark.parametrize(
    ("role", "sub", "tenant"),
    [
        ("technician", "tech-1", False),
        ("client_user", "cu", True),
        ("client_admin", "ca", True),
        ("service", "svc:vendor_sync", False),
    ],
)
def test_only_admins_use_the_directory(api, admin_h, auth, sql, role, sub, tenant):
    client = make_client(api, admin_h)
    existing = make_staff(api, admin_h)
    headers = auth(role, sub, client["id"] if tenant else None)
    before = staff_state(sql)
    calls = [
        ("GET", "/v1/staff", None),
        ("POST", "/v1/staff", {"sub": "intruder", "display_name": "I", "email": "i@x.example", "role": "admin"}),
        ("GET", f"/v1/staff/{existing['sub']}", None),
        ("PATCH", f"/v1/staff/{existing['sub']}", {"client_ids": None, "role": "admin"}),
        ("PATCH", "/v1/staff/nobody-here", {"active": False}),
    ]
    for method, path, body in calls:
        response = api.request(method, path, json=body, headers=headers)
        assert (response.status_code, response.json()) == (403, {"error": "forbidden", "detail": "role not allowed"})
    assert staff_state(sql) == before


def test_the_list_is_paged_and_filters_on_active(api, admin_h):
    active = {make_staff(api, admin_h)["sub"] for _ in range(3)}
    inactive = {make_staff(api, admin_h, active=False)["sub"] for _ in range(2)}
    first = api.get("/v1/staff", params={"limit": 2}, headers=admin_h).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    everyone = walk(api, admin_h, "/v1/staff", limit=2)
    subs = [s["sub"] for s in everyone]
    assert len(subs) == len(set(subs))  # no row twice across pages
    assert active | inactive <= set(subs)
    assert all(set(s) == BODY_KEYS for s in everyone)
    only_inactive = walk(api, admin_h, "/v1/staff", active="false", limit=2)
    assert inactive <= {s["sub"] for s in only_inactive}
    assert not active & {s["sub"] for s in only_inactive}
    assert {s["active"] for s in only_inactive} == {False}
    only_active = walk(api, admin_h, "/v1/staff", active="true", limit=2)
    assert active <= {s["sub"] for s in only_active}
    assert not inactive & {s["sub"] for s in only_active}
    assert {s["active"] for s in only_active} == {True}


def test_an_unknown_sub_is_404(api, admin_h, sql):
    before = staff_state(sql)
    missing = {"error": "not_found", "detail": "staff member not found"}
    for method, body in (("GET", None), ("PATCH", {"active": False})):
        response = api.request(method, "/v1/staff/nobody-here", json=body, headers=admin_h)
        assert (response.status_code, response.json()) == (404, missing)
    assert staff_state(sql) == before


def test_a_known_sub_is_409_and_nothing_changes(api, admin_h, sql):
    existing = make_staff(api, admin_h, display_name="First")
    before = staff_state(sql)
    response = api.post(
        "/v1/staff",
        json={"sub": existing["sub"], "display_name": "Second", "email": "s@msp.example", "role": "admin"},
        headers=admin_h,
    )
    assert response.status_code == 409
    assert response.json() == {
        "error": "conflict",
        "detail": "a staff member with this sub already exists",
        "field": "sub",
    }
    assert staff_state(sql) == before


def test_a_psa_member_id_maps_to_one_person(api, admin_h, sql):
    holder = make_staff(api, admin_h, psa_member_ids={"connectwise": "m-7"})
    other = make_staff(api, admin_h, psa_member_ids={"halo": "h-1"})
    taken = {
        "error": "conflict",
        "detail": "the connectwise member id m-7 already belongs to another staff member",
        "field": "psa_member_ids.connectwise",
    }
    before = staff_state(sql)
    new_sub = f"tech-{uuid.uuid4().hex[:8]}"
    body = {"sub": new_sub, "display_name": "N", "email": "n@msp.example", "role": "technician"}
    response = api.post(
        "/v1/staff", json={**body, "psa_member_ids": {"halo": "h-9", "connectwise": "m-7"}}, headers=admin_h
    )
    assert (response.status_code, response.json()) == (409, taken)
    response = api.patch(
        f"/v1/staff/{other['sub']}",
        json={"display_name": "Renamed", "psa_member_ids": {"connectwise": "m-7"}},
        headers=admin_h,
    )
    assert (response.status_code, response.json()) == (409, taken)
    assert staff_state(sql) == before
    assert api.get(f"/v1/staff/{other['sub']}", headers=admin_h).json() == other
    # The same id at another PSA is another member; re-sending one's own id is no conflict.
    assert api.patch(f"/v1/staff/{other['sub']}", json={"psa_member_ids": {"autotask": "m-7"}}, headers=admin_h).json()[
        "psa_member_ids"
    ] == {"autotask": "m-7"}
    again = api.patch(f"/v1/staff/{holder['sub']}", json={"psa_member_ids": {"connectwise": "m-7"}}, headers=admin_h)
    assert again.status_code == 200, again.text
    # The id `other` gave up is free for someone else.
    assert make_staff(api, admin_h, psa_member_ids={"halo": "h-1"})["psa_member_ids"] == {"halo": "h-1"}


def test_a_bad_body_lists_every_problem_and_writes_nothing(api, admin_h, sql):
    before = staff_state(sql)
    body = {
        "sub": "svc:vendor_sync",
        "display_name": "",
        "email": "not-an-email",
        "role": "owner",
        "active": "sometimes",
        "psa_member_ids": {"jira": "1"},
        "client_ids": [str(uuid.uuid4()), "not-a-uuid"],
        "created_at": "2020-01-01T00:00:00Z",
    }
    response = api.post("/v1/staff", json=body, headers=admin_h)
    assert response.status_code == 422
    payload = response.json()
    assert [e["field"] for e in payload["errors"]] == [
        "sub",
        "display_name",
        "email",
        "role",
        "active",
        "psa_member_ids.jira.[key]",
        "client_ids.1",
        "created_at",
    ]
    assert (payload["error"], payload["field"], payload["detail"]) == (
        "validation_error",
        "sub",
        "sub: a service subject cannot be assigned",
    )
    details = {e["field"]: e["detail"] for e in payload["errors"]}
    assert details["email"] == "email: must be an e-mail address such as name@example.com"
    assert details["role"] == "role: Input should be 'technician' or 'admin'"
    assert details["psa_member_ids.jira.[key]"].endswith("Input should be 'connectwise', 'autotask' or 'halo'")
    assert staff_state(sql) == before


def test_unknown_client_ids_are_named_by_index(api, admin_h, sql):
    a = make_client(api, admin_h)
    staff = make_staff(api, admin_h)
    before = staff_state(sql)
    ghosts = [str(uuid.uuid4()), str(uuid.uuid4())]
    expected = {
        "error": "validation_error",
        "detail": f"client_ids.0: no client has the id {ghosts[0]}",
        "field": "client_ids.0",
        "errors": [
            {"field": "client_ids.0", "detail": f"client_ids.0: no client has the id {ghosts[0]}"},
            {"field": "client_ids.2", "detail": f"client_ids.2: no client has the id {ghosts[1]}"},
        ],
    }
    body = {"sub": "newcomer", "display_name": "N", "email": "n@msp.example", "role": "technician"}
    response = api.post("/v1/staff", json={**body, "client_ids": [ghosts[0], a["id"], ghosts[1]]}, headers=admin_h)
    assert (response.status_code, response.json()) == (422, expected)
    patch = {"display_name": "Changed", "client_ids": [ghosts[0], a["id"], ghosts[1]]}
    response = api.patch(f"/v1/staff/{staff['sub']}", json=patch, headers=admin_h)
    assert (response.status_code, response.json()) == (422, expected)
    assert staff_state(sql) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sub": "someone-else"}, "sub"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
        ({"role": "client_admin"}, "role"),
        ({"email": "x"}, "email"),
        ({"client_ids": ["nope"]}, "client_ids.0"),
    ],
)
def test_a_bad_patch_is_422_and_changes_nothing(api, admin_h, sql, body, field):
    staff = make_staff(api, admin_h)
    before = staff_state(sql)
    response = api.patch(f"/v1/staff/{staff['sub']}", json=body, headers=admin_h)
    assert response.status_code == 422
    assert (response.json()["error"], response.json()["field"]) == ("validation_error", field)
    assert staff_state(sql) == before


def test_patch_changes_only_what_it_names(api, admin_h):
    a = make_client(api, admin_h, name="A")
    b = make_client(api, admin_h, name="B")
    staff = make_staff(api, admin_h, psa_member_ids={"halo": "p-1"}, client_ids=[a["id"]])
    sub = staff["sub"]
    renamed = api.patch(f"/v1/staff/{sub}", json={"display_name": "Renamed"}, headers=admin_h).json()
    unchanged = {k: v for k, v in staff.items() if k not in ("display_name", "updated_at")}
    assert {k: v for k, v in renamed.items() if k not in ("display_name", "updated_at")} == unchanged
    assert renamed["display_name"] == "Renamed"
    assert _at(renamed["updated_at"]) > _at(staff["updated_at"])
    assert renamed["created_at"] == staff["created_at"]
    # A null for a plain field leaves it as it is; for client_ids it means every client.
    nulls = api.patch(f"/v1/staff/{sub}", json={"email": None, "role": None}, headers=admin_h).json()
    assert (nulls["email"], nulls["role"]) == (staff["email"], "technician")
    widened = api.patch(f"/v1/staff/{sub}", json={"client_ids": None}, headers=admin_h).json()
    assert widened["client_ids"] is None
    both = api.patch(f"/v1/staff/{sub}", json={"client_ids": [b["id"], a["id"]]}, headers=admin_h).json()
    assert both["client_ids"] == [b["id"], a["id"]]
    none = api.patch(f"/v1/staff/{sub}", json={"client_ids": []}, headers=admin_h).json()
    assert none["client_ids"] == []
    # psa_member_ids is replaced as a whole.
    moved = api.patch(f"/v1/staff/{sub}", json={"psa_member_ids": {"autotask": "a-1"}}, headers=admin_h).json()
    assert moved["psa_member_ids"] == {"autotask": "a-1"}
    final = api.get(f"/v1/staff/{sub}", headers=admin_h).json()
    assert final == moved
    assert {k: final[k] for k in ("display_name", "email", "role", "active", "client_ids")} == {
        "display_name": "Renamed",
        "email": staff["email"],
        "role": "technician",
        "active": True,
        "client_ids": [],
    }


# ---- /internal/staff/{sub} -------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["svc:vendor_sync", "svc:secrets_broker"])
def test_vendor_sync_and_the_broker_read_the_staff_view(api, admin_h, auth, service):
    a = make_client(api, admin_h)
    staff = make_staff(api, admin_h, client_ids=[a["id"]], psa_member_ids={"halo": "v-1"})
    headers = auth("service", service)
    response = api.get(f"/internal/staff/{staff['sub']}", headers=headers)
    assert response.status_code == 200
    assert response.json() == api.get(f"/v1/staff/{staff['sub']}", headers=admin_h).json()
    missing = api.get("/internal/staff/nobody-here", headers=headers)
    assert (missing.status_code, missing.json()) == (404, {"error": "not_found", "detail": "staff member not found"})


@pytest.mark.parametrize(
    ("role", "sub", "tenant"),
    [
        ("service", "svc:intake", False),
        ("admin", "admin-1", False),
        ("technician", "tech-1", False),
        ("client_admin", "ca", True),
    ],
)
def test_no_one_else_reads_the_staff_view(api, admin_h, auth, role, sub, tenant):
    client = make_client(api, admin_h)
    staff = make_staff(api, admin_h)
    headers = auth(role, sub, client["id"] if tenant else None)
    refused = {"error": "forbidden", "detail": "service not allowed on this route"}
    for path in (f"/internal/staff/{staff['sub']}", "/internal/staff/nobody-here"):
        response = api.get(path, headers=headers)
        assert (response.status_code, response.json()) == (403, refused)


def test_a_service_token_meant_for_another_service_is_refused(api, admin_h, auth):
    staff = make_staff(api, admin_h)
    response = api.get(
        f"/internal/staff/{staff['sub']}", headers=auth("service", "svc:vendor_sync", aud=["vendor_sync"])
    )
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
