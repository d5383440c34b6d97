"""Notifications end to end (issue 18): a real intake worker, both relays, the broker and the dev mail sink.

- an approval made by a request's expansion is mailed once to each approver, with its portal link; a
  redelivered `approval.created` sends no second mail;
- a release granted to a technician is mailed to the client's alert addresses within 60 s (a polling
  deadline), and a denied one is not (service releases write no event: tests/intake covers that the
  consumer mails none);
- with the mail part stopped for ~30 s, the mail is delayed, then sent once.

Every assertion reads `MSP_MAIL_UI_URL/messages.json` and counts every message to the test's own
fresh addresses, so nothing extra can hide.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from procs import PY, Proc, process_env, wait_log

pytestmark = pytest.mark.slow

PORTAL = "https://portal.e2e.example"
ALERT_DEADLINE_S = 60.0
APPROVAL_CREATED_ENVELOPE = (
    "SELECT envelope FROM intake.outbox WHERE type = 'approval.created' AND envelope->>'aggregate_id' = :a"
)


def messages(stack_env: dict[str, str], *addresses: str) -> list[dict[str, Any]]:
    """Every message the sink holds for any of `addresses`."""
    listed = httpx.get(stack_env["MSP_MAIL_UI_URL"] + "messages.json", timeout=10).json()
    wanted = {a.lower() for a in addresses}
    return [m for m in listed if wanted & {t.lower() for t in m["to"]}]


def wait_for(stack_env: dict[str, str], addresses: list[str], count: int, timeout: float) -> list[dict[str, Any]]:
    """Poll the sink until `count` messages for `addresses` are there (or fail, saying how many came)."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            found = messages(stack_env, *addresses)
        except httpx.HTTPError:
            found = []
        if len(found) >= count:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{len(found)} of {count} messages to {addresses} within {timeout} s")


@pytest.fixture(scope="module")
def mail_worker(e2e: Any, stack_env: dict[str, str], admin_engine: Any) -> Iterator[Proc]:
    """intake's Celery worker (queue `intake`), started after the events other suites left have passed."""
    import redis
    from sqlalchemy import text

    # Whatever other suites left for queue `intake` (their approvals and releases) is not this test's:
    # let the relays publish it, then drop it, so the worker starts on this module's events only.
    e2e.drain()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with admin_engine.connect() as c:
            left = c.execute(text("SELECT count(*) FROM secrets_broker.outbox WHERE sent_at IS NULL")).scalar_one()
        if left == 0:
            break
        time.sleep(0.2)
    redis.Redis.from_url(stack_env["MSP_REDIS_URL"]).delete("intake")
    env = process_env(
        stack_env,
        MSP_INTAKE_URL=e2e.intake_url,
        MSP_SECRETS_BROKER_URL=e2e.broker_url,
        MSP_PORTAL_URL=PORTAL,
        # Short backoff, so a 30 s outage is followed by a mail within seconds.
        INTAKE_NOTIFY_RETRY_MAX_S="3",
    )
    worker = Proc(
        "intake-worker",
        [PY, "-m", "celery", "-A", "intake.celery_app", "worker", "-Q", "intake", "--concurrency", "2",
         "--loglevel", "INFO", "--hostname", f"e2e-intake-{uuid.uuid4().hex[:6]}@%h"],
        env,
        Path(e2e.devstack_dir) / "logs",
    ).start()  # fmt: skip
    try:
        wait_log(worker, "ready.")
        yield worker
    finally:
        worker.stop()


