"""Notifications (issue 18): client settings, the `approval.created` event, which mails each event makes,
the templates (ids, names and links only), the guard before SMTP, and at most one mail per (event, recipient).

Delivery runs against a real SMTP server in the test (aiosmtpd on a free port) and commits its claims
on fresh event ids; everything else runs inside the test's rolled-back transaction.
"""

from __future__ import annotations

import base64
import dataclasses
import secrets
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.testclient import TestClient
from intake_factories import create_request, isp_body, make_client, move, outbox, purchase_body, system_task
from jinja2 import meta
from prometheus_client import REGISTRY
from sqlalchemy import Connection, text
from sqlmodel import Session

from mspctl.ports import free_port

Headers = dict[str, str]
PORTAL = "https://portal.msp.example"


# --- helpers --------------------------------------------------------------------------------------


class _Collect:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.original_content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[str, _Collect]]:
    """A real SMTP server on a free port, collecting what it receives."""
    handler = _Collect()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", handler
    finally:
        controller.stop()


def mailer_for(url: str) -> Any:
    from intake.notifications.sender import Mailer

    return Mailer(smtp_url=url, sender="MSP <no-reply@msp.example>", timeout_s=5)


def body_text(msg: EmailMessage, subtype: str) -> str:
    part = msg.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content())


def client_token(devstack_dir: Path, client_id: str, *, sub: str, **claims: Any) -> Headers:
    """A client_user token with extra claims (email, email_verified), signed by the stack's dev issuer."""
    from mspctl.envfile import read_env
    from mspctl.layout import Layout
    from mspctl.tokens import claims_for, shape, sign

    layout = Layout(devstack_dir)
    env = read_env(layout.env_file)
    base = claims_for(issuer=env["MSP_JWT_ISSUER"], role="client_user", sub=sub, client_id=client_id, aud=None, ttl=600)
    token = sign(layout, shape({**base, **claims}, env.get("MSP_DEV_TOKEN_PROFILE") or "dev"))
    return {"Authorization": f"Bearer {token}"}


def session_on(conn: Connection) -> Session:
    return Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)


def envelope(type_: str, client_id: Any, **data: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "occurred_at": datetime.now(UTC).isoformat(),
        "client_id": str(client_id),
        "aggregate_id": None,
        "data": {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in data.items()},
    }


def counter(name: str, template: str) -> float:
    return REGISTRY.get_sample_value(f"{name}_total", {"template": template}) or 0.0


# --- client settings ------------------------------------------------------------------------------


def test_client_settings_default_to_the_approvers_and_status_mail_on(api: TestClient, admin_h: Headers) -> None:
    client = make_client(api, admin_h)
    assert client["alert_emails"] is None and client["status_mail"] is True


def test_client_settings_are_set_patched_and_reset(api: TestClient, admin_h: Headers) -> None:
    client = make_client(api, admin_h, alert_emails=["sec@acme.example", "sec@acme.example"], status_mail=False)
    assert client["alert_emails"] == ["sec@acme.example"] and client["status_mail"] is False
    url = f"/v1/clients/{client['id']}"
    patched = api.patch(url, json={"alert_emails": ["it@acme.example"], "status_mail": True}, headers=admin_h)
    assert patched.status_code == 200, patched.text
    assert patched.json()["alert_emails"] == ["it@acme.example"] and patched.json()["status_mail"] is True
    # An empty list is "back to the approvers"; a null leaves the value alone.
    assert api.patch(url, json={"status_mail": None}, headers=admin_h).json()["alert_emails"] == ["it@acme.example"]
    reset = api.patch(url, json={"alert_emails": []}, headers=admin_h).json()
    assert reset["alert_emails"] is None
    assert api.get(url, headers=admin_h).json()["alert_emails"] is None


