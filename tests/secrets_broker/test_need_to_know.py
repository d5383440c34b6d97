"""Need-to-know at the broker: a technician touches credentials and releases only of their staff row's clients.

Real intake (its staff directory, `GET /internal/staff/{sub}`), OpenBao, PostgreSQL and Redis (the
broker's cache of staff views). Where a test narrows a staff row straight in intake's table, intake
does not unassign the technician's tasks as its `PATCH /v1/staff` would: their task of the other
client stays theirs and in progress, so only the broker's own check stands between them and that
client's objects (as in a stale or racing assignment).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from broker_helpers import (
    STRONG_REASON,
    MintingSource,
    World,
    audit_rows,
    lookup_at_vault,
    release_row,
    unwrap_at_vault,
)
from sqlalchemy import text

from mspkit.inbox import apply_once

# --- helpers --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def revoker(devstack_dir: Path, vault_addr: str) -> Iterator[Any]:
    """A gateway logged in as the revoker role, as the worker is."""
    from secrets_broker.vault.gateway import VaultGateway

    gateway = VaultGateway(
        addr=vault_addr, role="msp-broker-revoker", source=MintingSource(devstack_dir, "msp-broker-revoker")
    )
    gateway.login()
    yield gateway


def new_staff(world: World, sub: str, client_ids: list[uuid.UUID] | None) -> None:
    """A technician's staff row through intake's `POST /v1/staff` (admin)."""
    body = {
        "sub": sub,
        "display_name": sub,
        "email": f"{sub}@msp.example",
        "role": "technician",
        "client_ids": None if client_ids is None else [str(c) for c in client_ids],
    }
    r = world.intake.post("/v1/staff", headers=world.admin, json=body)
    assert r.status_code == 201, r.text


def forget(sub: str) -> None:
    """Drop the broker's cached staff view of `sub`, as the worker does on `staff.changed`."""
    from secrets_broker.staff_views import get_staff_directory

    get_staff_directory().forget(sub)


def rewrite_staff_row(admin_engine: Any, sub: str, sql: str, **params: Any) -> None:
    """Change `sub`'s staff row straight in intake's table (no unassignment, no event), then drop the cached view."""
    with admin_engine.begin() as conn:
        assert conn.execute(text(sql), {"sub": sub, **params}).rowcount == 1
    forget(sub)


def narrow_to(admin_engine: Any, sub: str, client_ids: list[uuid.UUID]) -> None:
    """Limit `sub` to `client_ids` in intake's table, leaving their tasks as they are."""
    ids = json.dumps([str(c) for c in client_ids])
    rewrite_staff_row(
        admin_engine, sub, "UPDATE intake.staff SET client_ids = CAST(:ids AS jsonb) WHERE sub = :sub", ids=ids
    )


def intake_events(admin_engine: Any, since_id: int, *, task_id: uuid.UUID, sub: str) -> list[dict[str, Any]]:
    """The envelopes intake wrote after outbox row `since_id` about this task or staff member, in order."""
    with admin_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT envelope FROM intake.outbox WHERE id > :since AND (envelope->>'aggregate_id' = :task "
                "OR (type = 'staff.changed' AND envelope->'data'->>'sub' = :sub)) ORDER BY id"
            ),
            {"since": since_id, "task": str(task_id), "sub": sub},
        ).scalars()
        return [dict(r) for r in rows]


def outbox_head(admin_engine: Any) -> int:
    """The newest row id of intake's outbox."""
    with admin_engine.connect() as conn:
        return int(conn.execute(text("SELECT coalesce(max(id), 0) FROM intake.outbox")).scalar_one())


def latest_staff_event(admin_engine: Any, sub: str) -> dict[str, Any]:
    """The latest `staff.changed` envelope intake wrote for `sub`."""
    with admin_engine.connect() as conn:
        return dict(
            conn.execute(
                text(
                    "SELECT envelope FROM intake.outbox WHERE type = 'staff.changed' "
                    "AND envelope->'data'->>'sub' = :sub ORDER BY id DESC LIMIT 1"
                ),
                {"sub": sub},
            ).scalar_one()
        )


