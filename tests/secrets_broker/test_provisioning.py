"""Provisioning at the broker, against the real intake, vendor_sync registry and OpenBao.

- `POST /internal/disclosures`: client information vendor_sync is about to send a vendor is ledgered
  on the approval naming that vendor, once per idempotency key; every refusal names its rule, is
  audited and ledgers nothing.
- `POST /internal/service-releases` with `task_id`: the task is read live at intake.
- `POST /v1/credentials` as vendor_sync: what it created at a vendor, for the task it holds.

Each scene is the real flow: a client_user's spam-filter request (intake's expansion scopes the task
to the client's MailChannels account and asks one approval naming that vendor), the client_admin's
decision, and vendor_sync's claim (`POST /internal/tasks/{id}/claim`).
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from broker_helpers import MintingSource, World, audit_rows, lookup_at_vault, release_row, unwrap_at_vault
from sqlalchemy import text

from mspkit.inbox import apply_once

VENDOR_SYNC = "svc:vendor_sync"
SPAM_FILTER_CATEGORIES = ["contact_info", "domain", "mail_routing"]


# --- setting the scene ----------------------------------------------------------------------------


def authorization(world: World, task_id: uuid.UUID) -> dict[str, Any]:
    """Intake's authorization view of the task, as the broker reads it."""
    r = world.intake.get(
        f"/internal/tasks/{task_id}/authorization", headers=world.auth("service", "svc:secrets_broker", aud=["intake"])
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def claim(world: World, task_id: uuid.UUID) -> None:
    """vendor_sync claims the task: `in_progress`, assigned to itself."""
    r = world.intake.post(f"/internal/tasks/{task_id}/claim", headers=world.vendor_sync_at_intake)
    assert r.status_code == 200, r.text
    view = authorization(world, task_id)
    assert (view["status"], view["assignee"]) == ("in_progress", VENDOR_SYNC)


def report_step(world: World, task_id: uuid.UUID, status: str) -> None:
    """vendor_sync reports a worker step (its last success moves the task to `done`, a failure `on_hold`)."""
    r = world.intake.post(
        f"/internal/tasks/{task_id}/steps",
        headers=world.vendor_sync_at_intake,
        json={"name": "provision_domain", "status": status, "human": False, "idempotency_key": uuid.uuid4().hex},
    )
    assert r.status_code == 201, r.text


def ask_approval(world: World, task_id: uuid.UUID, *, vendor_id: uuid.UUID | None) -> uuid.UUID:
    """An approval asked during the work (as admin), naming a vendor or not."""
    recipient: dict[str, Any] = {
        "name": "Another recipient",
        "contact_email": "someone@recipient.example",
        "party_category": "provider_for_msp",
    }
    if vendor_id is not None:
        recipient["vendor_id"] = str(vendor_id)
    r = world.intake.post(
        f"/v1/tasks/{task_id}/approvals",
        headers=world.admin,
        json={"recipient": recipient, "information_categories": SPAM_FILTER_CATEGORIES, "expires_in_s": 3600},
    )
    assert r.status_code == 201, r.text
    return uuid.UUID(r.json()["id"])


def spam_filter_request(world: World, client_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """A client_user's spam-filter request; (its task, the approval its expansion asked for)."""
    domain = f"d{uuid.uuid4().hex[:10]}.example.com"
    r = world.intake.post(
        "/v1/requests",
        headers={**world.auth("client_user", "requester", client_id), "Idempotency-Key": uuid.uuid4().hex},
        json={"type": "spam_filter_setup", "domain": domain, "downstream_hosts": [f"mail.{domain}"]},
    )
    assert r.status_code == 201, r.text
    [task_id] = r.json()["task_ids"]
    [approval] = authorization(world, uuid.UUID(task_id))["approvals"]
    return uuid.UUID(task_id), uuid.UUID(approval["id"])


class Scene:
    """A client's MailChannels account and a spam-filter request's task, approved and claimed by vendor_sync."""

    def __init__(self, world: World, *, decision: str | None = "approved", claimed: bool = True):
        self.world = world
        self.client_id = world.new_client()
        self.vendor_id = world.new_vendor(kind="spam_filter", adapter="mailchannels")
        self.account_id = world.new_vendor_account(self.client_id, vendor_id=self.vendor_id)
        self.task_id, self.approval_id = spam_filter_request(world, self.client_id)
        view = authorization(world, self.task_id)
        # What expansion asked for: the task scoped to the account, one approval naming its vendor.
        assert [str(self.account_id)] == view["scope"]["vendor_account_ids"]
        assert view["approvals"][0]["recipient"]["vendor_id"] == str(self.vendor_id)
        if decision is not None:
            world.decide_approval(self.approval_id, self.client_id, decision)
        if claimed:
            claim(world, self.task_id)

    @property
    def vendor_name(self) -> str:
        """The approval's recipient: the vendor, by its registry name."""
        return str(authorization(self.world, self.task_id)["approvals"][0]["recipient"]["name"])

    def body(self, **overrides: Any) -> dict[str, Any]:
        """A disclosure of the domain and its mail routing to the approval's vendor."""
        body: dict[str, Any] = {
            "approval_id": str(self.approval_id),
            "task_id": str(self.task_id),
            "vendor_id": str(self.vendor_id),
            "information_categories": ["domain", "mail_routing"],
            "idempotency_key": f"disclose-{uuid.uuid4().hex}",
        }
        body.update(overrides)
        return body

    def disclose(self, headers: dict[str, str] | None = None, **overrides: Any) -> Any:
        """POST /internal/disclosures (as vendor_sync unless told otherwise)."""
        return self.world.broker.post(
            "/internal/disclosures", headers=headers or self.world.vendor_sync, json=self.body(**overrides)
        )


def ledger_rows(engine: Any, task_id: uuid.UUID) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(text("SELECT * FROM disclosures WHERE task_id = :t ORDER BY created_at"), {"t": task_id})
        )


def disclosure_audit(engine: Any, task_id: uuid.UUID) -> list[tuple[str, str | None, str]]:
    return [
        (row.action, row.rule, row.actor)
        for row in audit_rows(engine, task_id=task_id)
        if row.action.startswith("disclosure.")
    ]


def assert_denied(r: Any, rule: str) -> None:
    assert r.status_code == 403, r.text
    assert r.json() == {**r.json(), "error": "disclosure_denied", "rule": rule}
    assert "id" not in r.json()


# --- information disclosures ----------------------------------------------------------------------


def test_a_disclosure_on_the_vendors_approval_is_ledgered_and_audited(world: World, engine: Any) -> None:
    scene = Scene(world)

    r = scene.disclose(information_categories=["mail_routing", "domain", "domain"])

    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == body["disclosure_id"]
    assert body == {
        **body,
        "kind": "information",
        "client_id": str(scene.client_id),
        "task_id": str(scene.task_id),
        "approval_id": str(scene.approval_id),
        "vendor_id": str(scene.vendor_id),
        "release_id": None,
        "credential_id": None,
        "party_category": "provider_for_msp",
        "recipient_name": scene.vendor_name,
        "information_categories": ["domain", "mail_routing"],
        "disclosed_by": VENDOR_SYNC,
    }
    [row] = ledger_rows(engine, scene.task_id)
    assert (str(row.id), row.kind, row.release_id, row.credential_id) == (body["id"], "information", None, None)
    [entry] = [a for a in audit_rows(engine, task_id=scene.task_id) if a.action.startswith("disclosure.")]
    assert (entry.action, entry.actor, entry.rule) == ("disclosure.recorded", VENDOR_SYNC, None)
    details = json.loads(entry.canonical)["details"]
    assert details == {
        **details,
        "disclosure_id": body["id"],
        "approval_id": str(scene.approval_id),
        "vendor_id": str(scene.vendor_id),
        "information_categories": ["domain", "mail_routing"],
    }
    assert world.broker.get("/v1/audit/verify", headers=world.admin).json()["ok"] is True


def test_a_retry_with_the_same_key_gets_the_first_row_and_writes_nothing(
    world: World, engine: Any, broker_app: Any
) -> None:
    scene = Scene(world)
    body = scene.body()
    first = world.broker.post("/internal/disclosures", headers=world.vendor_sync, json=body)
    assert first.status_code == 201, first.text
    audited = len(audit_rows(engine, task_id=scene.task_id))

    again = world.broker.post("/internal/disclosures", headers=world.vendor_sync, json=body)
    # Even once intake is gone: the answer was recorded, nothing is decided again.
    _intake_down(broker_app)
    third = world.broker.post("/internal/disclosures", headers=world.vendor_sync, json=body)

    assert (again.status_code, again.json()) == (200, first.json())
    assert (third.status_code, third.json()) == (200, first.json())
    assert len(ledger_rows(engine, scene.task_id)) == 1
    assert len(audit_rows(engine, task_id=scene.task_id)) == audited
    # The same key for another disclosure is a conflict, and writes nothing either.
    other = world.broker.post(
        "/internal/disclosures", headers=world.vendor_sync, json={**body, "information_categories": ["contact_info"]}
    )
    assert other.status_code == 409, other.text
    assert other.json() == {**other.json(), "error": "conflict", "field": "idempotency_key"}
    assert len(ledger_rows(engine, scene.task_id)) == 1


def test_a_new_key_records_a_new_disclosure(world: World, engine: Any) -> None:
    scene = Scene(world)

    assert scene.disclose().status_code == 201
    assert scene.disclose(information_categories=["contact_info"]).status_code == 201

    assert [row.information_categories for row in ledger_rows(engine, scene.task_id)] == [
        ["domain", "mail_routing"],
        ["contact_info"],
    ]


@pytest.mark.parametrize("decision", [None, "rejected"])
def test_an_undecided_or_rejected_approval_discloses_nothing(world: World, engine: Any, decision: str | None) -> None:
    # The request's own approval: its task waits (pending) or is rejected, and vendor_sync never holds it.
    waiting = Scene(world, decision=decision, claimed=False)
    assert authorization(world, waiting.task_id)["status"] == ("awaiting_approval" if decision is None else "rejected")
    assert_denied(waiting.disclose(), "caller_not_assignee")
    # An approval asked during the work, on a task vendor_sync holds: the approval itself refuses.
    scene = Scene(world)
    later = ask_approval(world, scene.task_id, vendor_id=scene.vendor_id)
    if decision is not None:
        world.decide_approval(later, scene.client_id, decision)

    assert_denied(scene.disclose(approval_id=str(later)), "approval_not_approved")

    for task_id, rule in ((waiting.task_id, "caller_not_assignee"), (scene.task_id, "approval_not_approved")):
        assert ledger_rows(engine, task_id) == []
        assert disclosure_audit(engine, task_id) == [("disclosure.denied", rule, VENDOR_SYNC)]


def test_an_expired_approval_discloses_nothing(world: World, engine: Any, admin_engine: Any) -> None:
    scene = Scene(world)
    with admin_engine.begin() as conn:
        conn.execute(
            text("UPDATE intake.approvals SET expires_at = now() - interval '1 minute' WHERE id = :i"),
            {"i": scene.approval_id},
        )

    assert_denied(scene.disclose(), "approval_expired")
    assert ledger_rows(engine, scene.task_id) == []
    assert disclosure_audit(engine, scene.task_id) == [("disclosure.denied", "approval_expired", VENDOR_SYNC)]


def test_another_tasks_approval_discloses_nothing(world: World, engine: Any) -> None:
    scene = Scene(world)
    # The same client and vendor, approved, but asked by another request's task.
    _, theirs = spam_filter_request(world, scene.client_id)
    world.decide_approval(theirs, scene.client_id, "approved")

    assert_denied(scene.disclose(approval_id=str(theirs)), "approval_not_for_task")
    assert_denied(scene.disclose(approval_id=str(uuid.uuid4())), "approval_not_for_task")
    assert ledger_rows(engine, scene.task_id) == []
    assert [rule for _, rule, _ in disclosure_audit(engine, scene.task_id)] == ["approval_not_for_task"] * 2


def test_another_vendor_or_an_approval_naming_no_vendor_discloses_nothing(world: World, engine: Any) -> None:
    scene = Scene(world)
    another_vendor = world.new_vendor(kind="spam_filter")
    assert_denied(scene.disclose(vendor_id=str(another_vendor)), "approval_not_for_vendor")

    no_vendor = ask_approval(world, scene.task_id, vendor_id=None)
    world.decide_approval(no_vendor, scene.client_id, "approved")
    assert authorization(world, scene.task_id)["approvals"][-1]["recipient"]["vendor_id"] is None
    assert_denied(scene.disclose(approval_id=str(no_vendor)), "approval_not_for_vendor")

    assert ledger_rows(engine, scene.task_id) == []
    assert [rule for _, rule, _ in disclosure_audit(engine, scene.task_id)] == ["approval_not_for_vendor"] * 2


def test_categories_the_client_did_not_approve_disclose_nothing(world: World, engine: Any) -> None:
    scene = Scene(world)

    assert_denied(scene.disclose(information_categories=["domain", "service_address"]), "categories_not_approved")
    assert_denied(scene.disclose(information_categories=["billing"]), "categories_not_approved")
    assert ledger_rows(engine, scene.task_id) == []
    # `credentials` leave only through a release: not a category this route takes.
    r = scene.disclose(information_categories=["credentials"])
    assert (r.status_code, r.json()["error"]) == (422, "validation_error")
    assert r.json()["field"].startswith("information_categories")


def test_a_task_vendor_sync_does_not_hold_in_progress_discloses_nothing(world: World, engine: Any) -> None:
    unclaimed = Scene(world, claimed=False)
    assert authorization(world, unclaimed.task_id)["status"] == "ready"
    assert_denied(unclaimed.disclose(), "caller_not_assignee")
    # A failed step puts the task on hold, unassigned.
    stopped = Scene(world)
    report_step(world, stopped.task_id, "failed")
    assert_denied(stopped.disclose(), "caller_not_assignee")
    # The last success moves it to done; vendor_sync stays its assignee.
    finished = Scene(world)
    report_step(world, finished.task_id, "succeeded")
    assert (authorization(world, finished.task_id)["status"]) == "done"
    assert_denied(finished.disclose(), "task_not_in_progress")

    for scene in (unclaimed, stopped, finished):
        assert ledger_rows(engine, scene.task_id) == []
        assert len(disclosure_audit(engine, scene.task_id)) == 1


def test_an_inactive_client_discloses_nothing(world: World, engine: Any, admin_engine: Any) -> None:
    # Intake cancels a client's open tasks when it leaves `active`; the client rule is shown with the
    # status alone changed, then the real change.
    scene = Scene(world)
    with admin_engine.begin() as conn:
        conn.execute(text("UPDATE intake.clients SET status = 'inactive' WHERE id = :c"), {"c": scene.client_id})
    assert_denied(scene.disclose(), "client_not_active")
    with admin_engine.begin() as conn:
        conn.execute(text("UPDATE intake.clients SET status = 'active' WHERE id = :c"), {"c": scene.client_id})

    r = world.intake.patch(f"/v1/clients/{scene.client_id}", headers=world.admin, json={"status": "inactive"})
    assert r.status_code == 200, r.text
    assert_denied(scene.disclose(), "task_not_in_progress")
    assert ledger_rows(engine, scene.task_id) == []


def test_only_vendor_sync_may_record_a_disclosure(world: World, engine: Any) -> None:
    scene = Scene(world)
    before = audit_rows(engine, task_id=scene.task_id)

    for headers in (
        world.auth("service", "svc:intake"),
        world.auth("service", "svc:secrets_broker"),
        world.tech("tech-1"),
        world.admin,
        world.auth("client_admin", "boss", scene.client_id),
    ):
        r = scene.disclose(headers=headers)
        assert (r.status_code, r.json()["error"]) == (403, "forbidden"), r.text

    assert ledger_rows(engine, scene.task_id) == []
    assert audit_rows(engine, task_id=scene.task_id) == before


def _intake_down(broker_app: Any) -> None:
    from mspctl.ports import free_port
    from mspkit.service_tokens import token_source
    from secrets_broker.deps import intake_dep
    from secrets_broker.intake_client import IntakeClient
    from secrets_broker.settings import get_settings

    dead = IntakeClient(base_url=f"http://127.0.0.1:{free_port()}", tokens=token_source(get_settings()))
    broker_app.dependency_overrides[intake_dep] = lambda: dead


def test_fails_closed_when_intake_does_not_answer(world: World, engine: Any, broker_app: Any) -> None:
    scene = Scene(world)
    before = audit_rows(engine, task_id=scene.task_id)
    _intake_down(broker_app)

    r = scene.disclose()

    assert r.status_code == 503, r.text
    assert r.json()["error"] == "unavailable"
    assert ledger_rows(engine, scene.task_id) == []
    assert audit_rows(engine, task_id=scene.task_id) == before


def test_a_task_intake_does_not_know_is_404_and_writes_nothing(world: World, engine: Any) -> None:
    scene = Scene(world)
    unknown = uuid.uuid4()

    r = scene.disclose(task_id=str(unknown))

    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    assert ledger_rows(engine, unknown) == [] and audit_rows(engine, task_id=unknown) == []


def test_the_ledger_shows_information_disclosures_beside_credential_releases(world: World) -> None:
    scene = Scene(world)
    recorded = scene.disclose().json()
    # A third party's credential release of the same client, ledgered in the same shape.
    credential_id, _ = world.new_credential(scene.client_id)
    technician = f"tech-{uuid.uuid4().hex[:8]}"
    task_id = world.new_task(scene.client_id, assignee=technician, credential_ids=[credential_id])
    contact = f"isp-{uuid.uuid4().hex[:8]}@fibre.example.net"
    approval_id = world.request_approval(
        task_id, credential_ids=[credential_id], categories=["credentials"], contact_email=contact
    )
    world.decide_approval(approval_id, scene.client_id, "approved")
    assert world.release(technician, task_id, credential_id, approval_id=approval_id).status_code == 201

    page = world.broker.get("/v1/disclosures", params={"client_id": str(scene.client_id)}, headers=world.admin)
    own = world.broker.get("/v1/disclosures", headers=world.auth("client_admin", "boss", scene.client_id))
    exported = world.broker.get(
        "/v1/disclosures", params={"client_id": str(scene.client_id), "format": "csv"}, headers=world.admin
    )

    assert page.status_code == 200 and own.status_code == 200 and exported.status_code == 200
    items = page.json()["items"]
    assert own.json()["items"] == items
    assert [(i["kind"], i["task_id"]) for i in items] == [
        ("information", str(scene.task_id)),
        ("credential", str(task_id)),
    ]
    information, credential = items
    assert information == {k: v for k, v in recorded.items() if k != "id"}
    assert credential["credential_id"] == str(credential_id) and credential["release_id"] is not None
    assert credential["vendor_id"] is None  # that approval named no vendor
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["kind"], r["vendor_id"], r["release_id"], r["credential_id"]) for r in rows] == [
        ("information", str(scene.vendor_id), "", ""),
        ("credential", "", credential["release_id"], str(credential_id)),
    ]
    assert rows[0]["information_categories"] == "domain;mail_routing"
    assert rows[0]["approval_id"] == str(scene.approval_id) and rows[0]["disclosed_by"] == VENDOR_SYNC


