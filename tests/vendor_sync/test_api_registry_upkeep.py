"""Registry upkeep: PATCH vendors and vendor accounts, archive accounts, add/change/remove contacts.

Every write is audited in its own transaction (`vendor_sync.audit_events`), refused writes change no
row and add no audit row, another client's account answers exactly as a missing one, and an account's
API key credential is checked at the real broker (served over HTTP, with the real vendor_sync and
intake it asks in turn).

The api key check reads the broker's `GET /internal/credentials/{id}` (metadata only, never a secret)
as `svc:vendor_sync`, against the real broker and OpenBao.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "secrets_broker"))
pytest.register_assert_rewrite("fixtures_registry")
import broker_fixtures  # noqa: E402
from fixtures_registry import audit_rows, make_account, make_contact, make_vendor, unique  # noqa: E402

from mspctl.ports import free_port  # noqa: E402

pytest_plugins = ["fixtures_registry"]

broker_app = broker_fixtures.broker_app
broker_live = broker_fixtures.broker_live
vault_addr = broker_fixtures.vault_addr

Headers = Callable[..., dict[str, str]]
ACCOUNT_MISSING = {"error": "not_found", "detail": "vendor account not found"}
ARCHIVED = {
    "error": "account_archived",
    "detail": "this vendor account is archived; archived accounts are read-only",
    "current_status": "archived",
}
NOT_THIS_ACCOUNTS = "api_key_credential_id: no credential of this vendor account has this id"


# ---- helpers ---------------------------------------------------------------------------------------


def _state(engine: Engine, client_id: Any) -> dict[str, Any]:
    """Everything vendor_sync holds for a client's accounts: rows, contacts and audit rows (a refusal changes none)."""
    with engine.connect() as conn:

        def rows(sql: str) -> list[dict[str, Any]]:
            return [dict(r) for r in conn.execute(text(sql), {"c": client_id}).mappings()]

        return {
            "accounts": rows("SELECT * FROM vendor_sync.vendor_accounts WHERE client_id = :c ORDER BY id"),
            "contacts": rows(
                "SELECT k.* FROM vendor_sync.contacts k JOIN vendor_sync.vendor_accounts a"
                " ON a.id = k.vendor_account_id WHERE a.client_id = :c ORDER BY k.id"
            ),
            "audit": rows("SELECT * FROM vendor_sync.audit_events WHERE client_id = :c ORDER BY at, id"),
        }


