"""Releases to third parties: approvals from the real intake, the mailed reveal link, the disclosure ledger.

A third party's release mints no Vault token: the mail carries a reveal code of the broker's own
(stored only as an HMAC), sent after the release committed, through the one mail guard.
"""

from __future__ import annotations

import base64
import csv
import io
import re
import uuid
from typing import Any

import pytest
from broker_helpers import World, audit_rows, lookup_at_vault, release_row
from sqlalchemy import text

CHAIN_LOCK = "secrets_broker:audit-chain"


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
    from mspkit.mailguard import scan_message
    from secrets_broker.release.gate import fingerprint
    from secrets_broker.settings import get_settings

    client_id, credential_id, secret, task_id, sub, approval_id, contact = _third_party_setup(world)
    world.decide_approval(approval_id, client_id, "approved")

    r = world.release(sub, task_id, credential_id, approval_id=approval_id)

    assert r.status_code == 201, r.text
    body = r.json()
    # The technician never sees the third party's code; the link lives an hour (the default).
    assert body["wrap_token"] is None
    assert body["wrap_ttl"] == 3600
    release_id = body["release_id"]

    mails = world.mails_to(contact)
    assert len(mails) == 1
    raw = mails[0].as_string()
    text_body = mails[0].get_content()
    for form in (secret, base64.b64encode(secret.encode()).decode(), secret.encode().hex()):
        assert form not in raw
    links = re.findall(r"(https?://\S+/reveal#(\S+))", text_body)
    assert len(links) == 1
    code = links[0][1]
    # The link carries the broker's own code, which Vault does not know, and no token shape.
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", code)
    assert lookup_at_vault(vault_addr, code).status_code == 400
    assert scan_message(mails[0]) is None
    # Only the code's HMAC is kept, and no Vault token was minted for the release.
    row = release_row(engine, release_id)
    assert row.wrap_accessor is None
    assert row.token_fingerprint == fingerprint(get_settings().fingerprint_key_bytes(), code)
    assert code not in row.token_fingerprint
    with engine.connect() as conn:
        pending = conn.execute(
            text("SELECT count(*) FROM pending_revocations WHERE release_id = :r"), {"r": release_id}
        )
        assert pending.scalar_one() == 0

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
    )
    assert (other.status_code, other.json()) == (404, {"error": "not_found", "detail": "client not found"})
    assert world.broker.get("/v1/disclosures", headers=world.tech(sub)).status_code == 403

    shown = world.broker.get(f"/v1/releases/{release_id}", headers=world.tech(sub)).json()
    assert shown["recipient"]["type"] == "third_party"
    assert shown["recipient"]["party_category"] == "provider_for_client"
    assert shown["approval_id"] == str(approval_id)
    # Revealing the mailed code yields the stored secret (what the reveal page does).
    assert world.reveal(code).json()["secret"] == secret


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


def test_mail_failure_withdraws_the_release(world: World, broker_app: Any, engine: Any) -> None:
    from secrets_broker.deps import mailer_dep
    from secrets_broker.mail import Mailer

    client_id, credential_id, secret, task_id, sub, approval_id, contact = _third_party_setup(world)
    world.decide_approval(approval_id, client_id, "approved")
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM pending_revocations")).scalar_one()
    # Nothing listens on port 9 of localhost here: the relay is unreachable.
    broker_app.dependency_overrides[mailer_dep] = lambda: Mailer(smtp_url="smtp://127.0.0.1:9", sender="x@y.z")

    r = world.release(sub, task_id, credential_id, approval_id=approval_id)

    assert (r.status_code, r.json()["error"]) == (503, "unavailable")
    assert secret not in r.text
    # The release was recorded before the mail (COMMIT first), so it is withdrawn, audited.
    with engine.connect() as conn:
        (release_id,) = conn.execute(text("SELECT id FROM releases WHERE task_id = :t"), {"t": task_id}).one()
        after = conn.execute(text("SELECT count(*) FROM pending_revocations")).scalar_one()
    row = release_row(engine, release_id)
    assert (row.status, row.closed_reason) == ("revoked", "mail_failed")
    assert [a.action for a in audit_rows(engine, release_id=release_id)] == ["release.granted", "release.revoked"]
    # No Vault token was minted, so none is queued for revocation.
    assert after == before
    assert world.mails_to(contact) == []