def consume(engine: Any, revoker: Any, envelope: dict[str, Any], handler: Callable[..., list[uuid.UUID]]) -> bool:
    """What the worker's task-event tasks do: apply once through the inbox, then revoke what was queued."""
    from secrets_broker.db import KIT
    from secrets_broker.revocation.consumers import CONSUMER
    from secrets_broker.revocation.service import carry_out

    queued: list[uuid.UUID] = []
    applied = apply_once(engine, KIT, CONSUMER, envelope, lambda s, e: queued.extend(handler(s, e)))
    carry_out(engine, gateway=revoker, pending_ids=queued, backoff_max_s=5)
    return applied


def unknown_token_like(token: str) -> str:
    """A well-formed wrapping token of the same shape that Vault never issued."""
    prefix, _, rest = token.partition(".")
    return f"{prefix}.{secrets.token_hex(len(rest))[: len(rest)]}"


def assert_same(answer: Any, missing: Any, status: int) -> None:
    """`answer` is exactly what a missing object gets: the same status and the same body."""
    assert (answer.status_code, answer.json()) == (missing.status_code, missing.json())
    assert answer.status_code == status, answer.text


def count(engine: Any, sql: str, **params: Any) -> int:
    """One number from the broker's tables (as its own role sees them)."""
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def releases_of(engine: Any, credential_id: uuid.UUID) -> int:
    """How many releases of this credential exist."""
    return count(engine, "SELECT count(*) FROM releases WHERE credential_id = :c", c=credential_id)


# --- a technician limited to client A, who still holds work of client B -----------------------------


@dataclass
class Side:
    """One client's objects that the technician had: a credential, its in-progress task and a live release."""

    client_id: uuid.UUID
    credential_id: uuid.UUID
    secret: str
    task_id: uuid.UUID
    release_id: uuid.UUID
    token: str


@dataclass
class Scene:
    """Technician `sub`, limited to client `a`, with an in-progress task and an unused release at each client."""

    sub: str
    a: Side
    b: Side


def _side(world: World, sub: str, client_id: uuid.UUID) -> Side:
    credential_id, secret = world.new_credential(client_id)
    task_id = world.new_task(client_id, assignee=sub, credential_ids=[credential_id])
    r = world.release(sub, task_id, credential_id)
    assert r.status_code == 201, r.text
    token, release_id = r.json()["wrap_token"], uuid.UUID(r.json()["release_id"])
    return Side(client_id, credential_id, secret, task_id, release_id, token)


@pytest.fixture
def scene(world: World, admin_engine: Any) -> Scene:
    """A technician who worked for A and B, and whose staff row now names A only."""
    sub = f"lim-{uuid.uuid4().hex[:8]}"
    a_id, b_id = world.new_client(), world.new_client()
    new_staff(world, sub, [a_id, b_id])
    scene = Scene(sub=sub, a=_side(world, sub, a_id), b=_side(world, sub, b_id))
    narrow_to(admin_engine, sub, [a_id])
    return scene


def assert_reads_missing(world: World, tech: dict[str, str], credential_id: Any, release_id: Any) -> None:
    """The credential and the release read exactly as random ids do: 404, same body."""
    assert_same(
        world.broker.get(f"/v1/credentials/{credential_id}", headers=tech),
        world.broker.get(f"/v1/credentials/{uuid.uuid4()}", headers=tech),
        404,
    )
    assert_same(
        world.broker.get(f"/v1/releases/{release_id}", headers=tech),
        world.broker.get(f"/v1/releases/{uuid.uuid4()}", headers=tech),
        404,
    )


def test_reads_of_another_clients_credentials_and_releases_answer_as_missing_ones(world: World, scene: Scene) -> None:
    tech, b, a = world.tech(scene.sub), scene.b, scene.a

    # B's credential is in scope of the technician's in-progress task, yet it is as missing as a random id.
    assert_reads_missing(world, tech, b.credential_id, b.release_id)
    by_b = world.broker.get("/v1/credentials", params={"client_id": str(b.client_id)}, headers=tech)
    assert_same(by_b, world.broker.get("/v1/credentials", params={"client_id": str(uuid.uuid4())}, headers=tech), 404)
    assert by_b.json()["detail"] == "client not found"

    # A's objects, as before.
    assert world.broker.get(f"/v1/credentials/{a.credential_id}", headers=tech).status_code == 200
    assert world.broker.get(f"/v1/releases/{a.release_id}", headers=tech).json()["status"] == "issued"
    by_a = world.broker.get("/v1/credentials", params={"client_id": str(a.client_id)}, headers=tech)
    assert [c["id"] for c in by_a.json()["items"]] == [str(a.credential_id)]
    everything = world.broker.get("/v1/credentials", headers=tech)
    assert [c["id"] for c in everything.json()["items"]] == [str(a.credential_id)]

    # B's objects exist: an admin sees them.
    admin_by_b = world.broker.get("/v1/credentials", params={"client_id": str(b.client_id)}, headers=world.admin)
    assert [c["id"] for c in admin_by_b.json()["items"]] == [str(b.credential_id)]
    assert world.broker.get(f"/v1/releases/{b.release_id}", headers=world.admin).json()["status"] == "issued"