def test_client_settings_refuse_bad_values(api: TestClient, admin_h: Headers) -> None:
    bad = api.post(
        "/v1/clients",
        json={
            "name": "X",
            "primary_domain": "x.example",
            "approver_emails": ["a@x.example"],
            "purchase_approval_threshold_cents": 0,
            "alert_emails": ["not an address"],
        },
        headers=admin_h,
    )
    assert bad.status_code == 422 and bad.json()["field"].startswith("alert_emails")
    client = make_client(api, admin_h)
    wrong = api.patch(f"/v1/clients/{client['id']}", json={"status_mail": "yes"}, headers=admin_h)
    assert wrong.status_code == 422 and wrong.json()["field"] == "status_mail"


# --- the approval.created event -------------------------------------------------------------------


def test_request_expansion_emits_approval_created_with_ids_only(
    api: TestClient, admin_h: Headers, auth: Callable[..., Headers], sql: Callable[..., list[Any]]
) -> None:
    client = make_client(api, admin_h)
    user = auth("client_user", "u1", client["id"])
    created = create_request(api, user, isp_body())
    [approval_id] = [r[0] for r in sql("SELECT id FROM intake.approvals WHERE client_id = :c", c=client["id"])]
    events = [data for kind, data in outbox(sql, client["id"]) if kind == "approval.created"]
    assert events == [
        {"approval_id": str(approval_id), "task_id": created["task_ids"][0], "status": "pending", "origin": "request"}
    ]


def test_an_approval_asked_on_a_task_emits_approval_created(
    api: TestClient, admin_h: Headers, auth: Callable[..., Headers], sql: Callable[..., list[Any]]
) -> None:
    client = make_client(api, admin_h)
    created = create_request(api, auth("client_user", "u1", client["id"]), purchase_body())
    task_id = created["task_ids"][0]
    body = {
        "recipient": {
            "name": "Auditors LLP",
            "contact_email": "audit@auditors.example",
            "party_category": "msp_professional_adviser",
        },
        "information_categories": ["billing"],
        "credential_ids": [],
        "expires_in_s": 3600,
    }
    made = api.post(f"/v1/tasks/{task_id}/approvals", json=body, headers=admin_h)
    assert made.status_code == 201, made.text
    events = [data for kind, data in outbox(sql, client["id"]) if kind == "approval.created"]
    assert events == [{"approval_id": made.json()["id"], "task_id": task_id, "status": "pending", "origin": "task"}]


# --- which mails each event makes -----------------------------------------------------------------


def test_an_approval_mail_goes_to_each_approver_with_its_portal_link(
    api: TestClient, admin_h: Headers, auth: Callable[..., Headers], conn: Connection
) -> None:
    from intake.notifications.render import render
    from intake.notifications.service import approval_request_mails

    client = make_client(
        api, admin_h, name="Acme & Sons", approver_emails=["boss@acme.example", "BOSS@acme.example", "cfo@acme.example"]
    )
    created = create_request(api, auth("client_user", "u1", client["id"]), isp_body())
    approval_id = conn.execute(text("SELECT id FROM intake.approvals WHERE client_id = :c"), {"c": client["id"]}).one()[
        0
    ]
    event = envelope("approval.created", client["id"], approval_id=approval_id, task_id=created["task_ids"][0])
    with session_on(conn) as session:
        mails = approval_request_mails(session, envelope=event, portal_url=PORTAL + "/")
    assert [m.recipient for m in mails] == ["boss@acme.example", "cfo@acme.example"]
    rendered = render(mails[0].mail)
    link = f"{PORTAL}/approvals/{approval_id}"
    assert rendered.subject == "Approval needed: Set up ISP account with FastFiber (Acme & Sons)" or "Acme & Sons" in (
        rendered.subject
    )
    for body in (rendered.text, rendered.html):
        assert link in body
        assert "FastFiber" in body  # to whom
        assert "a provider working for you" in body  # the party category in words
        assert "contact details" in body and "the service address" in body and "billing details" in body
        assert str(created["id"]) in body  # for which request
    assert "Acme &amp; Sons" in rendered.html and "Acme & Sons" in rendered.text
    # Until when: the approval's expiry, in UTC words.
    expires = conn.execute(text("SELECT expires_at FROM intake.approvals WHERE id = :a"), {"a": approval_id}).one()[0]
    assert expires.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") in rendered.text