def test_a_mail_the_guard_refuses_is_not_sent_and_withdraws_the_release(world: World, engine: Any) -> None:
    from prometheus_client import REGISTRY

    from mspkit.mailguard import clear_canaries, register_canary

    name = f"Canary Fibre {uuid.uuid4().hex}"
    client_id, credential_id, secret, task_id, sub = world.ready()
    contact = f"isp-{uuid.uuid4().hex[:8]}@fibre.example.net"
    approval_id = world.request_approval(
        task_id, credential_ids=[credential_id], categories=["credentials"], contact_email=contact, name=name
    )
    world.decide_approval(approval_id, client_id, "approved")
    labels = {"reason": "canary", "template": "secrets_broker.reveal_link"}
    before = REGISTRY.get_sample_value("msp_mail_refused_total", labels) or 0.0
    # The recipient's name stands in for a secret that reached the template: the guard must stop it.
    register_canary(name)
    try:
        r = world.release(sub, task_id, credential_id, approval_id=approval_id)
    finally:
        clear_canaries()

    assert r.status_code == 409, r.text
    assert secret not in r.text
    assert r.json() == {
        "error": "conflict",
        "detail": "the outbound-mail guard refused the reveal mail; the release was withdrawn",
        "field": "approval_id",
    }
    assert REGISTRY.get_sample_value("msp_mail_refused_total", labels) == before + 1
    assert world.mails_to(contact) == []
    with engine.connect() as conn:
        (release_id,) = conn.execute(text("SELECT id FROM releases WHERE task_id = :t"), {"t": task_id}).one()
    assert (release_row(engine, release_id).status, release_row(engine, release_id).closed_reason) == (
        "revoked",
        "mail_refused",
    )


def test_no_lock_is_held_while_the_mail_is_sent(world: World, broker_app: Any, engine: Any) -> None:
    from secrets_broker.deps import mailer_dep
    from secrets_broker.mail import get_mailer

    client_id, credential_id, _, task_id, sub, approval_id, contact = _third_party_setup(world)
    world.decide_approval(approval_id, client_id, "approved")
    seen: list[Any] = []

    class Watching:
        def send(self, **kwargs: Any) -> None:
            # Another connection takes the audit chain's lock and reads the release: both work only
            # when the release committed before the hand-off to SMTP.
            with engine.begin() as conn:
                free = conn.execute(
                    text("SELECT pg_try_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": CHAIN_LOCK}
                ).scalar()
                status = conn.execute(text("SELECT status FROM releases WHERE task_id = :t"), {"t": task_id}).scalar()
            seen.append((free, status))
            get_mailer().send(**kwargs)

    broker_app.dependency_overrides[mailer_dep] = lambda: Watching()

    r = world.release(sub, task_id, credential_id, approval_id=approval_id)

    assert r.status_code == 201, r.text
    assert seen == [(True, "issued")]
    assert len(world.mails_to(contact)) == 1


def test_starttls_is_required_where_configured_and_never_skipped(world: World, monkeypatch: Any) -> None:
    from pydantic import ValidationError

    from secrets_broker.errors import MailUnavailable
    from secrets_broker.mail import Mailer
    from secrets_broker.settings import Settings, get_settings

    contact = f"tls-{uuid.uuid4().hex[:8]}@fibre.example.net"
    # The dev sink offers no STARTTLS: a mailer that requires it sends nothing rather than plain text.
    strict = Mailer(smtp_url=get_settings().smtp_url, sender="x@y.z", starttls=True)
    with pytest.raises(MailUnavailable):
        strict.send(to=contact, subject="s", body="b", template="test")
    assert world.mails_to(contact) == []

    for name, value in {
        "MSP_ENV": "production",
        "SECRETS_BROKER_SERVICE_CLIENT_SECRET": uuid.uuid4().hex,
        "SECRETS_BROKER_FINGERPRINT_KEY": uuid.uuid4().hex,
        "SECRETS_BROKER_SMTP_URL": "smtp://relay.example.net:587",
        # Outside dev the issuer and Vault must be https:// too (tests/mspkit/test_production_guards.py).
        "MSP_JWT_ISSUER": "https://idp.example.net",
        "MSP_JWKS_URL": "https://idp.example.net/.well-known/jwks.json",
        "MSP_TOKEN_URL": "https://idp.example.net/oauth/token",
        "MSP_VAULT_ADDR": "https://openbao.example.net:8200",
    }.items():
        monkeypatch.setenv(name, value)
    assert Settings().smtp_uses_starttls() is True
    monkeypatch.setenv("SECRETS_BROKER_SMTP_STARTTLS", "false")
    with pytest.raises(ValidationError, match="SECRETS_BROKER_SMTP_STARTTLS"):
        Settings()


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
