"""A task's scope at intake: request expansion scopes it from vendor_sync's registry (served over HTTP by
`vendor_sync_live`), and `POST /v1/tasks/{id}/scope` lets an admin, and only an admin, change it.

Credentials named in a scope are checked at the broker: those cases run against a real broker in
tests/secrets_broker/test_scope.py; here the broker is only ever unreachable.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from intake_factories import (
    assign,
    client_state,
    create_request,
    get_task,
    isp_body,
    make_client,
    move,
    outbox,
    purchase_body,
    spam_body,
    submit,
    system_task,
)


@pytest.fixture(scope="module")
def registry(vendor_sync_live, auth):
    """An admin client of the live vendor_sync API."""
    with httpx.Client(base_url=vendor_sync_live, headers=auth("admin", "vs-admin"), timeout=10) as http:
        yield http


def make_account(registry, client_id: str, *, kind: str, name: str | None = None, adapter: str | None = None) -> str:
    """A fresh vendor (names are unique at vendor_sync) and the client's account there; the account's id."""
    body: dict[str, Any] = {"name": name or f"Vendor {uuid.uuid4().hex[:8]}", "kind": kind}
    if adapter:
        body["adapter"] = adapter
    vendor = registry.post("/v1/vendors", json=body)
    assert vendor.status_code == 201, vendor.text
    account = registry.post(
        f"/v1/clients/{client_id}/vendor-accounts",
        json={"vendor_id": vendor.json()["id"], "account_number": f"ACCT-{uuid.uuid4().hex[:8]}"},
    )
    assert account.status_code == 201, account.text
    return str(account.json()["id"])


def dead_registry(monkeypatch, module) -> None:
    """Point `module`'s registry at a port nothing listens on (the discard port)."""
    from intake import vendors
    from intake.settings import get_settings

    dead = vendors.VendorRegistry(get_settings().model_copy(update={"vendor_sync_url": "http://127.0.0.1:9"}))
    monkeypatch.setattr(module, "get_registry", lambda: dead)


def scope_of(task: dict[str, Any]) -> dict[str, Any]:
    return dict(task["scope"])


# ---- request expansion ----------------------------------------------------------------------------


def test_spam_filter_scope_is_the_providers_filter_accounts_and_the_only_dns_host(api, admin_h, auth, registry):
    client = make_client(api, admin_h)
    adapter = f"filter{uuid.uuid4().hex[:8]}"
    wanted = make_account(registry, client["id"], kind="spam_filter", adapter=adapter)
    make_account(registry, client["id"], kind="spam_filter", adapter="mailchannels")
    make_account(registry, client["id"], kind="spam_filter")  # a filter vendor without an adapter
    dns = make_account(registry, client["id"], kind="dns_host")
    make_account(registry, client["id"], kind="registrar")
    user = auth("client_user", "u", client["id"])

    task = get_task(api, admin_h, create_request(api, user, spam_body(provider=adapter))["task_ids"][0])

    assert scope_of(task) == {
        "credential_categories": ["spam_filter", "dns_host"],
        "vendor_account_ids": [wanted, dns],
        "credential_ids": [],
    }
    assert task["internal_notes"] == []


def test_two_dns_hosts_and_no_zone_sync_give_no_dns_host(api, admin_h, auth, registry):
    client = make_client(api, admin_h)
    make_account(registry, client["id"], kind="dns_host")
    make_account(registry, client["id"], kind="dns_host")
    user = auth("client_user", "u", client["id"])

    task = get_task(api, admin_h, create_request(api, user, spam_body())["task_ids"][0])

    assert scope_of(task)["vendor_account_ids"] == []
    assert task["internal_notes"] == []  # the registry answered: nothing to say


def test_isp_scope_is_the_account_at_the_named_isp_whatever_the_case(api, admin_h, auth, registry):
    client = make_client(api, admin_h)
    name = f"FastFiber {uuid.uuid4().hex[:8]}"
    isp = make_account(registry, client["id"], kind="isp", name=name)
    make_account(registry, client["id"], kind="isp")
    # Another client's account at the same ISP is theirs alone.
    make_account(registry, make_client(api, admin_h, name="Other Co")["id"], kind="isp", name=f"{name} Two")
    user = auth("client_user", "u", client["id"])

    task = get_task(api, admin_h, create_request(api, user, isp_body(isp_name=name.lower()))["task_ids"][0])

    assert scope_of(task) == {"credential_categories": ["isp"], "vendor_account_ids": [isp], "credential_ids": []}


