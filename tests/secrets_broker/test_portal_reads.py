"""The broker's reads behind the portal: a task's credentials, a release's reason, the release list.

Real intake (tasks, scope, staff directory), vendor_sync (vendor accounts), OpenBao and PostgreSQL.
Each test makes its own clients, so the lists it reads hold only its own rows (the unfiltered admin
list excepted, which is checked for presence only).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from broker_helpers import CREDENTIAL_FIELDS, STRONG_REASON, World, release_row
from sqlalchemy import text

MISSING_TASK = {"error": "not_found", "detail": "task not found"}
MISSING_CLIENT = {"error": "not_found", "detail": "client not found"}
ROLE_NOT_ALLOWED = {"error": "forbidden", "detail": "role not allowed"}
RELEASE_FIELDS = {
    "id",
    "task_id",
    "credential_id",
    "recipient",
    "approval_id",
    "reason",
    "status",
    "expires_at",
    "created_at",
}


# --- helpers --------------------------------------------------------------------------------------


def task_credentials(world: World, task_id: Any, headers: dict[str, str], **params: Any) -> Any:
    """GET /v1/credentials?task_id=..."""
    return world.broker.get("/v1/credentials", params={"task_id": str(task_id), **params}, headers=headers)


def releases(world: World, headers: dict[str, str], **params: Any) -> Any:
    """GET /v1/releases with these filters."""
    return world.broker.get("/v1/releases", params={k: str(v) for k, v in params.items()}, headers=headers)


def walk(world: World, path: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every item of a list, one per page (limit=1), following next_cursor to the end."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        query = {**{k: str(v) for k, v in params.items()}, "limit": "1"}
        if cursor:
            query["cursor"] = cursor
        r = world.broker.get(path, params=query, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 1
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("too many pages")


def rewrite_staff_row(admin_engine: Any, sub: str, sql: str, **params: Any) -> None:
    """Change `sub`'s staff row straight in intake's table (their tasks stay theirs), then drop the broker's cache."""
    from secrets_broker.staff_views import get_staff_directory

    with admin_engine.begin() as conn:
        assert conn.execute(text(sql), {"sub": sub, **params}).rowcount == 1
    get_staff_directory().forget(sub)


def ids(items: list[dict[str, Any]]) -> list[str]:
    """The ids of a page's items, in order."""
    return [item["id"] for item in items]


# --- GET /v1/credentials?task_id= ------------------------------------------------------------------


@dataclass
class ScopedTask:
    """A task scoped to one credential by id and to vendor account `account` with category `isp`."""

    client_id: uuid.UUID
    task_id: uuid.UUID
    sub: str
    in_scope: list[uuid.UUID]  # oldest first
    out_of_scope: dict[uuid.UUID, str]  # credential -> the rule a release of it fails
    secrets: list[str]


def scoped_task(world: World, *, in_progress: bool = True) -> ScopedTask:
    """One client's credentials around a task's scope: two reach it, four do not, one per reason."""
    client_id = world.new_client()
    account = world.new_vendor_account(client_id, kind="isp")
    other_account = world.new_vendor_account(client_id, kind="isp")
    by_id, s1 = world.new_credential(client_id, category="dns_host")
    by_account, s2 = world.new_credential(client_id, category="isp", vendor_account_id=account)
    wrong_category, s3 = world.new_credential(client_id, category="dns_host", vendor_account_id=account)
    category_alone, s4 = world.new_credential(client_id, category="isp")
    other_account_cred, s5 = world.new_credential(client_id, category="isp", vendor_account_id=other_account)
    other_client, s6 = world.new_credential(world.new_client(), category="isp")
    sub = f"tech-{uuid.uuid4().hex[:8]}"
    task_id = world.new_task(
        client_id,
        assignee=sub,
        credential_ids=[by_id],
        vendor_account_ids=[account],
        categories=["isp"],
        in_progress=in_progress,
    )
    out = {
        wrong_category: "out_of_scope",
        category_alone: "out_of_scope",
        other_account_cred: "out_of_scope",
        other_client: "client_mismatch",
    }
    return ScopedTask(client_id, task_id, sub, [by_id, by_account], out, [s1, s2, s3, s4, s5, s6])


def test_a_tasks_credentials_are_exactly_those_its_release_decision_allows(world: World) -> None:
    task = scoped_task(world)
    tech = world.tech(task.sub)

    listed = task_credentials(world, task.task_id, tech)

    assert listed.status_code == 200, listed.text
    assert ids(listed.json()["items"]) == [str(c) for c in task.in_scope]
    assert listed.json()["next_cursor"] is None
    assert all(set(item) == CREDENTIAL_FIELDS for item in listed.json()["items"])
    assert not [s for s in task.secrets if s in listed.text]
    # The admin reads the same list.
    assert task_credentials(world, task.task_id, world.admin).json() == listed.json()

    # The same rule as the release decision: what is listed releases, what is not is refused by name.
    for credential_id in task.in_scope:
        assert world.release(task.sub, task.task_id, credential_id).status_code == 201
    for credential_id, rule in task.out_of_scope.items():
        refused = world.release(task.sub, task.task_id, credential_id)
        assert (refused.status_code, refused.json()["error"], refused.json()["rule"]) == (403, "release_denied", rule)