def _client(world: Any, approvers: list[str], **extra: Any) -> str:
    suffix = uuid.uuid4().hex[:10]
    body = {
        "name": f"Notify {suffix}",
        "primary_domain": f"n{suffix}.example.com",
        "approver_emails": approvers,
        "purchase_approval_threshold_cents": 100,
        **extra,
    }
    r = world.intake.post("/v1/clients", headers=world.admin, json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _purchase_needing_approval(world: Any, client_id: str) -> dict[str, Any]:
    body = {
        "type": "purchase",
        "items": [{"description": "Firewall appliance", "quantity": 1, "unit_price_cents": 250_000}],
        "justification": "The old firewall is out of support.",
        "supplier": {"name": "NetGear Direct", "contact_email": "sales@netgear-direct.example"},
    }
    headers = {**world.auth("client_user", "requester", client_id), "Idempotency-Key": str(uuid.uuid4())}
    r = world.intake.post("/v1/requests", headers=headers, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _approval_of(world: Any, client_id: str) -> dict[str, Any]:
    r = world.intake.get("/v1/approvals", headers=world.auth("client_admin", "boss", client_id))
    assert r.status_code == 200, r.text
    [approval] = r.json()["items"]
    return dict(approval)


def test_an_expansion_approval_mails_each_approver_once_and_redelivery_sends_none(
    mail_worker: Proc, world: Any, stack_env: dict[str, str], admin_engine: Any
) -> None:
    from sqlalchemy import text

    from intake.celery_app import app as intake_celery
    from intake.events import NOTIFY_APPROVAL_CREATED

    suffix = uuid.uuid4().hex[:8]
    approvers = [f"boss-{suffix}@acme.example", f"cfo-{suffix}@acme.example"]
    client_id = _client(world, approvers)
    request = _purchase_needing_approval(world, client_id)
    approval = _approval_of(world, client_id)

    mails = wait_for(stack_env, approvers, 2, ALERT_DEADLINE_S)
    assert sorted(t for m in mails for t in m["to"]) == sorted(approvers)
    link = f"{PORTAL}/approvals/{approval['id']}"
    for mail in mails:
        assert mail["subject"].startswith("Approval needed:")
        assert link in mail["text"] and f'href="{link}"' in mail["html"]
        assert request["id"] in mail["text"] and "NetGear Direct" in mail["text"]
        assert "a provider working for you" in mail["text"] and "billing details" in mail["text"]
    # The link names an approval that exists and belongs to this client (the portal page reads it).
    assert approval["task_id"] == request["task_ids"][0] and approval["status"] == "pending"

    # Redeliver the very same envelope, as Celery on Redis may after a worker dies.
    with admin_engine.connect() as c:
        envelope = c.execute(
            text(APPROVAL_CREATED_ENVELOPE),
            {"a": approval["id"]},
        ).scalar_one()
    intake_celery.send_task(NOTIFY_APPROVAL_CREATED, args=[envelope], queue="intake")
    needle = f'"event_id": "{envelope["event_id"]}"'
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = [
            line for line in mail_worker.log_text().splitlines() if "notification_event_done" in line and needle in line
        ]
        if len(done) >= 2:
            break
        time.sleep(0.2)
    assert len(done) >= 2, "the redelivered event was not consumed"
    assert json.loads(done[-1][done[-1].index("{") :])["duplicates"] == 2
    assert len(messages(stack_env, *approvers)) == 2


def test_a_granted_release_alerts_the_alert_addresses_and_a_denied_one_does_not(
    mail_worker: Proc, world: Any, stack_env: dict[str, str]
) -> None:
    client_id, credential_id, secret, task_id, sub = world.ready()
    suffix = uuid.uuid4().hex[:8]
    alerts = [f"security-{suffix}@acme.example", f"it-{suffix}@acme.example"]
    patched = world.intake.patch(f"/v1/clients/{client_id}", headers=world.admin, json={"alert_emails": alerts})
    assert patched.status_code == 200, patched.text
    approvers = patched.json()["approver_emails"]

    denied = world.release(sub, task_id, credential_id, reason="short")
    assert denied.status_code == 403 and denied.json()["rule"] == "reason_too_short"
    reason = "Reset the ISP router after the outage"
    granted = world.release(sub, task_id, credential_id, reason=reason)
    assert granted.status_code == 201, granted.text
    release_id = granted.json()["release_id"]
    wrap_token = granted.json()["wrap_token"]

    started = time.monotonic()
    mails = wait_for(stack_env, alerts, 2, ALERT_DEADLINE_S)
    assert time.monotonic() - started < ALERT_DEADLINE_S
    assert sorted(t for m in mails for t in m["to"]) == sorted(alerts)
    for mail in mails:
        assert mail["subject"] == f"Access alert: ISP portal released to technician {sub}"
        for body in (mail["text"], mail["html"]):
            assert "ISP portal" in body and sub in body and reason in body and str(task_id) in body
            assert release_id in body and f"{PORTAL}/access" in body
            # Links only: neither the secret nor the wrapping token is in any mail.
            assert secret not in body and wrap_token not in body
    # The approvers get no alert when alert addresses are set; the denial made no mail at all.
    time.sleep(3)
    assert messages(stack_env, *approvers) == []
    assert len(messages(stack_env, *alerts)) == 2
    assert "release_denied_not_mailed" in mail_worker.log_text()


def test_the_internal_release_read_is_for_intake_alone(world: Any, e2e: Any) -> None:
    client_id, credential_id, secret, task_id, sub = world.ready()
    granted = world.release(sub, task_id, credential_id)
    assert granted.status_code == 201, granted.text
    release_id = granted.json()["release_id"]
    url = f"/internal/releases/{release_id}"
    as_intake = world.broker.get(url, headers=world.auth("service", "svc:intake", aud=["secrets_broker"]))
    assert as_intake.status_code == 200, as_intake.text
    view = as_intake.json()
    assert view["credential_name"] == "ISP portal" and view["client_id"] == str(client_id)
    assert view["recipient"]["kind"] == "technician" and view["recipient"]["sub"] == sub
    assert view["reason"] and view["task_id"] == str(task_id)
    assert secret not in as_intake.text and granted.json()["wrap_token"] not in as_intake.text
    assert not {"wrap_token", "token_fingerprint", "wrap_accessor", "secret"} & set(view)
    assert world.broker.get(url, headers=world.vendor_sync).status_code == 403
    assert world.broker.get(url, headers=world.admin).status_code == 403
    missing = world.broker.get(
        f"/internal/releases/{uuid.uuid4()}", headers=world.auth("service", "svc:intake", aud=["secrets_broker"])
    )
    assert missing.status_code == 404


def test_smtp_down_for_30s_delays_the_mail_but_loses_and_duplicates_none(
    mail_worker: Proc, world: Any, stack_env: dict[str, str], stack: Any
) -> None:
    suffix = uuid.uuid4().hex[:8]
    approvers = [f"owner-{suffix}@acme.example"]
    retries_before = mail_worker.log_text().count("notification_retry")
    stack.stop("mail")
    try:
        client_id = _client(world, approvers)
        _purchase_needing_approval(world, client_id)
        time.sleep(30)
        assert mail_worker.log_text().count("notification_retry") > retries_before, "no retry while SMTP was down"
    finally:
        stack.start("mail")
    mails = wait_for(stack_env, approvers, 1, 60)
    assert len(mails) == 1
    time.sleep(5)
    assert len(messages(stack_env, *approvers)) == 1
