"""The broker keeps secrets and wrapping tokens out of its own sinks: tables, events, mail, logs, errors.

A canary secret with awkward characters goes through create, release, third-party release, rotation,
unwrap, reveal and refused input; then every row of the broker's schema (read as the superuser), the
outbox, the mail sink and the captured process output are searched for the canary and for each
issued wrapping token, in plain, base64, JSON-escaped, URL-encoded and hex forms.
"""

from __future__ import annotations

import io
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "secrets_broker"))

import broker_fixtures
from broker_helpers import STRONG_REASON, World
from sqlalchemy import text

from mspkit.leakcheck import find_leaks

broker_app = broker_fixtures.broker_app
broker = broker_fixtures.broker
broker_live = broker_fixtures.broker_live
world = broker_fixtures.world
engine = broker_fixtures.engine
vault_addr = broker_fixtures.vault_addr

pytestmark = pytest.mark.slow

TABLES = (
    "credentials",
    "releases",
    "pending_revocations",
    "tombstones",
    "audit_entries",
    "audit_anchor",
    "disclosures",
    "outbox",
    "dead_letters",
    "job_attempts",
)


def _dump_schema(admin_engine: Any) -> str:
    parts = []
    with admin_engine.connect() as conn:
        for table in TABLES:
            for row in conn.execute(text(f"SELECT * FROM secrets_broker.{table}")):
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


@pytest.fixture
def broker_logs() -> Iterator[io.StringIO]:
    """Every structlog and stdlib log line of this test, at DEBUG (loggers keep the stream they got)."""
    from mspkit.logging import configure_logging
    from secrets_broker.settings import get_settings

    settings = get_settings()
    buffer = io.StringIO()
    real_stderr = sys.stderr
    sys.stderr = buffer
    try:
        configure_logging("secrets_broker", "DEBUG", secrets=settings.secret_values())
    finally:
        sys.stderr = real_stderr
    yield buffer
    configure_logging("secrets_broker", settings.log_level, secrets=settings.secret_values())


def test_no_secret_or_token_in_any_sink(
    world: World, admin_engine: Any, broker_logs: io.StringIO
) -> None:
    canary = f"Ca/na+ry=\"{uuid.uuid4().hex}\"&ü"
    notes = f"notes {uuid.uuid4().hex} <door code>"
    client_id = world.new_client()
    credential_id, _ = world.new_credential(client_id, secret=canary, notes=notes)
    sub = f"tech-{uuid.uuid4().hex[:8]}"
    task_id = world.new_task(client_id, assignee=sub, credential_ids=[credential_id])
    responses: list[str] = []

    granted = world.release(sub, task_id, credential_id)
    assert granted.status_code == 201
    tokens = [granted.json()["wrap_token"]]
    responses.append(granted.text)

    contact = f"vendor-{uuid.uuid4().hex[:8]}@example.net"
    approval_id = world.request_approval(
        task_id, credential_ids=[credential_id], categories=["credentials"], contact_email=contact
    )
    world.decide_approval(approval_id, client_id, "approved")
    mailed = world.release(sub, task_id, credential_id, approval_id=approval_id)
    assert mailed.status_code == 201 and mailed.json()["wrap_token"] is None
    responses.append(mailed.text)
    mail = world.mails_to(contact)[0].as_string()
    tokens.append(mail.split("/reveal#", 1)[1].split()[0])

    rotated = f"rot-{canary}"
    rotate = world.broker.put(
        f"/v1/credentials/{credential_id}/secret",
        headers=world.tech(sub),
        json={"task_id": str(task_id), "reason": STRONG_REASON, "secret": rotated},
    )
    assert rotate.status_code == 200
    responses.append(rotate.text)
    # Refused input never echoes the secret it carried.
    bad = world.broker.post(
        "/v1/credentials",
        headers=world.admin,
        json={"client_id": str(client_id), "kind": "password", "owner": "client", "category": "isp",
              "name": "bad\u202ename", "username": "u", "secret": canary, "notes": notes},
    )
    assert bad.status_code == 422
    responses.append(bad.text)
    too_long = world.broker.post(
        "/v1/credentials",
        headers=world.admin,
        json={"client_id": str(client_id), "kind": "password", "owner": "client", "category": "isp",
              "name": "n", "username": "u", "secret": canary * 400},
    )
    assert too_long.status_code == 422
    responses.append(too_long.text)
    listed = world.broker.get("/v1/credentials", params={"client_id": str(client_id)}, headers=world.admin)
    responses.append(listed.text)
    responses.append(world.broker.get("/v1/audit", params={"client_id": str(client_id)}, headers=world.admin).text)
    responses.append(world.broker.get("/v1/disclosures", params={"format": "csv"}, headers=world.admin).text)

    # Unwrap and reveal: the plaintext reaches the recipient's 200 and no sink; refusals echo nothing.
    opened = world.unwrap(sub, tokens[0])
    assert opened.status_code == 200 and opened.json()["secret"] == canary
    assert opened.headers["cache-control"] == "no-store"
    revealed = world.reveal(tokens[1])
    # A reveal reads the credential when the code is used (nothing is wrapped at release): the rotated one.
    assert revealed.status_code == 200 and revealed.json()["secret"] == rotated
    for refused in (world.unwrap(sub, tokens[0]), world.reveal(tokens[1]), world.unwrap("tech-other", tokens[0])):
        assert refused.status_code in (403, 410)
        responses.append(refused.text)

    # Positive control: the capture does see what the broker's loggers write.
    from mspkit.logging import get_logger

    marker = uuid.uuid4().hex
    get_logger("secrets_broker.test").warning("capture_control", marker=marker)
    logged = broker_logs.getvalue()
    assert marker in logged
    sinks = {
        "database": _dump_schema(admin_engine),
        "mail": mail,
        "responses": "\n".join(responses),
        "logs": logged,
    }
    for sink, haystack in sinks.items():
        for value in (canary, notes, rotated):
            assert find_leaks(haystack, value) == [], f"secret found in {sink}"
        if sink != "mail":
            for token in tokens:
                if sink == "responses" and token == tokens[0]:
                    continue  # the technician's own 201 carries their token, by contract
                assert find_leaks(haystack, token) == [], f"wrap token found in {sink}"