def test_a_release_or_rotation_of_another_clients_credential_is_a_missing_ones_404_audited_and_mints_nothing(
    world: World, scene: Scene, engine: Any, gateway: Any, vault_addr: str
) -> None:
    from secrets_broker.vault.gateway import credential_path

    tech, b = world.tech(scene.sub), scene.b
    queued_before = count(engine, "SELECT count(*) FROM pending_revocations")
    body = {"task_id": str(b.task_id), "credential_id": str(b.credential_id), "reason": STRONG_REASON}
    missing = {**body, "credential_id": str(uuid.uuid4())}
    assert_same(
        world.broker.post("/v1/releases", headers=tech, json=body),
        world.broker.post("/v1/releases", headers=tech, json=missing),
        404,
    )
    rotate = {"task_id": str(b.task_id), "reason": STRONG_REASON, "secret": f"pw-{uuid.uuid4().hex}"}
    assert_same(
        world.broker.put(f"/v1/credentials/{b.credential_id}/secret", headers=tech, json=rotate),
        world.broker.put(f"/v1/credentials/{uuid.uuid4()}/secret", headers=tech, json=rotate),
        404,
    )

    assert releases_of(engine, b.credential_id) == 1  # the release made while B was theirs, nothing new
    # A token minted and then abandoned would be queued for revocation: none was.
    assert count(engine, "SELECT count(*) FROM pending_revocations") == queued_before
    wrap = gateway.wrapped_read(credential_path(b.client_id, b.credential_id), ttl_s=30)
    stored = unwrap_at_vault(vault_addr, wrap.token).json()["data"]
    assert (stored["data"]["secret"], stored["metadata"]["version"]) == (b.secret, 1)
    denied = audit_rows(engine, credential_id=b.credential_id, action="release.denied")
    assert [(e.actor, e.rule, json.loads(e.canonical)["details"]["operation"]) for e in denied] == [
        (scene.sub, "need_to_know", "release"),
        (scene.sub, "need_to_know", "rotate"),
    ]

    # A's credential still releases to them.
    a = scene.a
    allowed = world.release(scene.sub, a.task_id, a.credential_id)
    assert allowed.status_code == 201, allowed.text


def test_an_unused_token_of_another_client_unwraps_as_an_unknown_one_and_survives(
    world: World, scene: Scene, engine: Any, vault_addr: str
) -> None:
    b, a = scene.b, scene.a

    assert_same(world.unwrap(scene.sub, b.token), world.unwrap(scene.sub, unknown_token_like(b.token)), 410)

    assert lookup_at_vault(vault_addr, b.token).status_code == 200  # not consumed
    assert release_row(engine, b.release_id).status == "issued"
    refused = audit_rows(engine, release_id=b.release_id, action="unwrap.refused")
    assert [json.loads(e.canonical)["details"]["reason"] for e in refused] == ["need_to_know"]
    opened = world.unwrap(scene.sub, a.token)
    assert (opened.status_code, opened.json()["secret"]) == (200, a.secret)


def test_storing_a_credential_for_another_client_is_refused_as_for_a_client_without_their_task(
    world: World, scene: Scene, engine: Any
) -> None:
    tech = world.tech(scene.sub)

    def store(client_id: uuid.UUID) -> Any:
        body = {
            "client_id": str(client_id),
            "kind": "password",
            "owner": "client",
            "category": "isp",
            "name": "Router",
            "username": "admin",
            "secret": f"pw-{uuid.uuid4().hex}",
        }
        return world.broker.post("/v1/credentials", headers=tech, json=body)

    # The technician has an in-progress task at B, which would let them store there but for need-to-know.
    assert_same(store(scene.b.client_id), store(uuid.uuid4()), 403)
    assert count(engine, "SELECT count(*) FROM credentials WHERE client_id = :c", c=scene.b.client_id) == 1
    assert store(scene.a.client_id).status_code == 201