# --- service releases for a task --------------------------------------------------------------------


def _api_key(world: World, scene: Scene, *, account_id: uuid.UUID | None = None) -> tuple[uuid.UUID, str]:
    return world.new_credential(
        scene.client_id, kind="api_key", category="spam_filter", vendor_account_id=account_id or scene.account_id
    )


def _service_release(world: World, credential_id: Any, account_id: Any, task_id: Any) -> Any:
    return world.broker.post(
        "/internal/service-releases",
        headers=world.vendor_sync,
        json={
            "credential_id": str(credential_id),
            "vendor_account_id": str(account_id),
            "job_id": "provision-1",
            "task_id": str(task_id),
        },
    )


def _releases(engine: Any, credential_id: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT * FROM releases WHERE credential_id = :c ORDER BY created_at"), {"c": credential_id}
            )
        )


def test_a_service_release_for_the_task_vendor_sync_holds_records_the_task(
    world: World, engine: Any, vault_addr: str
) -> None:
    scene = Scene(world)
    credential_id, secret = _api_key(world, scene)

    r = _service_release(world, credential_id, scene.account_id, scene.task_id)

    assert r.status_code == 201, r.text
    assert unwrap_at_vault(vault_addr, r.json()["wrap_token"]).json()["data"]["data"]["secret"] == secret
    [row] = _releases(engine, credential_id)
    assert (row.recipient_type, row.technician, row.task_id) == ("service", VENDOR_SYNC, scene.task_id)
    assert row.auth_updated_at is not None
    [granted] = [a for a in audit_rows(engine, credential_id=credential_id) if a.action.startswith("service_release")]
    assert (granted.action, json.loads(granted.canonical)["task_id"]) == ("service_release.granted", str(scene.task_id))
    listed = world.broker.get("/v1/releases", params={"credential_id": str(credential_id)}, headers=world.admin)
    assert [i["task_id"] for i in listed.json()["items"]] == [str(scene.task_id)]