def test_a_decided_approval_is_not_mailed(
    api: TestClient, admin_h: Headers, auth: Callable[..., Headers], conn: Connection
) -> None:
    from intake.notifications.service import approval_request_mails

    client = make_client(api, admin_h)
    created = create_request(api, auth("client_user", "u1", client["id"]), isp_body())
    approval_id = conn.execute(text("SELECT id FROM intake.approvals WHERE client_id = :c"), {"c": client["id"]}).one()[
        0
    ]
    decided = api.post(
        f"/v1/approvals/{approval_id}/decision",
        json={"decision": "approved"},
        headers=auth("client_admin", "ca1", client["id"]),
    )
    assert decided.status_code == 200, decided.text
    event = envelope("approval.created", client["id"], approval_id=approval_id, task_id=created["task_ids"][0])
    with session_on(conn) as session:
        assert approval_request_mails(session, envelope=event, portal_url=PORTAL) == []


def _status_event(conn: Connection, task_id: str, to: str) -> dict[str, Any]:
    client_id = conn.execute(text("SELECT client_id FROM intake.tasks WHERE id = :t"), {"t": task_id}).one()[0]
    return envelope("task.status_changed", client_id, task_id=task_id, to=to, **{"from": "ready"})


@pytest.mark.parametrize(
    ("claims", "status_mail", "mailed"),
    [
        ({"email": "req@acme.example", "email_verified": True}, True, True),
        ({"email": "req@acme.example", "email_verified": False}, True, False),
        ({"email": "req@acme.example"}, True, False),
        ({"email": "req@acme.example", "email_verified": "true"}, True, False),
        ({"email": "req@acme.example", "email_verified": True}, False, False),
    ],
)
def test_status_mail_goes_only_to_a_verified_requester_of_a_client_that_wants_it(
    api: TestClient,
    admin_h: Headers,
    devstack_dir: Path,
    conn: Connection,
    claims: dict[str, Any],
    status_mail: bool,
    mailed: bool,
) -> None:
    from intake.notifications.render import render
    from intake.notifications.service import task_status_mails

    client = make_client(api, admin_h, status_mail=status_mail)
    created = create_request(api, client_token(devstack_dir, client["id"], sub="req-1", **claims), purchase_body())
    task_id = created["task_ids"][0]
    assert move(api, admin_h, task_id, "cancelled").status_code == 200
    with session_on(conn) as session:
        mails = task_status_mails(session, envelope=_status_event(conn, task_id, "cancelled"), portal_url=PORTAL)
    if not mailed:
        assert mails == []
        return
    [mail] = mails
    assert mail.recipient == "req@acme.example"
    rendered = render(mail.mail)
    assert "cancelled" in rendered.subject
    assert (
        f"{PORTAL}/requests/{created['id']}" in rendered.text and f"{PORTAL}/requests/{created['id']}" in rendered.html
    )


def test_an_admins_request_gets_no_status_mail(
    api: TestClient, admin_h: Headers, conn: Connection, devstack_dir: Path
) -> None:
    from intake.notifications.service import task_status_mails

    client = make_client(api, admin_h)
    created = create_request(api, admin_h, purchase_body(), client_id=client["id"])
    stored = conn.execute(text("SELECT requester_email FROM intake.requests WHERE id = :r"), {"r": created["id"]})
    assert stored.one()[0] is None
    with session_on(conn) as session:
        event = _status_event(conn, created["task_ids"][0], "ready")
        assert task_status_mails(session, envelope=event, portal_url=PORTAL) == []