def test_a_tasks_credentials_page_one_at_a_time(world: World) -> None:
    task = scoped_task(world)
    tech = world.tech(task.sub)

    first = task_credentials(world, task.task_id, tech, limit=1)
    assert ids(first.json()["items"]) == [str(task.in_scope[0])]
    assert first.json()["next_cursor"]
    second = task_credentials(world, task.task_id, tech, limit=1, cursor=first.json()["next_cursor"])
    assert (ids(second.json()["items"]), second.json()["next_cursor"]) == ([str(task.in_scope[1])], None)
    assert [item["id"] for item in walk(world, "/v1/credentials", tech, task_id=task.task_id)] == [
        str(c) for c in task.in_scope
    ]


def test_anyone_but_an_admin_or_the_assignee_gets_a_missing_tasks_404(world: World) -> None:
    task = scoped_task(world)
    callers = {
        "another technician": world.tech(f"tech-{uuid.uuid4().hex[:8]}"),
        "the client's admin": world.auth("client_admin", "boss", task.client_id),
    }
    for who, headers in callers.items():
        answer = task_credentials(world, task.task_id, headers)
        missing = task_credentials(world, uuid.uuid4(), headers)
        assert (answer.status_code, answer.json()) == (404, MISSING_TASK), who
        assert (missing.status_code, missing.json()) == (404, MISSING_TASK), who
        assert not [str(c) for c in task.in_scope if str(c) in answer.text], who
    # The admin's 404 is for a task that does not exist.
    assert (task_credentials(world, uuid.uuid4(), world.admin).json()) == MISSING_TASK
    # A client user may not list credentials at all.
    user = task_credentials(world, task.task_id, world.auth("client_user", "u", task.client_id))
    assert (user.status_code, user.json()) == (403, ROLE_NOT_ALLOWED)


def test_the_assignee_outside_the_tasks_client_gets_a_missing_tasks_404(world: World, admin_engine: Any) -> None:
    task = scoped_task(world)  # its technician's staff row names every client
    tech = world.tech(task.sub)
    assert ids(task_credentials(world, task.task_id, tech).json()["items"]) == [str(c) for c in task.in_scope]

    # Limited to another client; the task stays theirs and in progress at intake (no unassignment).
    narrow = "UPDATE intake.staff SET client_ids = CAST(:ids AS jsonb) WHERE sub = :sub"
    rewrite_staff_row(admin_engine, task.sub, narrow, ids=json.dumps([str(world.new_client())]))

    answer = task_credentials(world, task.task_id, tech)
    assert (answer.status_code, answer.json()) == (404, MISSING_TASK)
    # Naming the task's client as well: the client is missing first.
    by_client = task_credentials(world, task.task_id, tech, client_id=task.client_id)
    assert (by_client.status_code, by_client.json()) == (404, MISSING_CLIENT)


@pytest.mark.parametrize(
    "change",
    ["DELETE FROM intake.staff WHERE sub = :sub", "UPDATE intake.staff SET active = false WHERE sub = :sub"],
    ids=["no_staff_row", "inactive"],
)
def test_an_assignee_without_an_active_staff_row_gets_a_missing_tasks_404(
    world: World, admin_engine: Any, change: str
) -> None:
    task = scoped_task(world)
    tech = world.tech(task.sub)
    assert task_credentials(world, task.task_id, tech).json()["items"]

    rewrite_staff_row(admin_engine, task.sub, change)  # the task stays theirs and in progress at intake

    answer = task_credentials(world, task.task_id, tech)
    assert (answer.status_code, answer.json()) == (404, MISSING_TASK)


def test_the_assignee_sees_a_tasks_credentials_only_while_it_is_in_progress(world: World) -> None:
    task = scoped_task(world, in_progress=False)  # assigned, still `ready`
    tech = world.tech(task.sub)

    ready = task_credentials(world, task.task_id, tech)
    assert (ready.status_code, ready.json()) == (200, {"items": [], "next_cursor": None})
    assert ids(task_credentials(world, task.task_id, world.admin).json()["items"]) == [str(c) for c in task.in_scope]

    world.transition(task.task_id, "in_progress", tech)
    assert ids(task_credentials(world, task.task_id, tech).json()["items"]) == [str(c) for c in task.in_scope]

    world.transition(task.task_id, "on_hold", tech)
    assert task_credentials(world, task.task_id, tech).json() == {"items": [], "next_cursor": None}