def test_service_releases_for_a_task_are_refused_naming_the_rule(world: World, engine: Any) -> None:
    scene = Scene(world)
    credential_id, _ = _api_key(world, scene)
    # An account of the client's that the task's scope does not name.
    outside = world.new_vendor_account(scene.client_id, kind="spam_filter")
    outside_key, _ = _api_key(world, scene, account_id=outside)
    unclaimed, _ = spam_filter_request(world, scene.client_id)  # awaiting its approval
    other = Scene(world)  # another client's task, claimed
    done = Scene(world)
    report_step(world, done.task_id, "succeeded")

    cases = [
        (credential_id, scene.account_id, unclaimed, "caller_not_assignee"),
        (credential_id, scene.account_id, done.task_id, "task_not_in_progress"),
        (credential_id, scene.account_id, other.task_id, "client_mismatch"),
        (outside_key, outside, scene.task_id, "out_of_scope"),
    ]
    for credential, account, task_id, rule in cases:
        r = _service_release(world, credential, account, task_id)
        assert r.status_code == 403, r.text
        assert r.json() == {**r.json(), "error": "release_denied", "rule": rule}
        assert "wrap_token" not in r.json()
        denied = [a for a in audit_rows(engine, credential_id=credential) if a.action == "service_release.denied"][-1]
        assert (denied.rule, json.loads(denied.canonical)["task_id"]) == (rule, str(task_id))
    unknown = _service_release(world, credential_id, scene.account_id, uuid.uuid4())
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")
    assert _releases(engine, credential_id) == [] and _releases(engine, outside_key) == []
    # Without a task, the sync's release stands as before.
    sync = world.broker.post(
        "/internal/service-releases",
        headers=world.vendor_sync,
        json={"credential_id": str(credential_id), "vendor_account_id": str(scene.account_id), "job_id": "sync-1"},
    )
    assert sync.status_code == 201, sync.text
    assert [r.task_id for r in _releases(engine, credential_id)] == [None]