def test_registry_silent_at_creation_gives_categories_only_and_a_note(api, admin_h, auth, sql, monkeypatch):
    from intake.requests import service

    dead_registry(monkeypatch, service)
    client = make_client(api, admin_h)
    user = auth("client_user", "u", client["id"])

    for body, categories in ((spam_body(), ["spam_filter", "dns_host"]), (isp_body(), ["isp"])):
        created = create_request(api, user, body)
        task = get_task(api, admin_h, created["task_ids"][0])
        assert task["status"] == "awaiting_approval"
        assert scope_of(task) == {"credential_categories": categories, "vendor_account_ids": [], "credential_ids": []}
        [note] = task["internal_notes"]
        assert (note["kind"], note["author"]) == ("scope", "svc:intake")
        assert note["body"].startswith("vendor_sync did not answer within 2 s when this task was created")
        assert "POST /v1/tasks/{id}/scope" in note["body"]
        # The client never sees internal notes.
        assert "internal_notes" not in get_task(api, user, created["task_ids"][0])
    # A purchase never asks the registry, so it says nothing about it.
    purchase = get_task(api, admin_h, create_request(api, user, purchase_body())["task_ids"][0])
    assert purchase["internal_notes"] == []


def test_a_replay_reads_no_registry_and_writes_nothing(api, auth, admin_h, registry, sql, monkeypatch):
    from intake import vendors

    client = make_client(api, admin_h)
    make_account(registry, client["id"], kind="dns_host")
    user = auth("client_user", "u", client["id"])
    first = submit(api, user, spam_body(), key="spam-1")
    assert first.status_code == 201
    state = client_state(sql, client["id"])

    def _boom(*args, **kwargs):
        raise AssertionError("the registry was read for a replay")

    monkeypatch.setattr(vendors.VendorRegistry, "client_accounts", _boom)
    again = submit(api, user, spam_body(), key="spam-1")
    assert (again.status_code, again.content) == (201, first.content)
    assert client_state(sql, client["id"]) == state


def test_expansion_picks_accounts_from_a_snapshot():
    """The pure choice, on a snapshot: the provider's filters by adapter, the DNS host only when alone."""
    from intake.requests.expansion import expand
    from intake.requests.schemas import IspAccountSetupBody, SpamFilterSetupBody
    from intake.vendors import ClientAccount

    def account(kind: str, name: str | None = None, adapter: str | None = None) -> ClientAccount:
        return ClientAccount(uuid.uuid4(), uuid.uuid4(), kind, vendor_name=name, vendor_adapter=adapter)

    mc, other, dns, isp = (
        account("spam_filter", adapter="mailchannels"),
        account("spam_filter", adapter="other"),
        account("dns_host"),
        account("isp", name="Straße Net"),
    )
    spam = SpamFilterSetupBody.model_validate(spam_body())
    [task] = expand(spam, accounts=[mc, other, dns, isp]).tasks
    assert task.vendor_account_ids == (str(mc.id), str(dns.id))
    [task] = expand(spam, accounts=[mc, dns, account("dns_host")]).tasks
    assert task.vendor_account_ids == (str(mc.id),)
    [task] = expand(IspAccountSetupBody.model_validate(isp_body(isp_name="STRASSE NET")), accounts=[isp]).tasks
    assert task.vendor_account_ids == (str(isp.id),)  # casefold: ß and SS are the same name
    [task] = expand(spam, accounts=None).tasks
    assert (task.vendor_account_ids, len(task.notes)) == ((), 1)


# ---- POST /v1/tasks/{id}/scope --------------------------------------------------------------------


@pytest.fixture
def tenant(api, admin_h, auth):
    """A client, its user's purchase task assigned to tech-1 and in progress."""
    client = make_client(api, admin_h)
    task_id = create_request(api, auth("client_user", "u", client["id"]), purchase_body())["task_ids"][0]
    assert assign(api, admin_h, task_id, "tech-1").status_code == 200
    assert move(api, admin_h, task_id, "in_progress").status_code == 200
    return client, task_id


def post_scope(api, headers, task_id, **change: Any):
    return api.post(f"/v1/tasks/{task_id}/scope", json=change, headers=headers)