# --- no staff row, or an inactive one: nothing -------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    ["DELETE FROM intake.staff WHERE sub = :sub", "UPDATE intake.staff SET active = false WHERE sub = :sub"],
    ids=["no_staff_row", "inactive"],
)
def test_a_technician_without_an_active_staff_row_reads_nothing(
    world: World, engine: Any, admin_engine: Any, vault_addr: str, change: str
) -> None:
    client_id, credential_id, _, task_id, sub = world.ready()
    r = world.release(sub, task_id, credential_id)
    token, release_id = r.json()["wrap_token"], uuid.UUID(r.json()["release_id"])
    tech = world.tech(sub)
    assert world.broker.get("/v1/credentials", headers=tech).json()["items"] != []

    rewrite_staff_row(admin_engine, sub, change)  # their task stays theirs and in progress at intake

    listed = world.broker.get("/v1/credentials", headers=tech)
    assert (listed.status_code, listed.json()["items"]) == (200, [])
    assert_same(
        world.broker.get("/v1/credentials", params={"client_id": str(client_id)}, headers=tech),
        world.broker.get("/v1/credentials", params={"client_id": str(uuid.uuid4())}, headers=tech),
        404,
    )
    assert_reads_missing(world, tech, credential_id, release_id)
    assert_same(world.unwrap(sub, token), world.unwrap(sub, unknown_token_like(token)), 410)
    assert_same(world.release(sub, task_id, credential_id), world.release(sub, task_id, uuid.uuid4()), 404)

    assert lookup_at_vault(vault_addr, token).status_code == 200
    assert releases_of(engine, credential_id) == 1
    # The same objects, as an admin sees them.
    assert world.broker.get(f"/v1/credentials/{credential_id}", headers=world.admin).status_code == 200
    assert world.broker.get(f"/v1/releases/{release_id}", headers=world.admin).json()["status"] == "issued"


# --- deactivation through intake ----------------------------------------------------------------------


def test_deactivating_a_technician_revokes_their_unused_release_within_one_event_round_trip_and_refuses_the_next(
    world: World, engine: Any, admin_engine: Any, revoker: Any, vault_addr: str
) -> None:
    from secrets_broker import jobs
    from secrets_broker.revocation.consumers import on_task_assigned, on_task_status_changed

    _, credential_id, _, task_id, sub = world.ready()
    r = world.release(sub, task_id, credential_id)
    assert r.status_code == 201, r.text
    token, release_id = r.json()["wrap_token"], uuid.UUID(r.json()["release_id"])
    assert world.broker.get(f"/v1/credentials/{credential_id}", headers=world.tech(sub)).status_code == 200
    since = outbox_head(admin_engine)

    patched = world.intake.patch(f"/v1/staff/{sub}", headers=world.admin, json={"active": False})
    assert patched.status_code == 200, patched.text

    # One round trip: every event intake wrote for the change, handed to the worker's consumers.
    events = intake_events(admin_engine, since, task_id=task_id, sub=sub)
    assert [e["type"] for e in events] == ["task.status_changed", "task.assigned", "staff.changed"]
    handlers = {"task.status_changed": on_task_status_changed, "task.assigned": on_task_assigned}
    for envelope in events:
        if envelope["type"] == "staff.changed":
            assert jobs.staff_changed.apply(args=[envelope]).result is True
        else:
            assert consume(engine, revoker, envelope, handlers[envelope["type"]]) is True

    assert lookup_at_vault(vault_addr, token).status_code == 400  # revoked at Vault
    assert release_row(engine, release_id).status == "revoked"
    assert world.unwrap(sub, token).status_code == 410

    again = world.release(sub, task_id, credential_id)
    assert_same(again, world.release(sub, task_id, uuid.uuid4()), 404)
    assert releases_of(engine, credential_id) == 1
    assert [e.rule for e in audit_rows(engine, credential_id=credential_id, action="release.denied")] == [
        "need_to_know"
    ]


# --- intake silent: fail closed -----------------------------------------------------------------------


