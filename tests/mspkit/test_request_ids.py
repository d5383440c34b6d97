"""Request ids and the access log: every response carries `X-Request-ID`, every request logs one line."""

from __future__ import annotations

import io
import json
import re
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from fastapi import Depends
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict

from mspkit import requestid
from mspkit.app import create_app
from mspkit.auth import CurrentUser, Principal, require_roles
from mspkit.logging import configure_logging, get_logger
from mspkit.outbox import make_envelope
from mspkit.settings import KitSettings

NEW_ID = re.compile(r"[0-9a-f]{32}")
ACCESS_KEYS = set("event method route status duration_ms sub request_id service level timestamp".split())


class _Settings(KitSettings):
    service_name = "kit"


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str


TOKEN = "tok-" + uuid.uuid4().hex  # a bearer token the app's cache already accepted


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = create_app(service="kit", settings=_Settings())
    app.state.verified_tokens.put(TOKEN, Principal(sub="tech-7", role="technician"))
    log = get_logger("kit.routes")

    @app.get("/v1/things/{thing_id}")
    def read_thing(thing_id: str, user: CurrentUser) -> dict[str, str]:
        log.info("thing_read")  # a line of the request's own: it carries the request id too
        return {"id": thing_id, "sub": user.sub}

    @app.get("/v1/admin-only", dependencies=[Depends(require_roles("admin"))])
    def admin_only() -> dict[str, str]:
        return {}

    @app.post("/v1/notes")
    def create_note(note: Note) -> dict[str, str]:
        return {"text": note.text}

    @app.get("/v1/boom")
    def boom() -> None:
        raise RuntimeError("unhandled")

    @app.get("/v1/event")
    def event() -> dict[str, Any]:
        return make_envelope(type="kit.test", client_id=None, aggregate_id=None, data={})

    return TestClient(app, raise_server_exceptions=False)


class Logs:
    """The JSON lines logged while the fixture was active."""

    def __init__(self, buffer: io.StringIO) -> None:
        self.buffer = buffer

    def text(self) -> str:
        return self.buffer.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def access(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == "http_access"]

    def one_access(self, request_id: str) -> dict[str, Any]:
        [line] = [line for line in self.access() if line["request_id"] == request_id]
        return line


def _capture(level: str) -> Iterator[Logs]:
    buffer = io.StringIO()
    real_stderr = sys.stderr
    sys.stderr = buffer  # loggers keep the stream they got at configuration
    try:
        configure_logging("kit", level)
    finally:
        sys.stderr = real_stderr
    yield Logs(buffer)
    configure_logging("kit", "INFO")


@pytest.fixture
def logs() -> Iterator[Logs]:
    yield from _capture("INFO")


@pytest.fixture
def debug_logs() -> Iterator[Logs]:
    yield from _capture("DEBUG")


def test_a_well_formed_id_is_echoed_and_carried_by_every_line_of_the_request(client, logs):
    rid = "req_2024-01:ab-" + uuid.uuid4().hex[:8]
    response = client.get("/v1/things/t1", headers={"Authorization": f"Bearer {TOKEN}", "X-Request-ID": rid})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == rid
    own = [line for line in logs.lines() if line.get("event") == "thing_read"]
    assert [line["request_id"] for line in own] == [rid]
    assert logs.one_access(rid)["status"] == 200


@pytest.mark.parametrize(
    "sent",
    [
        "has space",
        "x" * 129,
        "",
        'quote"d',
        "semi;colon",
        "a/b",
        # Credentials pasted by mistake: a JWT and Vault/OpenBao tokens all hold a dot.
        "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln",
        "hvs.CAESIJ" + "a" * 20,
        "s." + "A" * 24,
    ],
)
def test_a_malformed_oversized_or_token_shaped_id_is_replaced(client, logs, sent):
    response = client.get("/v1/things/t1", headers={"Authorization": f"Bearer {TOKEN}", "X-Request-ID": sent})
    assert response.status_code == 200
    replaced = response.headers["x-request-id"]
    assert NEW_ID.fullmatch(replaced) and replaced != sent
    assert logs.one_access(replaced)["status"] == 200
    if sent:
        assert sent not in logs.text()


def test_without_an_id_every_response_gets_a_fresh_one(client, logs):
    first = client.get("/healthz").headers["x-request-id"]
    second = client.get("/healthz").headers["x-request-id"]
    assert NEW_ID.fullmatch(first) and NEW_ID.fullmatch(second) and first != second


