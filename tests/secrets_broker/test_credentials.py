"""Credentials: who may store them, what is validated, who sees them, rotation, and the sweeper."""

from __future__ import annotations

import json
import unicodedata
import uuid
from pathlib import Path
from typing import Any

import pytest
from broker_helpers import STRONG_REASON, World, unwrap_at_vault
from sqlalchemy import text
from vault_audit import VaultOp, vault_ops


def _body(client_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_id": str(client_id),
        "kind": "password",
        "owner": "client",
        "category": "isp",
        "name": "ISP portal",
        "username": "admin@example.com",
        "secret": f"pw-{uuid.uuid4().hex}",
    }
    body.update(overrides)
    return body


def _row(engine: Any, credential_id: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text("SELECT * FROM credentials WHERE id = :i"), {"i": credential_id}).one_or_none()


def test_create_stores_metadata_here_and_the_secret_in_vault_only(
    world: World, engine: Any, gateway: Any, vault_addr: str
) -> None:
    client_id = world.new_client()
    secret, notes = f"pw-{uuid.uuid4().hex}", f"notes-{uuid.uuid4().hex}"

    r = world.broker.post("/v1/credentials", headers=world.admin, json=_body(client_id, secret=secret, notes=notes))

    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "active" and body["created_by"] == "admin-1"
    assert "secret" not in body and "notes" not in body
    assert secret not in r.text and notes not in r.text
    row = _row(engine, body["id"])
    assert row.status == "active" and row.vault_version == 1
    assert secret not in str(tuple(row)) and notes not in str(tuple(row))

    from secrets_broker.vault.gateway import credential_path

    wrap = gateway.wrapped_read(credential_path(client_id, uuid.UUID(body["id"])), ttl_s=30)
    assert unwrap_at_vault(vault_addr, wrap.token).json()["data"]["data"] == {"secret": secret, "notes": notes}
    with engine.connect() as conn:
        audit = conn.execute(
            text("SELECT action, actor FROM audit_entries WHERE credential_id = :i"), {"i": body["id"]}
        ).all()
    assert [(a.action, a.actor) for a in audit] == [("credential.created", "admin-1")]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "bad\u202ename"),  # right-to-left override
        ("name", "zero\u200bwidth"),
        ("name", "tab\tname"),
        ("name", "angle <b>"),
        ("name", ""),
        ("name", " padded"),
        ("username", "nul\x00user"),
        ("username", "bell\x07"),
        ("category", "toaster"),
        ("kind", "certificate"),
        ("url", "https://user:pw@example.com/"),
        ("url", "https://user@example.com/login"),
        ("url", "https://portal.example.com/login?token=abc"),
        ("url", "https://portal.example.com?next=/"),
        ("url", "ftp://example.com/"),
        ("secret", ""),
        ("status", "active"),
    ],
)
def test_invalid_fields_are_refused_naming_the_field(world: World, field: str, value: str) -> None:
    client_id = uuid.uuid4()
    r = world.broker.post("/v1/credentials", headers=world.admin, json=_body(client_id, **{field: value}))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert "pw-" not in r.text