@pytest.fixture
def silence_intake(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call to make the broker read staff views from an intake that does not answer (until the test ends)."""
    from mspkit.service_tokens import service_client
    from mspkit.staff_directory import StaffDirectory
    from secrets_broker import main
    from secrets_broker.settings import get_settings

    def silence() -> None:
        settings = get_settings()
        dead = service_client(settings, base_url="http://127.0.0.1:9", audience="intake", timeout_s=1.0)
        directory = StaffDirectory(intake=dead, redis_url=settings.redis_url, service="secrets_broker")
        monkeypatch.setattr(main, "get_staff_directory", lambda: directory)

    return silence


def test_when_intake_does_not_answer_technicians_reads_are_503_and_nothing_is_written(
    world: World, engine: Any, vault_addr: str, silence_intake: Callable[[], None]
) -> None:
    _, credential_id, _, task_id, sub = world.ready()
    r = world.release(sub, task_id, credential_id)
    token, release_id = r.json()["wrap_token"], r.json()["release_id"]
    forget(sub)  # nothing cached: the next view must come from intake
    audit_before = len(audit_rows(engine, credential_id=credential_id))
    silence_intake()
    tech = world.tech(sub)

    calls = {
        "list": world.broker.get("/v1/credentials", headers=tech),
        "get": world.broker.get(f"/v1/credentials/{credential_id}", headers=tech),
        "release_get": world.broker.get(f"/v1/releases/{release_id}", headers=tech),
        "release": world.release(sub, task_id, credential_id),
        "rotate": world.broker.put(
            f"/v1/credentials/{credential_id}/secret",
            headers=tech,
            json={"task_id": str(task_id), "reason": STRONG_REASON, "secret": f"pw-{uuid.uuid4().hex}"},
        ),
        "unwrap": world.unwrap(sub, token),
    }
    for name, answer in calls.items():
        assert answer.status_code == 503, (name, answer.text)
        assert answer.json() == {"error": "unavailable", "detail": "intake unreachable (connection failed)"}, name

    assert len(audit_rows(engine, credential_id=credential_id)) == audit_before
    assert releases_of(engine, credential_id) == 1
    assert lookup_at_vault(vault_addr, token).status_code == 200
    # Admins need no staff view: their reads go on.
    assert world.broker.get(f"/v1/credentials/{credential_id}", headers=world.admin).status_code == 200


# --- staff.changed ------------------------------------------------------------------------------------


def test_staff_changed_drops_the_cached_view(world: World, admin_engine: Any, engine: Any) -> None:
    from secrets_broker import jobs

    sub = f"tech-{uuid.uuid4().hex[:8]}"
    a_id, b_id = world.new_client(), world.new_client()
    new_staff(world, sub, None)
    tech = world.tech(sub)
    # The view (every client) is cached by this read.
    assert world.broker.get("/v1/credentials", params={"client_id": str(b_id)}, headers=tech).status_code == 200

    patched = world.intake.patch(f"/v1/staff/{sub}", headers=world.admin, json={"client_ids": [str(a_id)]})
    assert patched.status_code == 200, patched.text
    envelope = latest_staff_event(admin_engine, sub)
    assert envelope["data"]["sub"] == sub

    assert jobs.staff_changed.apply(args=[envelope]).result is True

    after = world.broker.get("/v1/credentials", params={"client_id": str(b_id)}, headers=tech)
    assert (after.status_code, after.json()["detail"]) == (404, "client not found")
    assert world.broker.get("/v1/credentials", params={"client_id": str(a_id)}, headers=tech).status_code == 200


@pytest.mark.parametrize(
    "data", [{}, {"sub": ""}, {"sub": 7}, None], ids=["no_sub", "empty", "not_a_string", "no_data"]
)
def test_a_malformed_staff_changed_is_dead_lettered(engine: Any, data: Any) -> None:
    from secrets_broker import jobs

    envelope = {"event_id": str(uuid.uuid4()), "type": "staff.changed", "client_id": None, "data": data}

    assert jobs.staff_changed.apply(args=[envelope]).result is False
    with engine.connect() as conn:
        letters = conn.execute(
            text("SELECT task_name, error FROM dead_letters WHERE args->0->>'event_id' = :e"),
            {"e": envelope["event_id"]},
        ).all()
    assert [(r.task_name, r.error) for r in letters] == [("secrets_broker.events.staff_changed", "MalformedEvent")]