@pytest.mark.parametrize(("task_type", "mailed"), [("drift_review", True), ("renewal", True), ("sync_failure", False)])
def test_drift_review_and_renewal_tasks_are_mailed_to_ops(
    api: TestClient, admin_h: Headers, vs_h: Headers, conn: Connection, task_type: str, mailed: bool
) -> None:
    from intake.notifications.render import render
    from intake.notifications.service import ops_task_mails

    client = make_client(api, admin_h, name="Acme Dental")
    title = "acme-dental.example: nameservers changed from ns1.old.example to ns1.new.example"
    task = system_task(api, vs_h, client["id"], type=task_type, title=title)
    event = envelope("task.created", client["id"], task_id=task["id"], request_id=None, status="new")
    with session_on(conn) as session:
        mails = ops_task_mails(session, envelope=event, portal_url=PORTAL, ops_email="ops@msp.example")
        assert ops_task_mails(session, envelope=event, portal_url=PORTAL, ops_email="") == []
    if not mailed:
        assert mails == []
        return
    [mail] = mails
    assert mail.recipient == "ops@msp.example"
    rendered = render(mail.mail)
    for body in (rendered.text, rendered.html):
        assert f"{PORTAL}/tasks/{task['id']}" in body and "Acme Dental" in body and "ns1.new.example" in body


class FakeReleases:
    """The broker's `GET /internal/releases/{id}` answer, as intake parses it."""

    def __init__(self, data: dict[str, Any] | None) -> None:
        self.data = data

    def get(self, release_id: uuid.UUID) -> Any:
        from intake.notifications.releases import ReleaseFacts

        return None if self.data is None else ReleaseFacts.parse(self.data, release_id)


def _release(client_id: str, task_id: str | None, kind: str, **recipient: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "client_id": client_id,
        "task_id": task_id,
        "credential_id": str(uuid.uuid4()),
        "credential_name": "Cloudflare admin",
        "recipient": {"kind": kind, "type": kind, **recipient},
        "reason": "Rotate the DNS API key for the migration",
        "status": "issued",
        "approval_id": None,
        "expires_at": "2030-01-01T00:02:00Z",
        "created_at": "2030-01-01T00:00:00Z",
    }


@pytest.mark.parametrize("alert_emails", [None, ["security@acme.example"]])
def test_a_release_to_a_technician_alerts_the_alert_addresses(
    api: TestClient, admin_h: Headers, conn: Connection, auth: Callable[..., Headers], alert_emails: list[str] | None
) -> None:
    from intake.notifications.render import render
    from intake.notifications.service import access_alert_mails

    extra = {"alert_emails": alert_emails} if alert_emails else {}
    client = make_client(api, admin_h, approver_emails=["boss@acme.example"], **extra)
    task_id = create_request(api, auth("client_user", "u1", client["id"]), purchase_body())["task_ids"][0]
    data = _release(client["id"], task_id, "technician", sub="tech-1")
    event = envelope("release.granted", client["id"], release_id=data["id"], recipient_type="technician")
    with session_on(conn) as session:
        mails = access_alert_mails(session, envelope=event, portal_url=PORTAL, releases=FakeReleases(data))  # type: ignore[arg-type]
    assert [m.recipient for m in mails] == (alert_emails or ["boss@acme.example"])
    rendered = render(mails[0].mail)
    for body in (rendered.text, rendered.html):
        assert "Cloudflare admin" in body and "tech-1" in body and "Rotate the DNS API key" in body
        assert task_id in body and "Wireless keyboard" not in body and f"{PORTAL}/access" in body
        assert "2030-01-01 00:00 UTC" in body


def test_service_releases_and_unknown_releases_are_not_mailed(
    api: TestClient, admin_h: Headers, conn: Connection
) -> None:
    from intake.notifications.service import access_alert_mails

    client = make_client(api, admin_h)
    data = _release(client["id"], None, "service", sub="svc:vendor_sync")
    event = envelope("release.granted", client["id"], release_id=data["id"])
    with session_on(conn) as session:
        for answer in (data, None):
            assert access_alert_mails(session, envelope=event, portal_url=PORTAL, releases=FakeReleases(answer)) == []  # type: ignore[arg-type]


def test_an_off_shape_broker_answer_is_unavailable_not_a_guess() -> None:
    from intake.notifications.releases import ReleaseFacts
    from mspkit.errors import Unavailable

    data = _release(str(uuid.uuid4()), None, "technician", sub="tech-1")
    with pytest.raises(Unavailable):
        ReleaseFacts.parse({**data, "client_id": "nope"}, uuid.UUID(data["id"]))
    with pytest.raises(Unavailable):
        ReleaseFacts.parse(data, uuid.uuid4())