@pytest.fixture(scope="module")
def revoker(devstack_dir: Path, vault_addr: str) -> Iterator[Any]:
    """A gateway logged in as the revoker role, as the broker worker is."""
    from secrets_broker.vault.gateway import VaultGateway

    gateway = VaultGateway(
        addr=vault_addr, role="msp-broker-revoker", source=MintingSource(devstack_dir, "msp-broker-revoker")
    )
    gateway.login()
    yield gateway


def _consume(
    engine: Any, admin_engine: Any, revoker: Any, type_: str, task_id: uuid.UUID, handler: Callable[..., Any]
) -> None:
    """What the broker worker does with intake's latest event of this type for the task."""
    from secrets_broker.db import KIT
    from secrets_broker.revocation.consumers import CONSUMER
    from secrets_broker.revocation.service import carry_out

    with admin_engine.connect() as conn:
        envelope = dict(
            conn.execute(
                text(
                    "SELECT envelope FROM intake.outbox WHERE type = :t AND envelope->>'aggregate_id' = :a "
                    "ORDER BY id DESC LIMIT 1"
                ),
                {"t": type_, "a": str(task_id)},
            ).scalar_one()
        )
    queued: list[uuid.UUID] = []
    assert apply_once(engine, KIT, CONSUMER, envelope, lambda s, e: queued.extend(handler(s, e)))
    carry_out(engine, gateway=revoker, pending_ids=queued, backoff_max_s=5)