def test_a_task_filter_and_another_clients_filter_list_nothing(world: World) -> None:
    task = scoped_task(world)
    other = world.new_client()

    answer = task_credentials(world, task.task_id, world.admin, client_id=other)
    assert (answer.status_code, answer.json()) == (200, {"items": [], "next_cursor": None})
    same = task_credentials(world, task.task_id, world.admin, client_id=task.client_id)
    assert ids(same.json()["items"]) == [str(c) for c in task.in_scope]


# --- GET /v1/releases/{id}: the reason -------------------------------------------------------------


def test_a_release_shows_its_reason_and_recipient_and_no_token(world: World, engine: Any) -> None:
    _, credential_id, _, task_id, sub = world.ready()
    r = world.release(sub, task_id, credential_id, reason="reset the router admin page, ticket 88")
    release_id, token = r.json()["release_id"], r.json()["wrap_token"]

    shown = world.broker.get(f"/v1/releases/{release_id}", headers=world.tech(sub))

    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert set(body) == RELEASE_FIELDS
    assert (body["task_id"], body["credential_id"], body["status"]) == (str(task_id), str(credential_id), "issued")
    assert body["reason"] == "reset the router admin page, ticket 88"
    assert (body["recipient"]["kind"], body["recipient"]["sub"]) == ("technician", sub)
    row = release_row(engine, release_id)
    assert row.reason == body["reason"]
    for value in (token, row.token_fingerprint, row.wrap_accessor):
        assert value not in shown.text


# --- GET /v1/releases ------------------------------------------------------------------------------


@dataclass
class History:
    """Client A's releases (oldest first) and client B's one, with everything that must never be listed."""

    a: uuid.UUID
    b: uuid.UUID
    a_credential: uuid.UUID
    b_credential: uuid.UUID
    a_releases: list[str]
    b_release: str
    hidden: list[str]  # tokens, secrets, fingerprints, accessors
    sub: str


def _history(world: World, engine: Any) -> History:
    a, a_credential, a_secret, task_id, sub = world.ready()
    first = world.release(sub, task_id, a_credential, reason="first look at the ISP portal")
    second = world.release(sub, task_id, a_credential, reason="second look at the ISP portal")
    assert first.status_code == second.status_code == 201
    # The first token is used, so the list shows both a closed and an open release.
    assert world.unwrap(sub, first.json()["wrap_token"]).status_code == 200
    account = world.new_vendor_account(a)
    api_key, key_secret = world.new_credential(a, kind="api_key", vendor_account_id=account)
    service = world.broker.post(
        "/internal/service-releases",
        headers=world.vendor_sync,
        json={"credential_id": str(api_key), "vendor_account_id": str(account), "job_id": "job-portal-7"},
    )
    assert service.status_code == 201, service.text
    [service_id] = _release_ids(engine, api_key)
    b, b_credential, b_secret, b_task, b_sub = world.ready()
    b_release = world.release(b_sub, b_task, b_credential)
    assert b_release.status_code == 201
    a_ids = [first.json()["release_id"], second.json()["release_id"], service_id]
    hidden = [a_secret, key_secret, b_secret, first.json()["wrap_token"], second.json()["wrap_token"]]
    hidden.append(service.json()["wrap_token"])
    for release_id in [*a_ids, b_release.json()["release_id"]]:
        row = release_row(engine, release_id)
        hidden.extend([row.token_fingerprint, row.wrap_accessor])
    return History(a, b, a_credential, b_credential, a_ids, b_release.json()["release_id"], hidden, sub)


def _release_ids(engine: Any, credential_id: uuid.UUID) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id FROM releases WHERE credential_id = :c"), {"c": credential_id})
        return [str(row.id) for row in rows]


@pytest.fixture
def history(world: World, engine: Any) -> History:
    """Two technician releases and a service release at client A, one release at client B."""
    return _history(world, engine)


def test_an_admin_lists_a_clients_releases_newest_first_with_who_when_and_why(world: World, history: History) -> None:
    listed = releases(world, world.admin, client_id=history.a)

    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert ids(items) == list(reversed(history.a_releases))
    assert [i["created_at"] for i in items] == sorted((i["created_at"] for i in items), reverse=True)
    assert all(set(item) == RELEASE_FIELDS for item in items)
    service, second, first = items
    assert (service["recipient"]["kind"], service["recipient"]["sub"]) == ("service", "svc:vendor_sync")
    assert (service["reason"], service["task_id"], service["status"]) == ("job job-portal-7", None, "issued")
    assert (second["recipient"]["kind"], second["recipient"]["sub"]) == ("technician", history.sub)
    assert (second["reason"], second["status"]) == ("second look at the ISP portal", "issued")
    assert (first["reason"], first["status"]) == ("first look at the ISP portal", "unwrapped")
    assert first["credential_id"] == second["credential_id"] == str(history.a_credential)
    assert history.b_release not in listed.text
    assert not [value for value in history.hidden if value in listed.text]