def test_an_admin_changes_the_scope_with_a_note_and_one_event(api, admin_h, tenant, registry, sql, monkeypatch):
    client, task_id = tenant
    account = make_account(registry, client["id"], kind="registrar")
    before = get_task(api, admin_h, task_id)

    response = post_scope(
        api, admin_h, task_id, add={"vendor_account_ids": [account], "credential_categories": ["registrar", "dns_host"]}
    )

    assert response.status_code == 200, response.text
    task = response.json()
    assert scope_of(task) == {
        "credential_categories": ["registrar", "dns_host"],
        "vendor_account_ids": [account],
        "credential_ids": [],
    }
    assert task == get_task(api, admin_h, task_id)
    assert datetime.fromisoformat(task["updated_at"]) > datetime.fromisoformat(before["updated_at"])
    [note] = [n for n in task["internal_notes"] if n["kind"] == "scope"]
    assert note["author"] == "admin-1"
    assert note["body"] == (
        f"Scope changed by admin-1: added vendor accounts {account}; added categories registrar, dns_host."
    )
    event_type, data = outbox(sql, client["id"])[-1]
    assert event_type == "task.scope_changed"
    assert data == {
        "task_id": task_id,
        "added": {
            "credential_ids": [],
            "vendor_account_ids": [account],
            "credential_categories": ["registrar", "dns_host"],
        },
        "removed": {"credential_ids": [], "vendor_account_ids": [], "credential_categories": []},
        "scope": {
            "credential_ids": [],
            "vendor_account_ids": [account],
            "credential_categories": ["registrar", "dns_host"],
        },
        "updated_at": datetime.fromisoformat(task["updated_at"]).isoformat(),
    }

    # Removing needs no peer: it only narrows, so it works with vendor_sync and the broker away.
    from intake.tasks import scope

    dead_registry(monkeypatch, scope)
    monkeypatch.setattr(scope, "get_credentials", lambda: pytest.fail("the broker was asked about a removal"))
    response = post_scope(
        api, admin_h, task_id, remove={"vendor_account_ids": [account], "credential_categories": ["dns_host"]}
    )
    assert response.status_code == 200, response.text
    assert scope_of(response.json()) == {
        "credential_categories": ["registrar"],
        "vendor_account_ids": [],
        "credential_ids": [],
    }
    _, data = outbox(sql, client["id"])[-1]
    assert data["removed"] == {
        "credential_ids": [],
        "vendor_account_ids": [account],
        "credential_categories": ["dns_host"],
    }


@pytest.mark.parametrize("who", ["assignee", "other technician", "client_admin", "client_user"])
def test_nobody_but_an_admin_changes_a_scope(api, auth, tenant, sql, who):
    client, task_id = tenant
    headers = {
        "assignee": auth("technician", "tech-1"),
        "other technician": auth("technician", "tech-2"),
        "client_admin": auth("client_admin", "boss", client["id"]),
        "client_user": auth("client_user", "u", client["id"]),
    }[who]
    state = client_state(sql, client["id"])

    response = post_scope(api, headers, task_id, add={"credential_categories": ["isp"]})

    assert response.status_code == 403
    assert response.json() == {"error": "forbidden", "detail": "only an admin may change a task's scope"}
    assert client_state(sql, client["id"]) == state


def test_another_tenants_task_is_the_404_of_a_missing_one(api, admin_h, auth, tenant, sql):
    client, task_id = tenant
    other = make_client(api, admin_h, name="Other Co")
    headers = auth("client_admin", "mallory", other["id"])
    state = client_state(sql, client["id"])

    foreign = post_scope(api, headers, task_id, add={"credential_categories": ["isp"]})
    missing = post_scope(api, headers, str(uuid.uuid4()), add={"credential_categories": ["isp"]})

    assert foreign.status_code == missing.status_code == 404
    assert foreign.content == missing.content
    assert client_state(sql, client["id"]) == state


def test_vendor_accounts_not_of_the_tasks_client_are_422_naming_the_field(api, admin_h, tenant, registry, sql):
    client, task_id = tenant
    theirs = make_account(registry, make_client(api, admin_h, name="Other Co")["id"], kind="registrar")
    nobodys = str(uuid.uuid4())
    state = client_state(sql, client["id"])

    response = post_scope(api, admin_h, task_id, add={"vendor_account_ids": [theirs, nobodys]})

    assert response.status_code == 422
    problems = [
        {
            "field": "add.vendor_account_ids",
            "detail": f"add.vendor_account_ids: {v} is not a vendor account of the task's client",
        }
        for v in (theirs, nobodys)
    ]
    assert response.json() == {
        "error": "validation_error",
        "detail": problems[0]["detail"],
        "field": "add.vendor_account_ids",
        "errors": problems,
    }
    assert client_state(sql, client["id"]) == state


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"add": {"asset_ids": [str(uuid.uuid4())]}}, "add.asset_ids"),
        ({"remove": {"asset_ids": [str(uuid.uuid4())]}}, "remove.asset_ids"),
        ({"add": {"credential_categories": ["passwords"]}}, "add.credential_categories.0"),
        ({"add": {"credential_ids": ["not-a-uuid"]}}, "add.credential_ids.0"),
        ({"add": {"vendor_account_ids": []}, "scope": {}}, "scope"),
    ],
    ids=["asset-add", "asset-remove", "category", "credential-id", "unknown-field"],
)
def test_bad_bodies_are_422_naming_the_field(api, admin_h, tenant, sql, change, field):
    client, task_id = tenant
    state = client_state(sql, client["id"])
    response = post_scope(api, admin_h, task_id, **change)
    assert (response.status_code, response.json()["error"], response.json()["field"]) == (
        422,
        "validation_error",
        field,
    )
    if field.endswith("asset_ids"):
        assert response.json()["detail"] == f"{field}: assets do not exist yet, so none can be named"
    assert client_state(sql, client["id"]) == state