def test_the_task_leaving_in_progress_revokes_its_service_release(
    world: World, engine: Any, admin_engine: Any, revoker: Any, vault_addr: str
) -> None:
    from secrets_broker.revocation.consumers import on_task_status_changed

    scene = Scene(world)
    credential_id, _ = _api_key(world, scene)
    issued = _service_release(world, credential_id, scene.account_id, scene.task_id)
    assert issued.status_code == 201, issued.text
    token = issued.json()["wrap_token"]

    world.transition(scene.task_id, "cancelled", world.admin)
    _consume(engine, admin_engine, revoker, "task.status_changed", scene.task_id, on_task_status_changed)

    [row] = _releases(engine, credential_id)
    assert (release_row(engine, row.id).status, row.task_id) == ("revoked", scene.task_id)
    assert lookup_at_vault(vault_addr, token).status_code == 400
    # And the view the broker saw before is stale now: a new release is refused.
    refused = _service_release(world, credential_id, scene.account_id, scene.task_id)
    assert (refused.status_code, refused.json()["rule"]) == (403, "task_not_in_progress")


def test_narrowing_the_task_to_other_accounts_revokes_its_service_release(
    world: World, engine: Any, admin_engine: Any, revoker: Any, vault_addr: str
) -> None:
    from secrets_broker.revocation.consumers import on_task_scope_changed

    scene = Scene(world)
    credential_id, _ = _api_key(world, scene)
    token = _service_release(world, credential_id, scene.account_id, scene.task_id).json()["wrap_token"]

    world.change_scope(scene.task_id, remove={"vendor_account_ids": [str(scene.account_id)]})
    _consume(engine, admin_engine, revoker, "task.scope_changed", scene.task_id, on_task_scope_changed)

    [row] = _releases(engine, credential_id)
    assert (row.status, row.closed_reason) == ("revoked", "task_scope_narrowed")
    assert lookup_at_vault(vault_addr, token).status_code == 400