# --- templates ------------------------------------------------------------------------------------

SECRET_FIELDS = ("secret", "password", "token", "wrap_token", "username", "notes", "code")


def _samples() -> list[Any]:
    from intake.notifications.render import AccessAlert, ApprovalRequest, OpsTaskMail, TaskStatusMail

    now = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    ids = [uuid.uuid4() for _ in range(4)]
    return [
        ApprovalRequest(
            approval_id=ids[0], client_name="<b>Acme</b>", task_id=ids[1], task_title="Buy keyboards",
            task_type="purchase", request_id=ids[2], recipient_name="Office Supplies Ltd",
            party_category="provider_for_client", information_categories=("billing", "contact_info"),
            credential_count=0, expires_at=now, link=f"{PORTAL}/approvals/{ids[0]}",
        ),
        AccessAlert(
            release_id=ids[0], client_name="<b>Acme</b>", credential_name="Router admin",
            recipient_label="Tech One (tech-1)", task_id=ids[1], task_title="Fix router", reason="Firmware upgrade",
            released_at=now, link=f"{PORTAL}/access",
        ),
        TaskStatusMail(
            request_id=ids[2], task_id=ids[1], task_title="Buy keyboards", client_name="<b>Acme</b>", status="done",
            link=f"{PORTAL}/requests/{ids[2]}",
        ),
        OpsTaskMail(
            task_id=ids[1], task_type="renewal", task_title="acme.example expires on 2030-02-01",
            client_name="<b>Acme</b>", link=f"{PORTAL}/tasks/{ids[1]}",
        ),
    ]  # fmt: skip


@pytest.mark.parametrize("index", range(4))
def test_every_template_renders_text_and_html_with_its_link_and_escapes_names(index: int) -> None:
    from intake.notifications.render import render

    mail = _samples()[index]
    rendered = render(mail)
    assert mail.link in rendered.text and f'href="{mail.link}"' in rendered.html
    assert "<b>Acme</b>" in rendered.text and "&lt;b&gt;Acme&lt;/b&gt;" in rendered.html
    assert "<b>Acme</b>" not in rendered.html
    assert "\n" not in rendered.subject and rendered.subject


@pytest.mark.parametrize("index", range(4))
def test_a_template_cannot_be_rendered_with_a_secret(index: int) -> None:
    from intake.notifications.render import environment

    mail = _samples()[index]
    fields = {f.name for f in dataclasses.fields(mail)}
    # The templates' inputs have no field a secret could travel in ...
    assert not fields & set(SECRET_FIELDS)
    for name in SECRET_FIELDS:
        with pytest.raises(TypeError):
            type(mail)(**{f: getattr(mail, f) for f in fields}, **{name: "hvs.CAESIJ-planted-secret"})
    # ... and the templates read nothing but what the input provides.
    env = environment()
    for suffix in ("txt", "html"):
        source = env.loader.get_source(env, f"{mail.TEMPLATE}.{suffix}")[0]  # type: ignore[union-attr]
        assert meta.find_undeclared_variables(env.parse(source)) <= set(mail.context())


def test_a_subject_cannot_carry_a_header_injection() -> None:
    from intake.notifications.render import TaskStatusMail, render

    mail = TaskStatusMail(
        request_id=uuid.uuid4(), task_id=uuid.uuid4(), task_title="Hi\r\nBcc: evil@example.com", client_name="A",
        status="done", link=f"{PORTAL}/requests/x",
    )  # fmt: skip
    assert "\n" not in render(mail).subject and "\r" not in render(mail).subject


# --- delivery: guard, dedupe, retries -------------------------------------------------------------


def _outgoing(recipients: list[str], reason: str = "Firmware upgrade") -> list[Any]:
    from intake.notifications.service import Outgoing

    alert = _samples()[1]
    return [Outgoing(recipient=r, mail=dataclasses.replace(alert, reason=reason)) for r in recipients]


