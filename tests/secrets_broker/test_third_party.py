"""Releases to third parties: approvals from the real intake, the mailed link, the disclosure ledger."""

from __future__ import annotations

import base64
import csv
import io
import re
import uuid
from typing import Any

import pytest
from broker_helpers import World, lookup_at_vault, unwrap_at_vault
from sqlalchemy import text


def _third_party_setup(world: World, *, categories: list[str] | None = None, name_credential: bool = True) -> Any:
    client_id, credential_id, secret, task_id, sub = world.ready()
    contact = f"isp-{uuid.uuid4().hex[:8]}@fibre.example.net"
    approval_id = world.request_approval(
        task_id,
        credential_ids=[credential_id] if name_credential else [],
        categories=categories or ["credentials", "contact_info"],
        contact_email=contact,
    )
    return client_id, credential_id, secret, task_id, sub, approval_id, contact


def _ledger_rows(engine: Any, release_id: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT * FROM disclosures WHERE release_id = :r"), {"r": release_id}))


def test_valid_approval_mails_a_link_and_writes_one_ledger_row(world: World, vault_addr: str, engine: Any) -> None:
    client_id, credential_id, secret, task_id, sub, approval_id, contact = _third_party_setup(world)
    world.decide_approval(approval_id, client_id, "approved")

    r = world.release(sub, task_id, credential_id, approval_id=approval_id)

    assert r.status_code == 201, r.text
    body = r.json()
    # The technician never sees the third party's token.
    assert body["wrap_token"] is None
    assert body["wrap_ttl"] == 24 * 3600
    release_id = body["release_id"]

    mails = world.mails_to(contact)
    assert len(mails) == 1
    raw = mails[0].as_string()
    text_body = mails[0].get_content()
    for form in (secret, base64.b64encode(secret.encode()).decode(), secret.encode().hex()):
        assert form not in raw
    links = re.findall(r"(https?://\S+/reveal#(\S+))", text_body)
    assert len(links) == 1
    token = links[0][1]
    # The link carries a live wrapping token for exactly this credential (not consumed here).
    lookup = lookup_at_vault(vault_addr, token)
    assert lookup.status_code == 200
    assert lookup.json()["data"]["creation_path"].endswith(f"/credentials/{credential_id}")

    rows = _ledger_rows(engine, release_id)
    assert len(rows) == 1
    assert rows[0].party_category == "provider_for_client"
    assert rows[0].approval_id == approval_id
    assert rows[0].recipient_contact_email == contact

    page = world.broker.get("/v1/disclosures", params={"client_id": str(client_id)}, headers=world.admin).json()
    assert [(i["release_id"], i["party_category"], i["approval_id"]) for i in page["items"]] == [
        (release_id, "provider_for_client", str(approval_id))
    ]
    assert sorted(page["items"][0]["information_categories"]) == ["contact_info", "credentials"]
    exported = world.broker.get(
        "/v1/disclosures", params={"client_id": str(client_id), "format": "csv"}, headers=world.admin
    )
    assert exported.headers["content-type"].startswith("text/csv")
    csv_rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(csv_rows) == 1
    assert csv_rows[0]["release_id"] == release_id
    assert csv_rows[0]["party_category"] == "provider_for_client"
    assert csv_rows[0]["approval_id"] == str(approval_id)
    assert secret not in exported.text

    # The client's own admin sees its ledger (and only it); another client's admin sees nothing of it.
    own = world.broker.get("/v1/disclosures", headers=world.auth("client_admin", "boss", client_id)).json()
    assert [i["release_id"] for i in own["items"]] == [release_id]
    other = world.broker.get(
        "/v1/disclosures", params={"client_id": str(client_id)}, headers=world.auth("client_admin", "x", uuid.uuid4())
    ).json()
    assert other["items"] == []
    assert world.broker.get("/v1/disclosures", headers=world.tech(sub)).status_code == 403

    shown = world.broker.get(f"/v1/releases/{release_id}", headers=world.tech(sub)).json()
    assert shown["recipient"]["type"] == "third_party"
    assert shown["recipient"]["party_category"] == "provider_for_client"
    assert shown["approval_id"] == str(approval_id)
    # Unwrapping the mailed token yields the stored secret (what the reveal page will do).
    assert unwrap_at_vault(vault_addr, token).json()["data"]["data"]["secret"] == secret


def test_pending_approval_is_not_enough(world: World, engine: Any) -> None:
    _, credential_id, _, task_id, sub, approval_id, contact = _third_party_setup(world)

    r = world.release(sub, task_id, credential_id, approval_id=approval_id)

    assert (r.status_code, r.json()["rule"]) == (403, "third_party_not_approved")
    assert world.mails_to(contact) == []


def test_rejected_approval_is_refused(world: World) -> None:
    client_id, credential_id, _, task_id, sub, approval_id, contact = _third_party_setup(world)
    world.decide_approval(approval_id, client_id, "rejected")

    r = world.release(sub, task_id, credential_id, approval_id=approval_id)

    assert (r.status_code, r.json()["rule"]) == (403, "third_party_not_approved")
    assert world.mails_to(contact) == []


def test_expired_approval_is_refused(world: World, admin_engine: Any) -> None:
    client_id, credential_id, _, task_id, sub, approval_id, contact = _third_party_setup(world)
    world.decide_approval(approval_id, client_id, "approved")
    with admin_engine.begin() as conn:
        conn.execute(
            text("UPDATE intake.approvals SET expires_at = now() - interval '1 minute' WHERE id = :i"),
            {"i": approval_id},
        )

    r = world.release(sub, task_id, credential_id, approval_id=approval_id)

    assert (r.status_code, r.json()["rule"]) == (403, "third_party_not_approved")
    assert world.mails_to(contact) == []


@pytest.mark.parametrize(
    ("categories", "name_credential"),
    [(["contact_info", "billing"], True), (["credentials"], False)],
    ids=["without-credentials-category", "not-naming-the-credential"],
)
def test_approval_must_cover_credentials_and_name_this_one(
    world: World, categories: list[str], name_credential: bool
) -> None:
    client_id, credential_id, _, task_id, sub, approval_id, contact = _third_party_setup(
        world, categories=categories, name_credential=name_credential
    )
    world.decide_approval(approval_id, client_id, "approved")

    r = world.release(sub, task_id, credential_id, approval_id=approval_id)

    assert (r.status_code, r.json()["rule"]) == (403, "third_party_not_approved")
    assert world.mails_to(contact) == []


def test_approval_of_another_task_is_refused(world: World) -> None:
    client_id, credential_id, _, _task_id, sub, approval_id, _ = _third_party_setup(world)
    world.decide_approval(approval_id, client_id, "approved")
    other_task = world.new_task(client_id, assignee=sub, credential_ids=[credential_id])

    r = world.release(sub, other_task, credential_id, approval_id=approval_id)

    assert (r.status_code, r.json()["rule"]) == (403, "third_party_not_approved")


def test_mail_failure_fails_closed(world: World, broker_app: Any, engine: Any) -> None:
    from secrets_broker.deps import mailer_dep
    from secrets_broker.mail import Mailer

    client_id, credential_id, _, task_id, sub, approval_id, contact = _third_party_setup(world)
    world.decide_approval(approval_id, client_id, "approved")
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM pending_revocations")).scalar_one()
    # Nothing listens on port 9 of localhost here: the relay is unreachable.
    broker_app.dependency_overrides[mailer_dep] = lambda: Mailer(smtp_url="smtp://127.0.0.1:9", sender="x@y.z")

    r = world.release(sub, task_id, credential_id, approval_id=approval_id)

    assert r.status_code == 503
    assert r.json()["error"] == "unavailable"
    with engine.connect() as conn:
        for table in ("releases", "disclosures"):
            count = conn.execute(text(f"SELECT count(*) FROM {table} WHERE task_id = :t"), {"t": task_id})
            assert count.scalar_one() == 0
        after = conn.execute(text("SELECT count(*) FROM pending_revocations")).scalar_one()
        granted = conn.execute(
            text("SELECT count(*) FROM audit_entries WHERE task_id = :t AND action = 'release.granted'"),
            {"t": task_id},
        ).scalar_one()
    assert after == before + 1
    assert granted == 0
    assert world.mails_to(contact) == []


def test_recipient_without_contact_email_gets_nothing(world: World, admin_engine: Any, engine: Any) -> None:
    client_id, credential_id, _, task_id, sub, approval_id, _ = _third_party_setup(world)
    world.decide_approval(approval_id, client_id, "approved")
    # Approvals made by request expansion may have no contact email.
    with admin_engine.begin() as conn:
        conn.execute(
            text("UPDATE intake.approvals SET recipient_contact_email = NULL WHERE id = :i"), {"i": approval_id}
        )

    r = world.release(sub, task_id, credential_id, approval_id=approval_id)

    assert (r.status_code, r.json()["field"]) == (409, "approval_id")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM releases WHERE task_id = :t"), {"t": task_id}).scalar_one() == 0


def test_no_mail_when_the_release_cannot_be_audited(world: World, admin_engine: Any, engine: Any) -> None:
    client_id, credential_id, _, task_id, sub, approval_id, contact = _third_party_setup(world)
    world.decide_approval(approval_id, client_id, "approved")
    with admin_engine.begin() as conn:
        conn.execute(text("REVOKE INSERT ON secrets_broker.audit_entries FROM secrets_broker"))
    try:
        r = world.release(sub, task_id, credential_id, approval_id=approval_id)
    finally:
        with admin_engine.begin() as conn:
            conn.execute(text("GRANT INSERT ON secrets_broker.audit_entries TO secrets_broker"))

    assert r.status_code == 503
    assert world.mails_to(contact) == []
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM disclosures WHERE task_id = :t"), {"t": task_id})
        assert count.scalar_one() == 0