# --- credentials vendor_sync creates for a task -------------------------------------------------------


def _provisioned(scene: Scene, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_id": str(scene.client_id),
        "vendor_account_id": str(scene.account_id),
        "kind": "api_key",
        "owner": "msp",
        "category": "spam_filter",
        "name": "MailChannels API key",
        "username": "provisioning",
        "secret": f"mc-{uuid.uuid4().hex}",
        "task_id": str(scene.task_id),
    }
    body.update(overrides)
    return body


def _credentials_of(engine: Any, client_id: uuid.UUID) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT * FROM credentials WHERE client_id = :c"), {"c": client_id}))


@pytest.mark.parametrize("kind", ["api_key", "password"])
def test_vendor_sync_stores_what_it_created_for_its_task(
    world: World, engine: Any, gateway: Any, vault_addr: str, kind: str
) -> None:
    scene = Scene(world)
    body = _provisioned(scene, kind=kind)

    r = world.broker.post("/v1/credentials", headers=world.vendor_sync, json=body)

    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["task_id"], created["created_by"], created["kind"]) == (str(scene.task_id), VENDOR_SYNC, kind)
    assert body["secret"] not in r.text
    # Intake reads it to check the credential was created for the task it adds it to.
    internal = world.broker.get(f"/internal/credentials/{created['id']}", headers=world.auth("service", "svc:intake"))
    assert (internal.json()["task_id"], internal.json()["created_by"]) == (str(scene.task_id), VENDOR_SYNC)
    admin_view = world.broker.get(f"/v1/credentials/{created['id']}", headers=world.admin).json()
    assert admin_view["task_id"] == str(scene.task_id)
    [entry] = audit_rows(engine, credential_id=uuid.UUID(created["id"]))
    assert (entry.action, entry.actor, json.loads(entry.canonical)["task_id"]) == (
        "credential.created",
        VENDOR_SYNC,
        str(scene.task_id),
    )
    from secrets_broker.vault.gateway import credential_path

    wrap = gateway.wrapped_read(credential_path(scene.client_id, uuid.UUID(created["id"])), ttl_s=30)
    assert unwrap_at_vault(vault_addr, wrap.token).json()["data"]["data"]["secret"] == body["secret"]
    # A person's credential names no task.
    by_admin = world.broker.post("/v1/credentials", headers=world.admin, json={**body, "task_id": None})
    assert (by_admin.status_code, by_admin.json()["task_id"], by_admin.json()["created_by"]) == (201, None, "admin-1")