def _vendor_state(engine: Engine, vendor_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM vendor_sync.vendors WHERE id = :v"), {"v": vendor_id}).mappings().one()
    return {"vendor": dict(row), "audit": audit_rows(engine, vendor_id)}


def _error(response: Any, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = dict(response.json())
    assert body["error"] == error
    return body


def _last_audit(engine: Engine, object_id: Any) -> dict[str, Any]:
    rows = audit_rows(engine, object_id)
    assert rows, f"no audit row for {object_id}"
    return rows[-1]


@dataclass(frozen=True)
class World:
    """A client's account (with one contact) at a vendor, and a second client."""

    client: uuid.UUID
    other_client: uuid.UUID
    vendor: dict[str, Any]
    account: dict[str, Any]
    contact: dict[str, Any]

    def ids(self) -> dict[str, str]:
        return {"account": self.account["id"], "contact": self.contact["id"]}


@pytest.fixture
def world(vs_api: TestClient, hdr: Headers, new_client: Callable[[], uuid.UUID]) -> World:
    admin = hdr("admin")
    vendor = make_vendor(vs_api, admin, kind="dns_host")
    client = new_client()
    account = make_account(
        vs_api,
        admin,
        client,
        vendor["id"],
        portal_url="https://portal.dns.example/login",
        contacts=[{"name": "Dana Desk", "role": "support", "email": "dana@dns.example", "phone": "+1 555 0101"}],
    )
    return World(client, new_client(), vendor, account, account["contacts"][0])


@dataclass(frozen=True)
class Write:
    """An account-level write route and its answer when allowed."""

    method: str
    path: str
    ok: int
    body: dict[str, Any] | None = None

    def send(self, api: TestClient, headers: dict[str, str], ids: dict[str, str]) -> Any:
        return api.request(self.method, self.path.format(**ids), json=self.body, headers=headers)


WRITES = [
    Write("PATCH", "/v1/vendor-accounts/{account}", 200, {"account_number": "RENUMBERED-1"}),
    Write("POST", "/v1/vendor-accounts/{account}/archive", 200),
    Write("POST", "/v1/vendor-accounts/{account}/contacts", 201, {"name": "Nia New", "role": "billing"}),
    Write("PATCH", "/v1/vendor-accounts/{account}/contacts/{contact}", 200, {"role": "escalation"}),
    Write("DELETE", "/v1/vendor-accounts/{account}/contacts/{contact}", 204),
]
WRITE_IDS = [f"{w.method} {w.path}" for w in WRITES]
ACTIONS = {
    WRITE_IDS[0]: ("vendor_account.updated", "vendor_account"),
    WRITE_IDS[1]: ("vendor_account.archived", "vendor_account"),
    WRITE_IDS[2]: ("contact.created", "contact"),
    WRITE_IDS[3]: ("contact.updated", "contact"),
    WRITE_IDS[4]: ("contact.deleted", "contact"),
}


def _missing_ids() -> dict[str, str]:
    return {"account": str(uuid.uuid4()), "contact": str(uuid.uuid4())}


# ---- who may write ------------------------------------------------------------------------------------


@pytest.mark.parametrize("write", WRITES, ids=WRITE_IDS)
@pytest.mark.parametrize("who", ["admin", "technician of every client", "technician of this client"])
def test_admins_and_technicians_of_the_client_write_and_each_write_is_audited(
    vs_api, hdr, staff_technician, vs_engine, world, write, who
):
    sub = f"upkeep-{uuid.uuid4().hex[:8]}"
    headers = {
        "admin": lambda: hdr("admin", sub=sub),
        "technician of every client": lambda: hdr("technician", sub=sub),
        "technician of this client": lambda: staff_technician([world.client], sub=sub),
    }[who]()
    before = _state(vs_engine, world.client)

    response = write.send(vs_api, headers, world.ids())

    assert response.status_code == write.ok, response.text
    after = _state(vs_engine, world.client)
    new_audit = after["audit"][len(before["audit"]) :]
    assert len(new_audit) == 1, new_audit
    (row,) = new_audit
    action, object_type = ACTIONS[f"{write.method} {write.path}"]
    assert (row["actor"], row["action"], row["object_type"]) == (sub, action, object_type)
    assert row["client_id"] == world.client
    assert row["request_id"] == response.headers["X-Request-ID"]
    assert row["before"] != row["after"]
    if object_type == "vendor_account":
        assert str(row["object_id"]) == world.account["id"]
    if write.method == "POST" and object_type == "contact":
        assert str(row["object_id"]) == response.json()["id"]
        assert row["before"] is None
    elif write.method == "DELETE":
        assert str(row["object_id"]) == world.contact["id"]
        assert row["after"] is None and response.content == b""
    elif object_type == "contact":
        assert str(row["object_id"]) == world.contact["id"]


REFUSALS = [
    ("technician of another client", 404, "not_found"),
    ("technician without a staff row", 404, "not_found"),
    ("inactive technician", 404, "not_found"),
    ("client_user of this client", 403, "forbidden"),
    ("client_admin of this client", 403, "forbidden"),
    ("svc:intake", 403, "forbidden"),
    ("svc:secrets_broker", 403, "forbidden"),
    ("no token", 401, "unauthenticated"),
]


@pytest.mark.parametrize("write", WRITES, ids=WRITE_IDS)
@pytest.mark.parametrize(("who", "status", "error"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_everyone_else_is_refused_and_nothing_changes(
    vs_api, hdr, staff_technician, vs_engine, world, write, who, status, error
):
    headers = {
        "technician of another client": lambda: staff_technician([world.other_client]),
        "technician without a staff row": lambda: hdr("technician", staff=False),
        "inactive technician": lambda: staff_technician(None, active=False),
        "client_user of this client": lambda: hdr("client_user", client_id=world.client),
        "client_admin of this client": lambda: hdr("client_admin", client_id=world.client),
        "svc:intake": lambda: hdr("service", sub="svc:intake"),
        "svc:secrets_broker": lambda: hdr("service", sub="svc:secrets_broker"),
        "no token": lambda: {},
    }[who]()
    before = _state(vs_engine, world.client)

    response = write.send(vs_api, headers, world.ids())

    body = _error(response, status, error)
    assert _state(vs_engine, world.client) == before
    assert world.account["account_number"] not in response.text and "Dana" not in response.text
    if status == 404:
        # Exactly the answer of an account that does not exist: the id says nothing.
        missing = write.send(vs_api, headers, _missing_ids())
        assert (missing.status_code, missing.json()) == (404, body) == (404, ACCOUNT_MISSING)


def test_only_admins_change_vendors_and_refusals_change_nothing(vs_api, hdr, vs_engine, world):
    vendor_id = world.vendor["id"]
    before = _vendor_state(vs_engine, vendor_id)
    for headers in (
        hdr("technician"),
        hdr("client_admin", client_id=world.client),
        hdr("client_user", client_id=world.client),
        hdr("service", sub="svc:intake"),
    ):
        response = vs_api.patch(
            f"/v1/vendors/{vendor_id}", json={"support_email": "evil@attacker.example"}, headers=headers
        )
        assert _error(response, 403, "forbidden")["detail"] in ("role not allowed", "service not allowed on this route")
        assert "support_email" not in response.json()
    assert _vendor_state(vs_engine, vendor_id) == before
    assert vs_api.get(f"/v1/vendors/{vendor_id}", headers=hdr("admin")).json() == world.vendor


# ---- vendors ------------------------------------------------------------------------------------------


def test_admin_patches_a_vendor_keeping_what_is_left_out_and_clearing_what_is_null(vs_api, hdr, vs_engine):
    admin = hdr("admin", sub="vendor-keeper")
    vendor = make_vendor(
        vs_api, admin, kind="spam_filter", website="https://filter.example/", support_phone="+1 555 0199"
    )
    new_name = f"Filter {unique()}"

    response = vs_api.patch(
        f"/v1/vendors/{vendor['id']}",
        json={"name": new_name, "support_email": "help@filter.example", "website": None, "adapter": "mailchannels"},
        headers=admin,
    )

    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed == {
        **vendor,
        "name": new_name,
        "support_email": "help@filter.example",
        "website": None,
        "adapter": "mailchannels",
    }
    assert vs_api.get(f"/v1/vendors/{vendor['id']}", headers=hdr("technician")).json() == changed
    created, updated = audit_rows(vs_engine, vendor["id"])
    assert (created["action"], created["before"], created["after"]["name"]) == ("vendor.created", None, vendor["name"])
    assert (updated["actor"], updated["action"], updated["object_type"]) == (
        "vendor-keeper",
        "vendor.updated",
        "vendor",
    )
    assert updated["client_id"] is None
    assert updated["before"] == {
        "name": vendor["name"],
        "kind": "spam_filter",
        "website": "https://filter.example/",
        "support_email": None,
        "support_phone": "+1 555 0199",
        "adapter": None,
    }
    assert updated["after"] == {
        "name": new_name,
        "kind": "spam_filter",
        "website": None,
        "support_email": "help@filter.example",
        "support_phone": "+1 555 0199",
        "adapter": "mailchannels",
    }


def test_a_patch_that_changes_nothing_writes_no_audit_row(vs_api, hdr, vs_engine, world):
    vendor_before = _vendor_state(vs_engine, world.vendor["id"])
    same = {"name": world.vendor["name"], "support_email": world.vendor["support_email"]}
    assert vs_api.patch(f"/v1/vendors/{world.vendor['id']}", json=same, headers=hdr("admin")).json() == world.vendor
    assert vs_api.patch(f"/v1/vendors/{world.vendor['id']}", json={}, headers=hdr("admin")).json() == world.vendor
    assert _vendor_state(vs_engine, world.vendor["id"]) == vendor_before

    before = _state(vs_engine, world.client)
    body = {"account_number": world.account["account_number"]}
    assert vs_api.patch(f"/v1/vendor-accounts/{world.account['id']}", json=body, headers=hdr("admin")).json() == (
        world.account
    )
    contact_path = f"/v1/vendor-accounts/{world.account['id']}/contacts/{world.contact['id']}"
    assert vs_api.patch(contact_path, json={"role": "support"}, headers=hdr("admin")).json() == world.contact
    assert _state(vs_engine, world.client) == before


@pytest.mark.parametrize(
    ("body", "fields", "words"),
    [
        ({"kind": "isp"}, ["kind"], "kind: cannot be changed; a vendor of another kind is another vendor"),
        ({"name": None}, ["name"], "name: cannot be cleared; leave it out to keep the current value"),
        ({"name": " padded "}, ["name"], None),
        ({"id": str(uuid.uuid4())}, ["id"], "id: unknown field"),
        ({"created_at": "2020-01-01T00:00:00Z"}, ["created_at"], "created_at: unknown field"),
        (
            {"website": "javascript:alert(1)", "support_email": "nope", "support_phone": "call us", "adapter": "../x"},
            ["website", "support_email", "support_phone", "adapter"],
            None,
        ),
    ],
)
def test_bad_vendor_patches_are_422_naming_every_field_and_change_nothing(
    vs_api, hdr, vs_engine, world, body, fields, words
):
    before = _vendor_state(vs_engine, world.vendor["id"])
    response = vs_api.patch(f"/v1/vendors/{world.vendor['id']}", json=body, headers=hdr("admin"))
    problem = _error(response, 422, "validation_error")
    assert [p["field"] for p in problem["errors"]] == fields
    assert problem["field"] == fields[0]
    if words:
        assert problem["detail"] == words
    assert _vendor_state(vs_engine, world.vendor["id"]) == before


def test_a_vendor_name_another_vendor_holds_is_409_and_nothing_of_the_patch_is_kept(vs_api, hdr, vs_engine, world):
    taken = make_vendor(vs_api, hdr("admin"))["name"]
    before = _vendor_state(vs_engine, world.vendor["id"])
    response = vs_api.patch(
        f"/v1/vendors/{world.vendor['id']}",
        json={"name": taken.upper(), "support_email": "new@dns.example"},
        headers=hdr("admin"),
    )
    assert _error(response, 409, "conflict")["field"] == "name"
    assert _vendor_state(vs_engine, world.vendor["id"]) == before
    # The same name in another case is still this vendor's own name.
    renamed = vs_api.patch(
        f"/v1/vendors/{world.vendor['id']}", json={"name": world.vendor["name"].upper()}, headers=hdr("admin")
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == world.vendor["name"].upper()


def test_an_unknown_vendor_is_404_and_a_body_that_is_not_json_is_422(vs_api, hdr, world):
    missing = vs_api.patch(f"/v1/vendors/{uuid.uuid4()}", json={"name": "Nobody"}, headers=hdr("admin"))
    assert missing.status_code == 404 and missing.json() == {"error": "not_found", "detail": "vendor not found"}
    not_json = vs_api.patch(
        f"/v1/vendors/{world.vendor['id']}",
        content=b'{"name": "x"}',
        headers={**hdr("admin"), "Content-Type": "text/plain"},
    )
    assert _error(not_json, 422, "validation_error")["field"] == "body"


def test_creating_vendors_accounts_and_contacts_is_audited_too(vs_api, hdr, vs_engine, new_client):
    admin = hdr("admin", sub="creator")
    vendor = make_vendor(vs_api, admin, support_email="help@vendor.example")
    client = new_client()
    account = make_account(
        vs_api, admin, client, vendor["id"], contacts=[{"name": "A One", "role": "r"}, {"name": "B Two", "role": "r"}]
    )
    (vendor_row,) = audit_rows(vs_engine, vendor["id"])
    assert (vendor_row["action"], vendor_row["actor"]) == ("vendor.created", "creator")
    assert vendor_row["after"]["support_email"] == "help@vendor.example"
    rows = audit_rows(vs_engine, account["id"], *(c["id"] for c in account["contacts"]))
    assert sorted(r["action"] for r in rows) == ["contact.created", "contact.created", "vendor_account.created"]
    assert {r["client_id"] for r in rows} == {client}
    account_row = next(r for r in rows if r["object_type"] == "vendor_account")
    assert account_row["after"] == {
        "client_id": str(client),
        "vendor_id": vendor["id"],
        "account_number": account["account_number"],
        "portal_url": None,
        "api_key_credential_id": None,
        "archived_at": None,
    }
    assert {r["after"]["name"] for r in rows if r["object_type"] == "contact"} == {"A One", "B Two"}


# ---- vendor accounts -------------------------------------------------------------------------------------


def test_a_technician_of_the_client_patches_an_account(vs_api, hdr, staff_technician, vs_engine, world):
    headers = staff_technician([world.client], sub=f"acct-{uuid.uuid4().hex[:6]}")
    response = vs_api.patch(
        f"/v1/vendor-accounts/{world.account['id']}",
        json={"account_number": "DNS-2024-7", "portal_url": None},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {**world.account, "account_number": "DNS-2024-7", "portal_url": None}
    assert vs_api.get(f"/v1/vendor-accounts/{world.account['id']}", headers=hdr("admin")).json() == response.json()
    row = _last_audit(vs_engine, world.account["id"])
    assert row["action"] == "vendor_account.updated"
    assert (row["before"]["account_number"], row["after"]["account_number"]) == (
        world.account["account_number"],
        "DNS-2024-7",
    )
    assert (row["before"]["portal_url"], row["after"]["portal_url"]) == ("https://portal.dns.example/login", None)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"account_number": None}, ["account_number"]),
        ({"account_number": ""}, ["account_number"]),
        (
            {"portal_url": "ftp://portal", "api_key_credential_id": "sk_live_abc"},
            ["portal_url", "api_key_credential_id"],
        ),
        ({"client_id": str(uuid.uuid4())}, ["client_id"]),
        ({"vendor_id": str(uuid.uuid4())}, ["vendor_id"]),
        ({"archived_at": None}, ["archived_at"]),
        ({"contacts": []}, ["contacts"]),
        ({"api_key": "sk_live_abc"}, ["api_key"]),
    ],
)
def test_bad_account_patches_are_422_naming_every_field_and_change_nothing(vs_api, hdr, vs_engine, world, body, fields):
    before = _state(vs_engine, world.client)
    response = vs_api.patch(f"/v1/vendor-accounts/{world.account['id']}", json=body, headers=hdr("admin"))
    problem = _error(response, 422, "validation_error")
    assert [p["field"] for p in problem["errors"]] == fields
    assert "sk_live_abc" not in response.text
    assert _state(vs_engine, world.client) == before


def test_an_account_number_the_client_already_has_at_the_vendor_is_409(vs_api, hdr, vs_engine, world):
    other = make_account(vs_api, hdr("admin"), world.client, world.vendor["id"])
    before = _state(vs_engine, world.client)
    response = vs_api.patch(
        f"/v1/vendor-accounts/{world.account['id']}",
        json={"account_number": other["account_number"], "portal_url": "https://elsewhere.example/"},
        headers=hdr("admin"),
    )
    assert _error(response, 409, "conflict")["field"] == "account_number"
    assert _state(vs_engine, world.client) == before


# ---- the API key credential, checked at the real broker ---------------------------------------------------


@pytest.fixture
def broker_credential(broker_live: str, vendor_sync_live: str, mint_token: Callable[..., str]) -> Callable[..., str]:
    """Factory: a credential stored at the real broker (secret in OpenBao), naming a vendor account."""
    headers = {"Authorization": f"Bearer {mint_token('admin', 'upkeep-broker-admin', aud=['secrets_broker'])}"}

    def _credential(client_id: Any, account_id: Any, kind: str, secret: str | None = None) -> str:
        body = {
            "client_id": str(client_id),
            "vendor_account_id": str(account_id),
            "kind": kind,
            "owner": "client",
            "category": "dns_host",
            "name": f"DNS {kind}",
            "username": "ops@client.example",
            "secret": secret or f"s-{uuid.uuid4().hex}",
        }
        response = httpx.post(f"{broker_live}/v1/credentials", json=body, headers=headers, timeout=10)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    return _credential


@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Factory: from the call on, vendor_sync finds the broker unreachable (a closed port)."""
    from vendor_sync.registry.credential_check import reset_credential_checker
    from vendor_sync.settings import get_settings

    def _down() -> None:
        monkeypatch.setenv("VENDOR_SYNC_SECRETS_BROKER_URL", f"http://127.0.0.1:{free_port()}")
        get_settings.cache_clear()
        reset_credential_checker()

    yield _down
    monkeypatch.undo()
    get_settings.cache_clear()
    reset_credential_checker()


def test_the_api_key_must_be_an_api_key_credential_of_this_very_account(
    vs_api, hdr, staff_technician, vs_engine, world, broker_credential
):
    admin = hdr("admin")
    sibling = make_account(vs_api, admin, world.client, world.vendor["id"])
    stranger = make_account(vs_api, admin, world.other_client, world.vendor["id"])
    canary = f"canary-{uuid.uuid4().hex}"
    api_key = broker_credential(world.client, world.account["id"], "api_key", secret=canary)
    password = broker_credential(world.client, world.account["id"], "password")
    siblings_key = broker_credential(world.client, sibling["id"], "api_key")
    strangers_key = broker_credential(world.other_client, stranger["id"], "api_key")
    path = f"/v1/vendor-accounts/{world.account['id']}"
    technician = staff_technician([world.client])

    refusals = [
        (password, "api_key_credential_id: must be a credential of kind api_key (this one is a password)"),
        (siblings_key, NOT_THIS_ACCOUNTS),
        (strangers_key, NOT_THIS_ACCOUNTS),
        (str(uuid.uuid4()), NOT_THIS_ACCOUNTS),
    ]
    for credential_id, words in refusals:
        before = _state(vs_engine, world.client)
        body = {"api_key_credential_id": credential_id, "portal_url": "https://changed.example/"}
        response = vs_api.patch(path, json=body, headers=technician)
        assert response.status_code == 422, response.text
        assert response.json() == {
            "error": "validation_error",
            "detail": words,
            "field": "api_key_credential_id",
            "errors": [{"field": "api_key_credential_id", "detail": words}],
        }
        assert _state(vs_engine, world.client) == before

    linked = vs_api.patch(path, json={"api_key_credential_id": api_key}, headers=technician)
    assert linked.status_code == 200, linked.text
    assert linked.json() == {**world.account, "api_key_credential_id": api_key}
    assert vs_api.get(path, headers=admin).json()["api_key_credential_id"] == api_key
    row = _last_audit(vs_engine, world.account["id"])
    assert (row["before"]["api_key_credential_id"], row["after"]["api_key_credential_id"]) == (None, api_key)

    cleared = vs_api.patch(path, json={"api_key_credential_id": None}, headers=admin)
    assert cleared.status_code == 200 and cleared.json()["api_key_credential_id"] is None
    # Ids, never secrets: the canary is in no audit row of the registry.
    with vs_engine.connect() as conn:
        everything = conn.execute(text("SELECT * FROM vendor_sync.audit_events")).all()
    assert canary not in repr(everything)
    assert all(canary not in str(r["before"]) + str(r["after"]) for r in audit_rows(vs_engine, world.account["id"]))


def test_the_api_key_check_fails_closed_when_the_broker_does_not_answer(vs_api, hdr, vs_engine, world, broker_down):
    broker_down()
    before = _state(vs_engine, world.client)
    path = f"/v1/vendor-accounts/{world.account['id']}"
    body = {"api_key_credential_id": str(uuid.uuid4()), "account_number": "WOULD-CHANGE"}
    response = vs_api.patch(path, json=body, headers=hdr("admin"))
    assert _error(response, 503, "unavailable")["detail"] == "secrets_broker unreachable (connection failed)"
    assert _state(vs_engine, world.client) == before
    # Other changes need no broker.
    assert vs_api.patch(path, json={"account_number": "CHANGED"}, headers=hdr("admin")).status_code == 200


# ---- archive -------------------------------------------------------------------------------------------


def test_archiving_is_idempotent_and_the_account_stays_readable(vs_api, hdr, vs_engine, world):
    path = f"/v1/vendor-accounts/{world.account['id']}"
    live = make_account(vs_api, hdr("admin"), world.client, world.vendor["id"])

    first = vs_api.post(f"{path}/archive", headers=hdr("technician"))
    assert first.status_code == 200, first.text
    archived = first.json()
    assert archived["archived_at"] is not None
    assert archived == {**world.account, "archived_at": archived["archived_at"]}
    state = _state(vs_engine, world.client)
    again = vs_api.post(f"{path}/archive", headers=hdr("admin"))
    assert (again.status_code, again.json()) == (200, archived)
    assert _state(vs_engine, world.client) == state, "a second archive wrote something"
    (row,) = [r for r in audit_rows(vs_engine, world.account["id"]) if r["action"] == "vendor_account.archived"]
    assert (row["before"]["archived_at"], row["after"]["archived_at"]) == (None, row["after"]["archived_at"])
    assert row["after"]["archived_at"] is not None

    for headers in (hdr("admin"), hdr("technician"), hdr("client_user", client_id=world.client)):
        assert vs_api.get(path, headers=headers).json() == archived
    listing = f"/v1/clients/{world.client}/vendor-accounts"
    every = vs_api.get(listing, headers=hdr("admin")).json()["items"]
    assert [a["id"] for a in every] == [world.account["id"], live["id"]]
    only_archived = vs_api.get(listing, params={"archived": "true"}, headers=hdr("admin")).json()["items"]
    assert only_archived == [archived]
    only_live = vs_api.get(listing, params={"archived": "false"}, headers=hdr("technician")).json()["items"]
    assert [a["id"] for a in only_live] == [live["id"]] and only_live[0]["archived_at"] is None
    bad = vs_api.get(listing, params={"archived": "maybe"}, headers=hdr("admin"))
    assert _error(bad, 422, "validation_error")["field"] == "archived"


@pytest.mark.parametrize("write", [w for w in WRITES if "archive" not in w.path], ids=WRITE_IDS[:1] + WRITE_IDS[2:])
def test_writes_to_an_archived_account_are_409_and_change_nothing(
    vs_api, hdr, staff_technician, vs_engine, world, write
):
    assert vs_api.post(f"/v1/vendor-accounts/{world.account['id']}/archive", headers=hdr("admin")).status_code == 200
    before = _state(vs_engine, world.client)
    response = write.send(vs_api, hdr("technician"), world.ids())
    assert response.status_code == 409, response.text
    assert response.json() == ARCHIVED
    assert _state(vs_engine, world.client) == before
    # Another client's technician still gets the 404 of a missing account, not the 409 that would confirm it.
    outsider = write.send(vs_api, staff_technician([world.other_client]), world.ids())
    assert (outsider.status_code, outsider.json()) == (404, ACCOUNT_MISSING)


# ---- contacts ----------------------------------------------------------------------------------------


def test_contacts_are_added_changed_and_removed(vs_api, hdr, vs_engine, world):
    admin = hdr("admin")
    base = f"/v1/vendor-accounts/{world.account['id']}/contacts"

    added = make_contact(
        vs_api, admin, world.account["id"], name="Eve Escalation", role="escalation", phone="+1 555 0102"
    )
    assert set(added) == {"id", "name", "role", "email", "phone"}
    assert (added["name"], added["role"], added["email"], added["phone"]) == (
        "Eve Escalation",
        "escalation",
        None,
        "+1 555 0102",
    )
    changed = vs_api.patch(
        f"{base}/{world.contact['id']}", json={"email": None, "name": "Dana Desk-Smith"}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {**world.contact, "email": None, "name": "Dana Desk-Smith"}
    read = vs_api.get(f"/v1/vendor-accounts/{world.account['id']}", headers=admin).json()
    assert read["contacts"] == [changed.json(), added]

    removed = vs_api.delete(f"{base}/{added['id']}", headers=admin)
    assert (removed.status_code, removed.content) == (204, b"")
    assert vs_api.get(f"/v1/vendor-accounts/{world.account['id']}", headers=admin).json()["contacts"] == [
        changed.json()
    ]
    again = vs_api.delete(f"{base}/{added['id']}", headers=admin)
    assert again.status_code == 404 and again.json() == {"error": "not_found", "detail": "contact not found"}

    created, deleted = audit_rows(vs_engine, added["id"])
    assert (created["action"], created["before"]) == ("contact.created", None)
    assert created["after"] == {
        "vendor_account_id": world.account["id"],
        "name": "Eve Escalation",
        "role": "escalation",
        "email": None,
        "phone": "+1 555 0102",
    }
    assert (deleted["action"], deleted["before"], deleted["after"]) == ("contact.deleted", created["after"], None)
    updated = _last_audit(vs_engine, world.contact["id"])
    assert updated["action"] == "contact.updated"
    assert (updated["before"]["email"], updated["after"]["email"]) == ("dana@dns.example", None)
    assert (updated["before"]["name"], updated["after"]["name"]) == ("Dana Desk", "Dana Desk-Smith")


def test_a_contact_of_another_account_is_404_on_this_one(vs_api, hdr, vs_engine, world):
    other = make_account(vs_api, hdr("admin"), world.client, world.vendor["id"], contacts=[{"name": "O", "role": "r"}])
    foreign = other["contacts"][0]["id"]
    before = _state(vs_engine, world.client)
    base = f"/v1/vendor-accounts/{world.account['id']}/contacts"
    for response in (
        vs_api.patch(f"{base}/{foreign}", json={"role": "hijacked"}, headers=hdr("admin")),
        vs_api.delete(f"{base}/{foreign}", headers=hdr("admin")),
        vs_api.delete(f"{base}/{uuid.uuid4()}", headers=hdr("admin")),
    ):
        assert response.status_code == 404 and response.json() == {"error": "not_found", "detail": "contact not found"}
    assert _state(vs_engine, world.client) == before


@pytest.mark.parametrize(
    ("method", "body", "fields"),
    [
        ("POST", {"role": "r"}, ["name"]),
        ("POST", {"name": "", "role": " ", "email": "nope", "phone": "call me"}, ["name", "role", "email", "phone"]),
        ("POST", {"name": "A", "role": "r", "vendor_account_id": str(uuid.uuid4())}, ["vendor_account_id"]),
        ("PATCH", {"name": None, "role": None}, ["name", "role"]),
        ("PATCH", {"email": "nope", "id": str(uuid.uuid4())}, ["email", "id"]),
    ],
)
def test_bad_contact_input_is_422_naming_every_field_and_changes_nothing(
    vs_api, hdr, vs_engine, world, method, body, fields
):
    base = f"/v1/vendor-accounts/{world.account['id']}/contacts"
    path = base if method == "POST" else f"{base}/{world.contact['id']}"
    before = _state(vs_engine, world.client)
    response = vs_api.request(method, path, json=body, headers=hdr("technician"))
    problem = _error(response, 422, "validation_error")
    assert sorted(p["field"] for p in problem["errors"]) == sorted(fields)
    assert _state(vs_engine, world.client) == before


def test_an_account_holds_at_most_fifty_contacts(vs_api, hdr, vs_engine, new_client):
    admin = hdr("admin")
    vendor = make_vendor(vs_api, admin)
    client = new_client()
    account = make_account(
        vs_api, admin, client, vendor["id"], contacts=[{"name": f"P{i}", "role": "r"} for i in range(50)]
    )
    before = _state(vs_engine, client)
    response = vs_api.post(
        f"/v1/vendor-accounts/{account['id']}/contacts", json={"name": "One Too Many", "role": "r"}, headers=admin
    )
    assert _error(response, 409, "conflict")["detail"] == (
        "this vendor account already has 50 contacts, the most it may hold"
    )
    assert _state(vs_engine, client) == before