def test_names_of_any_script_are_stored_in_nfc(world: World) -> None:
    client_id = world.new_client()
    decomposed = unicodedata.normalize("NFD", "Café Zürich - 東京 (prod)")
    r = world.broker.post(
        "/v1/credentials", headers=world.admin, json=_body(client_id, name=decomposed, username="jörg.müller")
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == unicodedata.normalize("NFC", decomposed)
    assert r.json()["name"] != decomposed


def test_who_may_store_a_credential(world: World) -> None:
    client_id = world.new_client()
    other_client = world.new_client()
    sub = f"tech-{uuid.uuid4().hex[:8]}"
    body = _body(client_id)

    own_admin = world.auth("client_admin", "boss", client_id)
    assert world.broker.post("/v1/credentials", headers=own_admin, json=body).status_code == 201
    foreign_admin = world.auth("client_admin", "boss", other_client)
    assert world.broker.post("/v1/credentials", headers=foreign_admin, json=_body(client_id)).status_code == 403
    user = world.auth("client_user", "someone", client_id)
    assert world.broker.post("/v1/credentials", headers=user, json=_body(client_id)).status_code == 403

    # A technician needs an in-progress task of theirs for that client.
    assert world.broker.post("/v1/credentials", headers=world.tech(sub), json=_body(client_id)).status_code == 403
    world.new_task(client_id, assignee=sub)
    assert world.broker.post("/v1/credentials", headers=world.tech(sub), json=_body(client_id)).status_code == 201
    assert world.broker.post("/v1/credentials", headers=world.tech(sub), json=_body(other_client)).status_code == 403

    # vendor_sync stores what it provisions: credentials of vendor accounts, each for the task it
    # was created for (test_provisioning.py stores them; here, what it may not store).
    vs = world.vendor_sync
    no_account = world.broker.post("/v1/credentials", headers=vs, json=_body(client_id, kind="api_key"))
    assert (no_account.status_code, no_account.json()["field"]) == (422, "vendor_account_id")
    provisioned = _body(client_id, kind="api_key", vendor_account_id=str(world.new_vendor_account(client_id)))
    no_task = world.broker.post("/v1/credentials", headers=vs, json=provisioned)
    assert (no_task.status_code, no_task.json()["field"]) == (422, "task_id")
    intake_svc = world.auth("service", "svc:intake")
    assert world.broker.post("/v1/credentials", headers=intake_svc, json=provisioned).status_code == 403


def _written(engine: Any, client_id: Any) -> tuple[int, int]:
    """(credential rows, audit entries) of a client: what a refused create must leave at zero."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM credentials WHERE client_id = :c"), {"c": client_id}).scalar()
        audit = conn.execute(text("SELECT count(*) FROM audit_entries WHERE client_id = :c"), {"c": client_id}).scalar()
    return int(rows or 0), int(audit or 0)


def test_a_client_intake_does_not_know_is_422_naming_client_id(world: World, engine: Any) -> None:
    unknown = uuid.uuid4()
    body = _body(unknown)

    r = world.broker.post("/v1/credentials", headers=world.admin, json=body)

    assert r.status_code == 422, r.text
    assert r.json() == {**r.json(), "error": "validation_error", "field": "client_id"}
    assert body["secret"] not in r.text
    assert _written(engine, unknown) == (0, 0)


def test_the_vendor_account_must_belong_to_the_client(world: World, engine: Any) -> None:
    client_id = world.new_client()
    other = world.new_client()
    theirs = world.new_vendor_account(other)
    for account in (theirs, uuid.uuid4()):  # another client's account and an unknown one look alike
        body = _body(client_id, kind="api_key", vendor_account_id=str(account))
        r = world.broker.post("/v1/credentials", headers=world.admin, json=body)
        assert r.status_code == 422, r.text
        assert r.json() == {**r.json(), "error": "validation_error", "field": "vendor_account_id"}
    assert _written(engine, client_id) == (0, 0)
    assert _written(engine, other) == (0, 0)

    mine = world.new_vendor_account(client_id)
    body = _body(client_id, vendor_account_id=str(mine))
    r = world.broker.post("/v1/credentials", headers=world.admin, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["vendor_account_id"] == str(mine)


def test_a_client_admin_cannot_store_msp_credentials(world: World, engine: Any) -> None:
    client_id = world.new_client()
    boss = world.auth("client_admin", "boss", client_id)

    r = world.broker.post("/v1/credentials", headers=boss, json=_body(client_id, owner="msp"))

    assert r.status_code == 403, r.text
    assert r.json() == {**r.json(), "error": "forbidden", "field": "owner"}
    assert _written(engine, client_id) == (0, 0)
    # Their own client's credentials they store; the MSP's the admin stores.
    assert world.broker.post("/v1/credentials", headers=boss, json=_body(client_id)).status_code == 201
    msp_owned = world.broker.post("/v1/credentials", headers=world.admin, json=_body(client_id, owner="msp"))
    assert msp_owned.status_code == 201


def test_a_url_with_a_query_string_is_refused_and_stores_nothing(world: World, engine: Any) -> None:
    client_id = world.new_client()
    body = _body(client_id, url="https://portal.example.com/login?api_key=sk_live_canary")

    r = world.broker.post("/v1/credentials", headers=world.admin, json=body)

    assert r.status_code == 422, r.text
    assert r.json() == {**r.json(), "error": "validation_error", "field": "url"}
    assert "sk_live_canary" not in r.text and "pattern" not in r.json()["detail"]
    assert _written(engine, client_id) == (0, 0)
    plain = world.broker.post(
        "/v1/credentials", headers=world.admin, json=_body(client_id, url="https://portal.example.com/login")
    )
    assert (plain.status_code, plain.json()["url"]) == (201, "https://portal.example.com/login")


@pytest.mark.parametrize("down", ["intake", "vendor_sync"])
def test_create_fails_closed_when_a_reference_cannot_be_checked(
    world: World, engine: Any, broker_app: Any, down: str
) -> None:
    from mspctl.ports import free_port
    from mspkit.service_tokens import token_source
    from secrets_broker.deps import intake_dep, vendor_registry_dep
    from secrets_broker.intake_client import IntakeClient
    from secrets_broker.settings import get_settings
    from secrets_broker.vendor_sync_client import VendorRegistry

    client_id = world.new_client()
    account = world.new_vendor_account(client_id)
    dead_url = f"http://127.0.0.1:{free_port()}"
    tokens = token_source(get_settings())
    if down == "intake":
        dead_intake = IntakeClient(base_url=dead_url, tokens=tokens)
        broker_app.dependency_overrides[intake_dep] = lambda: dead_intake
    else:
        dead_registry = VendorRegistry(base_url=dead_url, tokens=tokens)
        broker_app.dependency_overrides[vendor_registry_dep] = lambda: dead_registry

    r = world.broker.post(
        "/v1/credentials", headers=world.admin, json=_body(client_id, kind="api_key", vendor_account_id=str(account))
    )

    assert r.status_code == 503, r.text
    assert r.json()["error"] == "unavailable"
    assert _written(engine, client_id) == (0, 0)


def test_technicians_see_only_credentials_in_scope_of_their_live_tasks(world: World) -> None:
    client_id = world.new_client()
    account = world.new_vendor_account(client_id)
    by_id, _ = world.new_credential(client_id)
    by_account, _ = world.new_credential(client_id, category="registrar", vendor_account_id=account)
    same_category_other_account, _ = world.new_credential(
        client_id, category="registrar", vendor_account_id=world.new_vendor_account(client_id)
    )
    unrelated, _ = world.new_credential(client_id)
    sub = f"tech-{uuid.uuid4().hex[:8]}"
    world.new_task(client_id, assignee=sub, credential_ids=[by_id])
    world.new_task(client_id, assignee=sub, vendor_account_ids=[account], categories=["registrar"])
    # Not started yet: opens nothing.
    world.new_task(client_id, assignee=sub, credential_ids=[unrelated], in_progress=False)

    listed = world.broker.get("/v1/credentials", headers=world.tech(sub))
    assert listed.status_code == 200
    assert {i["id"] for i in listed.json()["items"]} == {str(by_id), str(by_account)}
    assert world.broker.get(f"/v1/credentials/{by_account}", headers=world.tech(sub)).status_code == 200
    for hidden in (unrelated, same_category_other_account):
        assert world.broker.get(f"/v1/credentials/{hidden}", headers=world.tech(sub)).status_code == 404
    assert world.broker.get("/v1/credentials", headers=world.tech("tech-idle")).json()["items"] == []


def test_admin_and_client_admin_listing_and_tenancy(world: World) -> None:
    client_id = world.new_client()
    other = world.new_client()
    mine, _ = world.new_credential(client_id)
    theirs, _ = world.new_credential(other)
    boss = world.auth("client_admin", "boss", client_id)

    own = world.broker.get("/v1/credentials", headers=boss).json()["items"]
    assert [i["id"] for i in own] == [str(mine)]
    # The query parameter cannot widen a client_admin's view: another client is a missing one.
    forced = world.broker.get("/v1/credentials", params={"client_id": str(other)}, headers=boss)
    assert (forced.status_code, forced.json()) == (404, {"error": "not_found", "detail": "client not found"})
    assert world.broker.get(f"/v1/credentials/{theirs}", headers=boss).status_code == 404
    assert world.broker.get(f"/v1/credentials/{uuid.uuid4()}", headers=boss).status_code == 404

    listed = world.broker.get("/v1/credentials", params={"client_id": str(other)}, headers=world.admin).json()
    assert [i["id"] for i in listed["items"]] == [str(theirs)]
    assert world.broker.get("/v1/credentials", headers=world.auth("client_user", "u", client_id)).status_code == 403


def test_listing_pages_with_a_cursor(world: World) -> None:
    client_id = world.new_client()
    ids = {str(world.new_credential(client_id)[0]) for _ in range(3)}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"client_id": str(client_id), "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = world.broker.get("/v1/credentials", params=params, headers=world.admin).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 3


def test_rotation_is_decided_like_a_release_and_audited(world: World, gateway: Any, vault_addr: str) -> None:
    client_id = world.new_client()
    credential_id, _ = world.new_credential(client_id, notes="door code 1234")
    sub = f"tech-{uuid.uuid4().hex[:8]}"
    task_id = world.new_task(client_id, assignee=sub, credential_ids=[credential_id])
    new_secret = f"rotated-{uuid.uuid4().hex}"
    body = {"task_id": str(task_id), "reason": STRONG_REASON, "secret": new_secret}

    refused = world.broker.put(f"/v1/credentials/{credential_id}/secret", headers=world.tech("tech-x"), json=body)
    assert (refused.status_code, refused.json()["rule"]) == (403, "caller_not_assignee")
    short = world.broker.put(
        f"/v1/credentials/{credential_id}/secret", headers=world.tech(sub), json={**body, "reason": "x"}
    )
    assert short.json()["rule"] == "reason_too_short"

    ok = world.broker.put(f"/v1/credentials/{credential_id}/secret", headers=world.tech(sub), json=body)
    assert ok.status_code == 200, ok.text
    assert new_secret not in ok.text

    from secrets_broker.vault.gateway import credential_path

    wrap = gateway.wrapped_read(credential_path(client_id, credential_id), ttl_s=30)
    data = unwrap_at_vault(vault_addr, wrap.token).json()["data"]
    assert data["data"] == {"secret": new_secret, "notes": "door code 1234"}
    assert data["metadata"]["version"] == 2

    audit = world.broker.get("/v1/audit", params={"credential_id": str(credential_id)}, headers=world.admin).json()
    actions = [(e["action"], e["rule"], e["details"].get("operation")) for e in audit["items"]]
    assert actions == [
        ("credential.created", None, None),
        ("release.denied", "caller_not_assignee", "rotate"),
        ("release.denied", "reason_too_short", "rotate"),
        ("credential.rotated", None, None),
    ]


def _rotation(world: World, **credential_kw: Any) -> tuple[uuid.UUID, uuid.UUID, str, dict[str, Any]]:
    """A credential in scope of a live task; returns (client, credential, technician, rotate body)."""
    client_id = world.new_client()
    credential_id, _ = world.new_credential(client_id, **credential_kw)
    sub = f"tech-{uuid.uuid4().hex[:8]}"
    task_id = world.new_task(client_id, assignee=sub, credential_ids=[credential_id])
    body = {"task_id": str(task_id), "reason": STRONG_REASON, "secret": f"rotated-{uuid.uuid4().hex}"}
    return client_id, credential_id, sub, body


def _stored(gateway: Any, vault_addr: str, client_id: uuid.UUID, credential_id: uuid.UUID) -> dict[str, Any]:
    """The latest version at Vault (data and metadata), through a wrapped read unwrapped here."""
    from secrets_broker.vault.gateway import credential_path

    wrap = gateway.wrapped_read(credential_path(client_id, credential_id), ttl_s=30)
    return dict(unwrap_at_vault(vault_addr, wrap.token).json()["data"])


def _rotated_entries(engine: Any, credential_id: uuid.UUID) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT canonical FROM audit_entries WHERE credential_id = :i AND action = 'credential.rotated' "
                "ORDER BY index"
            ),
            {"i": credential_id},
        ).scalars()
        return [json.loads(row)["details"] for row in rows]


@pytest.mark.parametrize("replace_notes", [False, True], ids=["keep-notes", "replace-notes"])
def test_rotation_is_one_patch_and_never_reads_the_secret(
    world: World, engine: Any, gateway: Any, vault_addr: str, devstack_dir: Path, replace_notes: bool
) -> None:
    from secrets_broker.vault.gateway import credential_path, data_path

    client_id, credential_id, sub, body = _rotation(world, notes="door code 1234")
    if replace_notes:
        body["notes"] = "door code 9876"
    path = data_path(credential_path(client_id, credential_id))
    before = len(vault_ops(devstack_dir, path))

    r = world.broker.put(f"/v1/credentials/{credential_id}/secret", headers=world.tech(sub), json=body)

    assert r.status_code == 200, r.text
    # The API role's policy allows `patch`, and rotation neither reads (plaintext) nor rewrites the secret.
    assert vault_ops(devstack_dir, path)[before:] == [VaultOp(operation="patch", wrapped=False)]
    stored = _stored(gateway, vault_addr, client_id, credential_id)
    notes = "door code 9876" if replace_notes else "door code 1234"
    assert stored["data"] == {"secret": body["secret"], "notes": notes}
    assert stored["metadata"]["version"] == _row(engine, credential_id).vault_version == 2
    assert [d["notes_replaced"] for d in _rotated_entries(engine, credential_id)] == [replace_notes]


class _Observing:
    """The real gateway; at the Vault write of a rotation it notes what another connection sees."""

    def __init__(self, real: Any, engine: Any, credential_id: uuid.UUID, *, fail: Exception | None = None) -> None:
        self._real = real
        self._engine = engine
        self._credential_id = credential_id
        self._fail = fail
        self.seen: list[tuple[int, bool]] = []

    def _observe(self) -> None:
        from secrets_broker.audit.service import CHAIN_LOCK_KEY

        with self._engine.begin() as conn:
            free = conn.execute(
                text("SELECT pg_try_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": CHAIN_LOCK_KEY}
            ).scalar_one()
        self.seen.append((len(_rotated_entries(self._engine, self._credential_id)), bool(free)))
        if self._fail is not None:
            raise self._fail

    def patch_secret(self, path: str, fields: dict[str, str]) -> int:
        self._observe()
        return int(self._real.patch_secret(path, fields))

    def write_version(self, path: str, data: dict[str, str]) -> int:
        # The write the rotation made before it used a PATCH.
        self._observe()
        return int(self._real.write_version(path, data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_rotation_is_audited_before_vault_writes_and_without_the_chain_lock(
    world: World, broker_app: Any, engine: Any, gateway: Any
) -> None:
    from secrets_broker.deps import gateway_dep

    _, credential_id, sub, body = _rotation(world)
    observing = _Observing(gateway, engine, credential_id)
    broker_app.dependency_overrides[gateway_dep] = lambda: observing

    r = world.broker.put(f"/v1/credentials/{credential_id}/secret", headers=world.tech(sub), json=body)

    assert r.status_code == 200, r.text
    # When Vault is asked for the new version, its entry is committed (no failed COMMIT can leave an
    # unaudited version) and the chain's lock is free (other audited requests are not held up by Vault).
    assert observing.seen == [(1, True)]
    assert [d["stage"] for d in _rotated_entries(engine, credential_id)] == ["authorized"]


@pytest.mark.parametrize(
    ("error", "written"),
    [("VaultRejected", "no"), ("VaultUnreachable", "unknown")],
)
def test_a_rotation_vault_fails_is_audited_as_failed_and_changes_nothing(
    world: World, broker_app: Any, engine: Any, gateway: Any, vault_addr: str, error: str, written: str
) -> None:
    from secrets_broker.deps import gateway_dep
    from secrets_broker.vault import errors

    client_id, credential_id, sub, body = _rotation(world, secret="the-old-secret")
    before = _row(engine, credential_id)
    failing = _Observing(gateway, engine, credential_id, fail=getattr(errors, error)("Vault said no"))
    broker_app.dependency_overrides[gateway_dep] = lambda: failing

    r = world.broker.put(f"/v1/credentials/{credential_id}/secret", headers=world.tech(sub), json=body)

    assert (r.status_code, r.json()["error"]) == (503, "unavailable")
    assert body["secret"] not in r.text
    entries = _rotated_entries(engine, credential_id)
    assert [(d["stage"], d.get("written"), d.get("error")) for d in entries] == [
        ("authorized", None, None),
        ("failed", written, error),
    ]
    after = _row(engine, credential_id)
    assert (after.vault_version, after.updated_at) == (before.vault_version, before.updated_at)
    stored = _stored(gateway, vault_addr, client_id, credential_id)
    assert (stored["data"]["secret"], stored["metadata"]["version"]) == ("the-old-secret", 1)


class _FailingWrite:
    """The real gateway, except that the Vault write of a new credential fails (before or after landing)."""

    def __init__(self, real: Any, *, land_first: bool) -> None:
        self._real = real
        self._land_first = land_first

    def create_secret(self, path: str, data: dict[str, str]) -> int:
        from secrets_broker.vault.errors import VaultUnreachable

        if self._land_first:
            self._real.create_secret(path, data)
        raise VaultUnreachable("Vault timed out")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.mark.parametrize("land_first", [False, True], ids=["write-lost", "write-landed"])
def test_create_dying_at_the_vault_write_leaves_no_active_row_without_a_secret(
    world: World, broker_app: Any, engine: Any, gateway: Any, land_first: bool
) -> None:
    from secrets_broker.credentials.service import sweep_pending
    from secrets_broker.deps import gateway_dep

    client_id = world.new_client()
    broker_app.dependency_overrides[gateway_dep] = lambda: _FailingWrite(gateway, land_first=land_first)

    r = world.broker.post("/v1/credentials", headers=world.admin, json=_body(client_id))

    assert r.status_code == 503
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, status FROM credentials WHERE client_id = :c"), {"c": client_id}).all()
    assert [row.status for row in rows] == ["pending"]
    pending_id = rows[0].id
    # A pending row is invisible and unreleasable.
    assert world.broker.get(f"/v1/credentials/{pending_id}", headers=world.admin).status_code == 404
    assert world.broker.get("/v1/credentials", params={"client_id": str(client_id)}, headers=world.admin).json()[
        "items"
    ] == []

    counts = sweep_pending(engine, gateway=gateway, grace_s=0)

    row = _row(engine, pending_id)
    if land_first:
        assert counts["activated"] >= 1
        assert row is not None and row.status == "active"
        with engine.connect() as conn:
            audit = conn.execute(
                text("SELECT canonical FROM audit_entries WHERE credential_id = :i AND action = 'credential.created'"),
                {"i": pending_id},
            ).scalar_one()
        assert '"completed_by":"sweeper"' in audit
    else:
        assert counts["removed"] >= 1
        assert row is None


def test_sweeper_leaves_young_pending_rows_alone(world: World, broker_app: Any, engine: Any, gateway: Any) -> None:
    from secrets_broker.credentials.service import sweep_pending
    from secrets_broker.deps import gateway_dep

    client_id = world.new_client()
    broker_app.dependency_overrides[gateway_dep] = lambda: _FailingWrite(gateway, land_first=False)
    world.broker.post("/v1/credentials", headers=world.admin, json=_body(client_id))
    sweep_pending(engine, gateway=gateway, grace_s=3600)
    with engine.connect() as conn:
        statuses = conn.execute(text("SELECT status FROM credentials WHERE client_id = :c"), {"c": client_id}).all()
    assert [s.status for s in statuses] == ["pending"]