def test_adding_and_removing_one_value_is_422(api, admin_h, tenant, sql):
    client, task_id = tenant
    state = client_state(sql, client["id"])

    both = post_scope(
        api, admin_h, task_id, add={"credential_categories": ["isp"]}, remove={"credential_categories": ["isp"]}
    )

    assert (both.status_code, both.json()["field"]) == (422, "remove.credential_categories")
    assert both.json()["detail"] == "remove.credential_categories: isp is also being added"
    assert client_state(sql, client["id"]) == state


def test_a_closed_task_is_409_and_unchanged(api, admin_h, tenant, sql):
    client, task_id = tenant
    assert move(api, admin_h, task_id, "done").status_code == 200
    state = client_state(sql, client["id"])

    response = post_scope(api, admin_h, task_id, add={"credential_categories": ["isp"]})

    assert response.status_code == 409
    assert response.json() == {
        "error": "conflict",
        "detail": "a closed task's scope cannot change",
        "current_status": "done",
    }
    assert client_state(sql, client["id"]) == state


@pytest.mark.parametrize("peer", ["vendor_sync", "secrets_broker"])
def test_a_peer_that_does_not_answer_is_503_and_nothing_changes(api, admin_h, tenant, sql, monkeypatch, peer):
    from intake import credentials_client
    from intake.settings import get_settings
    from intake.tasks import scope

    client, task_id = tenant
    if peer == "vendor_sync":
        dead_registry(monkeypatch, scope)
        change = {"vendor_account_ids": [str(uuid.uuid4())]}
    else:
        dead = credentials_client.BrokerCredentials(
            get_settings().model_copy(update={"secrets_broker_url": "http://127.0.0.1:9"})
        )
        monkeypatch.setattr(scope, "get_credentials", lambda: dead)
        change = {"credential_ids": [str(uuid.uuid4())]}
    state = client_state(sql, client["id"])

    response = post_scope(api, admin_h, task_id, add=change)

    assert (response.status_code, response.json()["error"]) == (503, "unavailable")
    assert client_state(sql, client["id"]) == state


def test_a_change_that_changes_nothing_writes_nothing(api, admin_h, tenant, sql):
    client, task_id = tenant
    assert post_scope(api, admin_h, task_id, add={"credential_categories": ["isp"]}).status_code == 200
    state = client_state(sql, client["id"])
    before = get_task(api, admin_h, task_id)

    # Adding what the scope holds, removing what it lacks (a retried removal, say), or nothing at all.
    absent = {"remove": {"vendor_account_ids": [str(uuid.uuid4())], "credential_categories": ["server"]}}
    for change in ({"add": {"credential_categories": ["isp"]}}, absent, {}):
        response = post_scope(api, admin_h, task_id, **change)
        assert response.status_code == 200, response.text
        assert response.json() == before
    assert client_state(sql, client["id"]) == state


def test_a_system_task_names_no_credentials(api, vs_h, admin_h, sql):
    client = make_client(api, admin_h)
    response = api.post(
        "/internal/tasks",
        json={"client_id": client["id"], "type": "provisioning", "title": "x", "credential_ids": [str(uuid.uuid4())]},
        headers=vs_h,
    )
    assert (response.status_code, response.json()["field"]) == (422, "credential_ids")
    assert outbox(sql, client["id"]) == []
    # Its vendor accounts and categories are its scope, as before.
    task = system_task(api, vs_h, client["id"], credential_categories=["dns_host"])
    assert scope_of(task) == {"credential_categories": ["dns_host"], "vendor_account_ids": [], "credential_ids": []}