def _sent_rows(event_id: uuid.UUID) -> list[tuple[str, str]]:
    from intake.db import get_engine

    with get_engine().connect() as c:
        rows = c.execute(
            text("SELECT recipient, status FROM intake.notifications_sent WHERE event_id = :e ORDER BY recipient"),
            {"e": event_id},
        )
        return [(r[0], r[1]) for r in rows]


def test_each_recipient_gets_one_multipart_mail_and_a_redelivery_sends_none(smtp: tuple[str, _Collect]) -> None:
    from intake.db import get_engine
    from intake.notifications.service import deliver

    url, sink = smtp
    event_id = uuid.uuid4()
    outgoing = _outgoing(["a@acme.example", "b@acme.example"])
    before = counter("msp_notifications_sent", "access_alert")
    first = deliver(get_engine(), event_id=event_id, outgoing=outgoing, mailer=mailer_for(url))
    again = deliver(get_engine(), event_id=event_id, outgoing=outgoing, mailer=mailer_for(url))
    assert (first.sent, first.duplicates, again.sent, again.duplicates) == (2, 0, 0, 2)
    assert sorted(rcpt for rcpts, _ in sink.messages for rcpt in rcpts) == ["a@acme.example", "b@acme.example"]
    assert counter("msp_notifications_sent", "access_alert") - before == 2
    assert _sent_rows(event_id) == [("a@acme.example", "sent"), ("b@acme.example", "sent")]
    _, msg = sink.messages[0]
    assert msg.get_content_type() == "multipart/alternative"
    assert f"{PORTAL}/access" in body_text(msg, "plain") and f"{PORTAL}/access" in body_text(msg, "html")
    assert msg["Message-ID"].endswith("@msp.invalid>") and msg["Auto-Submitted"] == "auto-generated"


def _jwt() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return jwt.encode({"sub": "x", "exp": 2_000_000_000}, key, algorithm="EdDSA")


def _pem() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


CANARY = "canary-" + secrets.token_hex(12)
PLANTED = {
    "wrap_token": lambda: "hvs.CAESI" + secrets.token_urlsafe(60),
    "old_vault_token": lambda: "s." + "".join(secrets.choice("ABCDEFGHJKabcdefgh0123456789") for _ in range(24)),
    "jwt": _jwt,
    "pem_key": _pem,
    "canary_plain": lambda: CANARY,
    "canary_base64": lambda: base64.b64encode(CANARY.encode()).decode(),
    "canary_url_encoded": lambda: quote("x " + CANARY, safe=""),
}


@pytest.fixture
def canary() -> Iterator[str]:
    from mspkit.mailguard import clear_canaries, live_canaries, register_canary

    kept = live_canaries()
    register_canary(CANARY)
    yield CANARY
    clear_canaries()
    for value in kept:
        register_canary(value)


@pytest.mark.parametrize("shape", sorted(PLANTED))
def test_the_guard_refuses_each_planted_shape_and_it_is_never_retried(
    smtp: tuple[str, _Collect], canary: str, shape: str
) -> None:
    from intake.db import get_engine
    from intake.notifications.service import deliver

    url, sink = smtp
    event_id = uuid.uuid4()
    planted = PLANTED[shape]()
    outgoing = _outgoing(["a@acme.example"], reason=f"needed it: {planted}")
    before = counter("msp_notifications_refused", "access_alert")
    done = deliver(get_engine(), event_id=event_id, outgoing=outgoing, mailer=mailer_for(url))
    assert (done.sent, done.refused) == (0, 1)
    assert sink.messages == []
    assert counter("msp_notifications_refused", "access_alert") - before == 1
    assert _sent_rows(event_id) == [("a@acme.example", "refused")]
    # A redelivered event finds the refusal and sends nothing (never retried as-is).
    again = deliver(get_engine(), event_id=event_id, outgoing=outgoing, mailer=mailer_for(url))
    assert (again.sent, again.duplicates) == (0, 1) and sink.messages == []