def test_vendor_sync_may_not_store_for_a_task_it_does_not_hold(world: World, engine: Any) -> None:
    scene = Scene(world)
    unclaimed, _ = spam_filter_request(world, scene.client_id)  # awaiting its approval
    other = Scene(world)
    outside = world.new_vendor_account(scene.client_id, kind="spam_filter")
    done = Scene(world)
    report_step(world, done.task_id, "succeeded")

    cases = [
        (_provisioned(scene, task_id=str(unclaimed)), "caller_not_assignee"),
        (_provisioned(scene, task_id=str(other.task_id)), "client_mismatch"),
        (_provisioned(scene, vendor_account_id=str(outside)), "out_of_scope"),
        (_provisioned(scene, task_id=str(done.task_id)), "task_not_in_progress"),
    ]
    for body, rule in cases:
        r = world.broker.post("/v1/credentials", headers=world.vendor_sync, json=body)
        assert r.status_code == 403, r.text
        assert r.json() == {**r.json(), "error": "forbidden", "field": "task_id", "rule": rule}
        assert body["secret"] not in r.text

    unknown = world.broker.post(
        "/v1/credentials", headers=world.vendor_sync, json=_provisioned(scene, task_id=str(uuid.uuid4()))
    )
    assert (unknown.status_code, unknown.json()["field"]) == (422, "task_id")
    missing = world.broker.post("/v1/credentials", headers=world.vendor_sync, json=_provisioned(scene, task_id=None))
    assert (missing.status_code, missing.json()["field"]) == (422, "task_id")
    # A person never names a task, even an admin.
    for headers in (world.admin, world.auth("client_admin", "boss", scene.client_id)):
        person = world.broker.post("/v1/credentials", headers=headers, json=_provisioned(scene, owner="client"))
        assert person.status_code == 403, person.text
        assert person.json() == {**person.json(), "error": "forbidden", "field": "task_id"}

    assert _credentials_of(engine, scene.client_id) == []
    assert audit_rows(engine, client_id=scene.client_id) == []