def test_the_release_list_pages_one_at_a_time_and_filters_by_credential(world: World, history: History) -> None:
    first = releases(world, world.admin, client_id=history.a, limit=1)
    assert ids(first.json()["items"]) == [history.a_releases[-1]]
    second = releases(world, world.admin, client_id=history.a, limit=1, cursor=first.json()["next_cursor"])
    assert ids(second.json()["items"]) == [history.a_releases[-2]]
    assert [i["id"] for i in walk(world, "/v1/releases", world.admin, client_id=history.a)] == list(
        reversed(history.a_releases)
    )

    by_credential = releases(world, world.admin, client_id=history.a, credential_id=history.a_credential)
    assert ids(by_credential.json()["items"]) == [history.a_releases[1], history.a_releases[0]]
    # Without a client filter an admin reads every client's releases.
    everyone = releases(world, world.admin, credential_id=history.b_credential)
    assert ids(everyone.json()["items"]) == [history.b_release]
    newest = releases(world, world.admin, limit=50).json()["items"]
    assert {history.b_release, history.a_releases[-1]} <= set(ids(newest))


def test_a_client_admin_lists_their_own_clients_releases_only(world: World, history: History) -> None:
    boss = world.auth("client_admin", "boss-a", history.a)

    own = releases(world, boss)
    assert own.status_code == 200, own.text
    assert ids(own.json()["items"]) == list(reversed(history.a_releases))
    assert releases(world, boss, client_id=history.a).json() == own.json()
    assert history.b_release not in own.text
    assert not [value for value in history.hidden if value in own.text]

    # Another client's id is a missing client's 404, byte for byte, and names nothing of B.
    other = releases(world, boss, client_id=history.b)
    missing = releases(world, boss, client_id=uuid.uuid4())
    assert (other.status_code, other.json()) == (404, MISSING_CLIENT)
    assert (missing.status_code, missing.json()) == (404, MISSING_CLIENT)
    assert history.b_release not in other.text and str(history.b) not in other.text
    # Another client's credential lists nothing of it (the list is held to their own client).
    assert releases(world, boss, credential_id=history.b_credential).json() == {"items": [], "next_cursor": None}


def test_roles_other_than_admin_and_client_admin_may_not_list_releases(world: World, history: History) -> None:
    callers = {
        "the releases' technician": world.tech(history.sub),
        "a client user": world.auth("client_user", "user-a", history.a),
        "vendor_sync": world.vendor_sync,
    }
    for who, headers in callers.items():
        answer = releases(world, headers, client_id=history.a)
        assert (answer.status_code, answer.json()) == (403, ROLE_NOT_ALLOWED), who
    anonymous = world.broker.get("/v1/releases")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "unauthenticated"


def test_a_third_partys_release_is_listed_with_its_recipient_and_never_its_code(world: World) -> None:
    client_id, credential_id, secret, task_id, _, code = world.third_party_token()
    boss = world.auth("client_admin", "boss-tp", client_id)

    listed = releases(world, boss)

    [item] = listed.json()["items"]
    assert (item["task_id"], item["credential_id"], item["reason"]) == (str(task_id), str(credential_id), STRONG_REASON)
    assert item["recipient"] == {
        "kind": "third_party",
        "type": "third_party",
        "sub": None,
        "name": "Acme Fibre Ltd",
        "party_category": "provider_for_client",
    }
    assert code not in listed.text and secret not in listed.text


# --- migration 0006: reasons of releases made before the column ------------------------------------


def test_migration_0006_fills_the_reason_of_older_releases_from_their_audit_entries(
    world: World, history: History, admin_engine: Any, engine: Any
) -> None:
    import importlib.util

    import secrets_broker.migrate

    path = Path(secrets_broker.migrate.__file__).parent / "migrations" / "versions" / "0006_release_reason.py"
    spec = importlib.util.spec_from_file_location("broker_migration_0006", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    expected = {r: release_row(engine, r).reason for r in history.a_releases}
    assert list(expected.values()) == [
        "first look at the ISP portal",
        "second look at the ISP portal",
        "job job-portal-7",
    ]
    with admin_engine.begin() as conn:
        # As the rows were before the column: no reason of their own.
        conn.execute(text("UPDATE secrets_broker.releases SET reason = NULL WHERE client_id = :c"), {"c": history.a})
        conn.execute(text(migration.BACKFILL))

    assert {r: release_row(engine, r).reason for r in history.a_releases} == expected