def test_a_refusal_is_logged_without_the_value(smtp: tuple[str, _Collect], canary: str) -> None:
    from structlog.testing import capture_logs

    from intake.db import get_engine
    from intake.notifications.service import deliver

    url, _ = smtp
    with capture_logs() as logs:
        deliver(
            get_engine(),
            event_id=uuid.uuid4(),
            outgoing=_outgoing(["a@x.example"], reason=canary),
            mailer=mailer_for(url),
        )
    assert any(entry.get("event") == "notification_refused" for entry in logs)
    assert canary not in repr(logs)


def test_smtp_down_releases_the_claim_so_a_retry_sends_exactly_once(smtp: tuple[str, _Collect]) -> None:
    from intake.db import get_engine
    from intake.notifications.sender import TransientMailError
    from intake.notifications.service import deliver

    url, sink = smtp
    event_id = uuid.uuid4()
    outgoing = _outgoing(["a@acme.example", "b@acme.example"])
    closed = f"smtp://127.0.0.1:{free_port()}"
    with pytest.raises(TransientMailError):
        deliver(get_engine(), event_id=event_id, outgoing=outgoing, mailer=mailer_for(closed))
    assert _sent_rows(event_id) == []
    done = deliver(get_engine(), event_id=event_id, outgoing=outgoing, mailer=mailer_for(url))
    assert done.sent == 2 and len(sink.messages) == 2


class _Reply:
    def __init__(self, code: int) -> None:
        self.code = code

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        return f"{self.code} not now" if self.code >= 400 else "250 OK"