def test_the_largest_well_formed_id_is_kept(client):
    rid = "A" * 128
    assert client.get("/healthz", headers={"X-Request-ID": rid}).headers["x-request-id"] == rid


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "route", "sub"),
    [
        ("GET", "/v1/things/t1", {}, 401, "/v1/things/{thing_id}", None),
        ("GET", "/v1/admin-only", {"auth": True}, 403, "/v1/admin-only", "tech-7"),
        ("GET", "/v1/no-such/route", {}, 404, "unmatched", None),
        ("DELETE", "/v1/notes", {}, 405, "/v1/notes", None),
        ("POST", "/v1/notes", {"content": b"x" * (1024 * 1024 + 1)}, 413, "unmatched", None),
        ("POST", "/v1/notes", {"json": {"text": "x", "status": "done"}}, 422, "/v1/notes", None),
        ("GET", "/v1/boom", {}, 500, "/v1/boom", None),
    ],
)
def test_error_responses_carry_the_id_and_are_logged(client, logs, method, path, kwargs, status, route, sub):
    rid = "err-" + uuid.uuid4().hex
    headers = {"X-Request-ID": rid, "content-type": "application/json"}
    if kwargs.pop("auth", False):
        headers["Authorization"] = f"Bearer {TOKEN}"
    response = client.request(method, path, headers=headers, **kwargs)
    assert response.status_code == status
    assert response.headers["x-request-id"] == rid
    line = logs.one_access(rid)
    assert (line["method"], line["route"], line["status"], line["sub"]) == (method, route, status, sub)


def test_the_access_line_holds_exactly_its_fields_and_no_query_path_value_or_token(client, logs):
    rid = "fields-" + uuid.uuid4().hex
    thing = "thing-" + uuid.uuid4().hex
    cursor = "CURSOR" + uuid.uuid4().hex
    response = client.get(
        f"/v1/things/{thing}",
        params={"cursor": cursor, "email": "someone@example.org"},
        headers={"Authorization": f"Bearer {TOKEN}", "X-Request-ID": rid},
    )
    assert response.status_code == 200 and response.json()["id"] == thing
    line = logs.one_access(rid)
    assert set(line) == ACCESS_KEYS
    assert line["event"] == "http_access"
    assert (line["method"], line["route"], line["sub"]) == ("GET", "/v1/things/{thing_id}", "tech-7")
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["service"] == "kit"
    everything = logs.text()
    for absent in (thing, cursor, "someone@example.org", "example.org", TOKEN, "Bearer"):
        assert absent not in everything


def test_probes_carry_the_id_but_are_logged_at_debug_only(client, logs, debug_logs):
    rid = "probe-" + uuid.uuid4().hex
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path, headers={"X-Request-ID": rid}).headers["x-request-id"] == rid
    # `logs` was configured at INFO, then `debug_logs` at DEBUG: the last configuration writes.
    probes = [line for line in debug_logs.access() if line["request_id"] == rid]
    assert sorted(line["route"] for line in probes) == ["/healthz", "/metrics", "/readyz"]
    assert {line["level"] for line in probes} == {"debug"}


def test_probes_are_not_logged_at_info(client, logs):
    rid = "probe-" + uuid.uuid4().hex
    assert client.get("/healthz", headers={"X-Request-ID": rid}).status_code == 200
    client.get("/v1/things/t1", headers={"X-Request-ID": rid})  # a 401 that is logged
    assert [line["route"] for line in logs.access() if line["request_id"] == rid] == ["/v1/things/{thing_id}"]


def test_an_event_written_during_a_request_carries_its_id(client):
    rid = "event-" + uuid.uuid4().hex
    envelope = client.get("/v1/event", headers={"X-Request-ID": rid}).json()
    assert envelope[requestid.ENVELOPE_KEY] == rid
    # The contract's six keys are untouched; the id is one more key beside them.
    contract = {"event_id", "type", "occurred_at", "client_id", "aggregate_id", "data"}
    assert set(envelope) == contract | {requestid.ENVELOPE_KEY}
    assert make_envelope(type="kit.test", client_id=None, aggregate_id=None, data={})[requestid.ENVELOPE_KEY] is None


def test_a_binding_is_undone_exactly_and_nests():
    assert requestid.current_request_id() is None
    outer = requestid.enter("outer")
    inner = requestid.enter("inner")
    assert requestid.current_request_id() == "inner"
    assert structlog.contextvars.get_contextvars()["request_id"] == "inner"
    inner.leave()
    assert requestid.current_request_id() == "outer"
    assert structlog.contextvars.get_contextvars()["request_id"] == "outer"
    outer.leave()
    assert requestid.current_request_id() is None
    assert "request_id" not in structlog.contextvars.get_contextvars()


def test_a_message_carries_its_id_in_a_header_or_in_its_envelope():
    assert requestid.from_message("job-1", ["run-id"]) == "job-1"
    assert requestid.from_message(None, [{requestid.ENVELOPE_KEY: "event-1"}]) == "event-1"
    assert requestid.from_message(None, [{requestid.ENVELOPE_KEY: "bad id"}]) is None
    assert requestid.from_message(None, ["run-id"]) is None
    assert requestid.from_message(None, None) is None
