"""Registry API: vendors and client vendor accounts (create, list, get, roles, tenancy, bad input)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
pytest.register_assert_rewrite("fixtures_registry")
from fixtures_registry import make_account, make_vendor, unique  # noqa: E402

pytest_plugins = ["fixtures_registry"]


def _count(engine, table: str, **where) -> int:
    """Rows of a vendor_sync table matching `column=value` filters (what a refusal must not have written)."""
    clause = " AND ".join(f"{k} = :{k}" for k in where) or "true"
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM vendor_sync.{table} WHERE {clause}"), where).scalar_one())


def _forbidden(response) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "forbidden"


# ---- vendors -------------------------------------------------------------------------------------


def test_admin_creates_a_vendor_and_staff_and_intake_read_it(vs_api, hdr):
    body = {
        "name": f"Registrar {unique()}",
        "kind": "registrar",
        "website": "https://registrar.example/",
        "support_email": "help@registrar.example",
        "support_phone": "+1 555 0100",
        "adapter": "rdap",
    }
    created = vs_api.post("/v1/vendors", json=body, headers=hdr("admin"))
    assert created.status_code == 201, created.text
    vendor = created.json()
    assert uuid.UUID(vendor["id"])
    assert {k: vendor[k] for k in body} == body
    for headers in (hdr("admin"), hdr("technician"), hdr("service", sub="svc:intake")):
        got = vs_api.get(f"/v1/vendors/{vendor['id']}", headers=headers)
        assert got.status_code == 200
        assert got.json() == vendor


@pytest.mark.parametrize(
    ("role", "sub", "client"),
    [
        ("technician", None, False),
        ("client_admin", None, True),
        ("service", "svc:intake", False),
    ],
)
def test_only_admin_creates_vendors(vs_api, hdr, vs_engine, role, sub, client):
    headers = hdr(role, client_id=uuid.uuid4() if client else None, sub=sub)
    name = unique()
    response = vs_api.post("/v1/vendors", json={"name": name, "kind": "isp"}, headers=headers)
    _forbidden(response)
    assert "id" not in response.json()
    assert _count(vs_engine, "vendors", name=name) == 0


@pytest.mark.parametrize(
    ("role", "sub"), [("client_user", None), ("client_admin", None), ("service", "svc:secrets_broker")]
)
def test_vendor_reads_are_refused_to_clients_and_other_services(vs_api, hdr, role, sub):
    vendor = make_vendor(vs_api, hdr("admin"))
    client_id = uuid.uuid4() if role.startswith("client") else None
    headers = hdr(role, client_id=client_id, sub=sub)
    one, listed = vs_api.get(f"/v1/vendors/{vendor['id']}", headers=headers), vs_api.get("/v1/vendors", headers=headers)
    for response in (one, listed):
        _forbidden(response)
        assert vendor["name"] not in response.text and "items" not in response.json()


def test_no_token_is_401(vs_api):
    response = vs_api.get("/v1/vendors")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"


def test_vendor_names_are_unique_whatever_their_case(vs_api, hdr):
    name = f"Cloudy {unique()}"
    make_vendor(vs_api, hdr("admin"), name=name, kind="cloud")
    again = vs_api.post("/v1/vendors", json={"name": name.upper(), "kind": "cloud"}, headers=hdr("admin"))
    assert again.status_code == 409
    assert again.json()["field"] == "name"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "registrar"}, "name"),
        ({"name": "  ", "kind": "registrar"}, "name"),
        ({"name": "x", "kind": "bank"}, "kind"),
        ({"name": "x", "kind": "isp", "website": "javascript:alert(1)"}, "website"),
        ({"name": "x", "kind": "isp", "support_email": "not-an-email"}, "support_email"),
        ({"name": "x", "kind": "isp", "support_phone": "call us"}, "support_phone"),
        ({"name": "x", "kind": "isp", "adapter": "../../etc"}, "adapter"),
        ({"name": "x", "kind": "isp", "id": str(uuid.uuid4())}, "id"),
    ],
)
def test_bad_vendor_input_is_422_naming_the_field(vs_api, hdr, vs_engine, body, field):
    before = _count(vs_engine, "vendors")
    response = vs_api.post("/v1/vendors", json=body, headers=hdr("admin"))
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    assert response.json()["field"] == field
    assert _count(vs_engine, "vendors") == before


def test_unknown_vendor_is_404_and_a_malformed_id_is_422(vs_api, hdr):
    missing = vs_api.get(f"/v1/vendors/{uuid.uuid4()}", headers=hdr("admin"))
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    malformed = vs_api.get("/v1/vendors/not-a-uuid", headers=hdr("admin"))
    assert malformed.status_code == 422
    assert malformed.json()["field"] == "vendor_id"


def test_vendor_list_pages_with_cursor_and_kind_filter(vs_api, hdr):
    mine = [make_vendor(vs_api, hdr("admin"), kind="spam_filter")["id"] for _ in range(3)]
    seen: list[str] = []
    cursor = None
    for _ in range(1000):
        params = {"limit": 2, "kind": "spam_filter", **({"cursor": cursor} if cursor else {})}
        page = vs_api.get("/v1/vendors", params=params, headers=hdr("technician"))
        assert page.status_code == 200
        data = page.json()
        assert len(data["items"]) <= 2
        assert all(v["kind"] == "spam_filter" for v in data["items"])
        seen += [v["id"] for v in data["items"]]
        cursor = data["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a vendor appeared on two pages"
    positions = [seen.index(v) for v in mine]
    assert positions == sorted(positions), "pages are not in creation order"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"cursor": "!!"}, "cursor"),
        ({"cursor": "bm90LWpzb24="}, "cursor"),
        ({"cursor": "12-" + "0" * 31}, "cursor"),
    ],
)
def test_bad_paging_parameters_are_422(vs_api, hdr, params, field):
    response = vs_api.get("/v1/vendors", params=params, headers=hdr("admin"))
    assert response.status_code == 422
    assert response.json()["field"] == field


# ---- vendor accounts -------------------------------------------------------------------------------


def test_technician_creates_an_account_with_contacts_and_reads_it_back(vs_api, hdr, new_client):
    vendor = make_vendor(vs_api, hdr("admin"), kind="isp")
    client_id = new_client()
    credential_id = str(uuid.uuid4())
    body = {
        "vendor_id": vendor["id"],
        "account_number": "ACC-0042",
        "portal_url": "https://portal.isp.example/login",
        "api_key_credential_id": credential_id,
        "contacts": [
            {"name": "Ann Support", "role": "support", "email": "ann@isp.example", "phone": "+44 20 7946 0000"},
            {"name": "Bob Billing", "role": "billing"},
        ],
    }
    created = vs_api.post(f"/v1/clients/{client_id}/vendor-accounts", json=body, headers=hdr("technician"))
    assert created.status_code == 201, created.text
    account = created.json()
    assert account["client_id"] == str(client_id)
    assert account["vendor_id"] == vendor["id"]
    assert account["vendor_kind"] == "isp"
    assert account["api_key_credential_id"] == credential_id
    assert [(c["name"], c["role"], c["email"], c["phone"]) for c in account["contacts"]] == [
        ("Ann Support", "support", "ann@isp.example", "+44 20 7946 0000"),
        ("Bob Billing", "billing", None, None),
    ]
    got = vs_api.get(f"/v1/vendor-accounts/{account['id']}", headers=hdr("admin"))
    assert got.json() == account
    listed = vs_api.get(f"/v1/clients/{client_id}/vendor-accounts", headers=hdr("technician")).json()
    assert listed == {"items": [account], "next_cursor": None}


def test_own_client_roles_and_named_services_read_accounts(vs_api, hdr, new_client):
    vendor = make_vendor(vs_api, hdr("admin"))
    client_id = new_client()
    account = make_account(vs_api, hdr("admin"), client_id, vendor["id"])
    readers = [
        hdr("client_user", client_id=client_id),
        hdr("client_admin", client_id=client_id),
        hdr("service", sub="svc:intake"),
        hdr("service", sub="svc:secrets_broker"),
    ]
    for headers in readers:
        assert vs_api.get(f"/v1/vendor-accounts/{account['id']}", headers=headers).json() == account
    listed = vs_api.get(f"/v1/clients/{client_id}/vendor-accounts", headers=hdr("client_user", client_id=client_id))
    assert [a["id"] for a in listed.json()["items"]] == [account["id"]]
    denied = vs_api.get(f"/v1/vendor-accounts/{account['id']}", headers=hdr("service", sub="svc:vendor_sync"))
    _forbidden(denied)
    assert account["account_number"] not in denied.text


def test_another_clients_account_looks_exactly_like_a_missing_one(vs_api, hdr, new_client):
    vendor = make_vendor(vs_api, hdr("admin"))
    owner = new_client()
    account = make_account(vs_api, hdr("admin"), owner, vendor["id"])
    stranger = hdr("client_admin", client_id=uuid.uuid4())
    other = vs_api.get(f"/v1/vendor-accounts/{account['id']}", headers=stranger)
    missing = vs_api.get(f"/v1/vendor-accounts/{uuid.uuid4()}", headers=stranger)
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()
    # Their list is refused the same way, not answered with an empty page.
    listed = vs_api.get(f"/v1/clients/{owner}/vendor-accounts", headers=stranger)
    assert listed.status_code == 404
    assert listed.json() == {"error": "not_found", "detail": "client not found"}


@pytest.mark.parametrize("role", ["client_user", "client_admin"])
def test_client_roles_cannot_create_accounts(vs_api, hdr, vs_engine, role, new_client):
    vendor = make_vendor(vs_api, hdr("admin"))
    client_id = new_client()
    body = {"vendor_id": vendor["id"], "account_number": "X-1", "contacts": [{"name": "A", "role": "r"}]}
    response = vs_api.post(
        f"/v1/clients/{client_id}/vendor-accounts", json=body, headers=hdr(role, client_id=client_id)
    )
    _forbidden(response)
    assert _count(vs_engine, "vendor_accounts", client_id=client_id) == 0
    assert _count(vs_engine, "vendor_accounts", vendor_id=vendor["id"]) == 0


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"vendor_id": "nope"}, "vendor_id"),
        ({"account_number": ""}, "account_number"),
        ({"api_key": "sk_live_abc"}, "api_key"),
        ({"client_id": str(uuid.uuid4())}, "client_id"),
        ({"api_key_credential_id": "sk_live_abc"}, "api_key_credential_id"),
        ({"portal_url": "ftp://portal"}, "portal_url"),
        ({"contacts": [{"name": "A", "role": "x", "email": "nope"}]}, "contacts.0.email"),
        ({"contacts": [{"role": "x"}]}, "contacts.0.name"),
        ({"contacts": [{"name": "A", "role": "x"}] * 51}, "contacts"),
    ],
)
def test_bad_account_input_is_422_naming_the_field_and_writes_nothing(vs_api, hdr, vs_engine, patch, field, new_client):
    vendor = make_vendor(vs_api, hdr("admin"))
    client_id = new_client()
    body = {"vendor_id": vendor["id"], "account_number": "A-1", **patch}
    response = vs_api.post(f"/v1/clients/{client_id}/vendor-accounts", json=body, headers=hdr("admin"))
    assert response.status_code == 422, response.text
    assert (response.json()["error"], response.json()["field"]) == ("validation_error", field)
    listed = vs_api.get(f"/v1/clients/{client_id}/vendor-accounts", headers=hdr("admin")).json()
    assert listed["items"] == []
    assert _count(vs_engine, "vendor_accounts", vendor_id=vendor["id"]) == 0


def test_an_unknown_vendor_is_404_naming_vendor_id_and_writes_nothing(vs_api, hdr, vs_engine, new_client):
    client_id = new_client()
    body = {"vendor_id": str(uuid.uuid4()), "account_number": "A-1", "contacts": [{"name": "A", "role": "r"}]}
    response = vs_api.post(f"/v1/clients/{client_id}/vendor-accounts", json=body, headers=hdr("admin"))
    assert response.status_code == 404
    assert (response.json()["error"], response.json()["field"]) == ("not_found", "vendor_id")
    assert vs_api.get(f"/v1/clients/{client_id}/vendor-accounts", headers=hdr("admin")).json()["items"] == []
    assert _count(vs_engine, "vendor_accounts", client_id=client_id) == 0


def test_the_same_account_number_twice_at_one_vendor_is_409(vs_api, hdr, vs_engine, new_client):
    vendor = make_vendor(vs_api, hdr("admin"))
    client_id = new_client()
    first = make_account(vs_api, hdr("admin"), client_id, vendor["id"], account_number="DUP-1")
    again = vs_api.post(
        f"/v1/clients/{client_id}/vendor-accounts",
        json={"vendor_id": vendor["id"], "account_number": "DUP-1", "contacts": [{"name": "A", "role": "r"}]},
        headers=hdr("admin"),
    )
    assert again.status_code == 409
    assert (again.json()["error"], again.json()["field"]) == ("conflict", "account_number")
    # Nothing of the refused one was written: the first account alone, and its contacts alone (none).
    assert _count(vs_engine, "vendor_accounts", client_id=client_id) == 1
    assert _count(vs_engine, "contacts", vendor_account_id=first["id"]) == 0
    # Another client may hold the same number at the same vendor.
    make_account(vs_api, hdr("admin"), new_client(), vendor["id"], account_number="DUP-1")


def test_account_list_pages_in_creation_order(vs_api, hdr, new_client):
    vendor = make_vendor(vs_api, hdr("admin"))
    client_id = new_client()
    ids = [make_account(vs_api, hdr("admin"), client_id, vendor["id"])["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        data = vs_api.get(f"/v1/clients/{client_id}/vendor-accounts", params=params, headers=hdr("admin")).json()
        seen += [a["id"] for a in data["items"]]
        cursor = data["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


# ---- the client must exist in intake -----------------------------------------------------------------


def test_an_account_for_a_client_intake_does_not_know_is_404_and_writes_nothing(vs_api, hdr, vs_engine):
    vendor = make_vendor(vs_api, hdr("admin"))
    unknown = uuid.uuid4()
    body = {"vendor_id": vendor["id"], "account_number": "GHOST-1", "contacts": [{"name": "A", "role": "r"}]}
    response = vs_api.post(f"/v1/clients/{unknown}/vendor-accounts", json=body, headers=hdr("admin"))
    assert response.status_code == 404, response.text
    assert response.json() == {"error": "not_found", "detail": "client not found"}
    assert _count(vs_engine, "vendor_accounts", client_id=unknown) == 0
    assert _count(vs_engine, "vendor_accounts", vendor_id=vendor["id"]) == 0
    listed = vs_api.get(f"/v1/clients/{unknown}/vendor-accounts", headers=hdr("technician"))
    assert (listed.status_code, listed.json()["error"]) == (404, "not_found")


def test_accounts_fail_closed_when_intake_does_not_answer(vs_api, hdr, vs_engine, new_client, intake_down):
    vendor = make_vendor(vs_api, hdr("admin"))
    client_id = new_client()
    intake_down()
    body = {"vendor_id": vendor["id"], "account_number": "DOWN-1"}
    response = vs_api.post(f"/v1/clients/{client_id}/vendor-accounts", json=body, headers=hdr("admin"))
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "unavailable"
    assert _count(vs_engine, "vendor_accounts", client_id=client_id) == 0
    listed = vs_api.get(f"/v1/clients/{client_id}/vendor-accounts", headers=hdr("admin"))
    assert (listed.status_code, listed.json()["error"]) == (503, "unavailable")