@pytest.mark.parametrize(("code", "transient"), [(451, True), (550, False)])
def test_4xx_is_transient_and_5xx_is_permanent(code: int, transient: bool) -> None:
    from intake.notifications.sender import PermanentMailError, TransientMailError

    port = free_port()
    controller = Controller(_Reply(code), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mailer = mailer_for(f"smtp://127.0.0.1:{port}")
        from intake.notifications.render import render

        msg = mailer.message(to="a@acme.example", rendered=render(_samples()[2]), msgid="<x@msp.invalid>")
        with pytest.raises(TransientMailError if transient else PermanentMailError):
            mailer.send(msg, template="task_status")
    finally:
        controller.stop()


def test_starttls_is_required_outside_dev() -> None:
    from intake.settings import Settings

    def settings(**values: Any) -> Settings:
        # The STARTTLS rule alone, without the other production checks (issuer, secrets).
        return Settings.model_construct(**{"env": "production", "smtp_starttls": None, **values})

    assert settings(smtp_url="smtp://relay.example:587").smtp_uses_starttls() is True
    assert settings(smtp_url="smtps://relay.example:465").smtp_uses_starttls() is False
    assert settings(env="dev", smtp_url="smtp://127.0.0.1:25").smtp_uses_starttls() is False
    with pytest.raises(ValueError, match="INTAKE_SMTP_STARTTLS"):
        settings(smtp_url="smtp://relay.example:587", smtp_starttls=False)._require_mail_tls()
    settings(smtp_url="smtps://relay.example:465", smtp_starttls=False)._require_mail_tls()


def test_a_relay_without_starttls_gets_nothing(smtp: tuple[str, _Collect]) -> None:
    from intake.notifications.render import render
    from intake.notifications.sender import Mailer, TransientMailError

    url, sink = smtp
    mailer = Mailer(smtp_url=url, sender="no-reply@msp.example", starttls=True)
    msg = mailer.message(to="a@acme.example", rendered=render(_samples()[2]), msgid="<y@msp.invalid>")
    with pytest.raises(TransientMailError):
        mailer.send(msg, template="task_status")
    assert sink.messages == []


# --- routing --------------------------------------------------------------------------------------


def test_every_routed_notification_is_a_registered_task_on_intakes_queue() -> None:
    import intake.jobs
    import intake.psa.jobs  # noqa: F401 - both register their tasks
    from intake import events
    from intake.celery_app import QUEUE, app
    from secrets_broker.events import ROUTES as BROKER_ROUTES

    ours = {name for routes in events.ROUTES.values() for name, queue in routes if queue == QUEUE}
    theirs = {name for routes in BROKER_ROUTES.values() for name, queue in routes if queue == QUEUE}
    notifications = {events.NOTIFY_APPROVAL_CREATED, events.NOTIFY_TASK_CREATED, events.NOTIFY_TASK_STATUS_CHANGED}
    assert ours == notifications | {events.PSA_PUSH}
    assert theirs == {events.NOTIFY_RELEASE_GRANTED, events.NOTIFY_RELEASE_DENIED, events.PSA_RELEASE_NOTE}
    assert (ours | theirs) <= set(app.tasks)
    assert events.ROUTES["approval.created"] == [(events.NOTIFY_APPROVAL_CREATED, QUEUE)]


# --- the dev mail sink ----------------------------------------------------------------------------


def test_the_mail_sinks_listing_carries_decoded_bodies(tmp_path: Path) -> None:
    from mspctl.mailsink import list_messages

    msg = EmailMessage()
    msg["From"] = "MSP <no-reply@msp.example>"
    msg["To"] = "Boss <boss@acme.example>"
    msg["Subject"] = "Approval needed: café"
    msg.set_content("Grüße, see https://portal.example/approvals/1\n", cte="base64")
    msg.add_alternative("<p>Grüße</p>", subtype="html", cte="quoted-printable")
    header = b"X-Mspctl-Mail-From: no-reply@msp.example\r\nX-Mspctl-Rcpt-To: boss@acme.example, cc@acme.example\r\n"
    (tmp_path / "20300101T000000-abc.eml").write_bytes(header + msg.as_bytes())
    plain = EmailMessage()
    plain["From"] = "a@b.example"
    plain["To"] = "c@d.example"
    plain.set_content("only text")
    (tmp_path / "20300101T000001-def.eml").write_bytes(plain.as_bytes())
    listed = list_messages(tmp_path)
    assert [m["id"] for m in listed] == ["20300101T000001-def", "20300101T000000-abc"]
    second, first = listed
    assert first["to"] == ["boss@acme.example", "cc@acme.example"] and first["subject"] == "Approval needed: café"
    assert first["text"] == "Grüße, see https://portal.example/approvals/1\n" and first["html"] == "<p>Grüße</p>\n"
    assert second["to"] == ["c@d.example"] and second["text"] == "only text\n" and second["html"] is None
    assert all(set(m) == {"id", "from", "to", "subject", "date", "text", "html"} for m in listed)


def test_the_request_row_keeps_a_verified_address_only(
    api: TestClient, admin_h: Headers, devstack_dir: Path, conn: Connection
) -> None:
    client = make_client(api, admin_h)
    cases = {
        "verified": ({"email": "a@acme.example", "email_verified": True}, "a@acme.example"),
        "unverified": ({"email": "a@acme.example", "email_verified": False}, None),
        "garbled": ({"email": "a@acme.example, b@evil.example", "email_verified": True}, None),
    }
    for sub, (claims, stored) in cases.items():
        created = create_request(api, client_token(devstack_dir, client["id"], sub=sub, **claims), purchase_body())
        row = conn.execute(text("SELECT requester_email FROM intake.requests WHERE id = :r"), {"r": created["id"]})
        assert row.one()[0] == stored, sub


def test_an_expired_approval_is_not_mailed(
    api: TestClient, admin_h: Headers, auth: Callable[..., Headers], conn: Connection
) -> None:
    from intake.notifications.service import approval_request_mails

    client = make_client(api, admin_h)
    created = create_request(api, auth("client_user", "u1", client["id"]), isp_body())
    past = datetime.now(UTC) - timedelta(seconds=1)
    conn.execute(
        text("UPDATE intake.approvals SET expires_at = :p WHERE client_id = :c"), {"p": past, "c": client["id"]}
    )
    approval_id = conn.execute(text("SELECT id FROM intake.approvals WHERE client_id = :c"), {"c": client["id"]}).one()[
        0
    ]
    event = envelope("approval.created", client["id"], approval_id=approval_id, task_id=created["task_ids"][0])
    with session_on(conn) as session:
        assert approval_request_mails(session, envelope=event, portal_url=PORTAL) == []
