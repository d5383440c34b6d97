"""Each service answers with `X-Request-ID` and writes one access-log line per request, holding no secret.

The three real apps run in-process. A request is made once without a token (401) and once as an
admin for a missing object (404), with a query string that a careless access log would copy.
"""

from __future__ import annotations

import importlib
import io
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

SERVICES = [
    ("intake", "intake.main", "intake.settings", "/v1/clients/{id}", "/v1/clients/{client_id}"),
    ("vendor_sync", "vendor_sync.api", "vendor_sync.settings", "/v1/sync-runs/{id}", "/v1/sync-runs/{run_id}"),
    (
        "secrets_broker",
        "secrets_broker.main",
        "secrets_broker.settings",
        "/v1/credentials/{id}",
        "/v1/credentials/{credential_id}",
    ),
]


@pytest.fixture
def captured() -> Iterator[Callable[[str, str], io.StringIO]]:
    """Factory: point a service's logging at a buffer (at INFO); its own configuration is restored after."""
    from mspkit.logging import configure_logging

    restore: list[tuple[str, Any]] = []

    def _capture(service: str, settings_module: str) -> io.StringIO:
        settings = importlib.import_module(settings_module).get_settings()
        buffer = io.StringIO()
        real_stderr = sys.stderr
        sys.stderr = buffer  # loggers keep the stream they got at configuration
        try:
            configure_logging(service, "INFO", secrets=settings.secret_values())
        finally:
            sys.stderr = real_stderr
        restore.append((service, settings))
        return buffer

    yield _capture
    for service, settings in restore:
        configure_logging(service, settings.log_level, secrets=settings.secret_values())


def _access_line(buffer: io.StringIO, request_id: str) -> dict[str, Any]:
    lines = []
    for raw in buffer.getvalue().splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if line.get("event") == "http_access" and line.get("request_id") == request_id:
            lines.append(line)
    assert len(lines) == 1, buffer.getvalue()[-2000:]
    return lines[0]


@pytest.mark.parametrize(("service", "app_module", "settings_module", "path", "route"), SERVICES)
def test_each_service_echoes_the_request_id_and_logs_one_clean_access_line(
    captured: Callable[[str, str], io.StringIO],
    auth: Callable[..., dict[str, str]],
    service: str,
    app_module: str,
    settings_module: str,
    path: str,
    route: str,
) -> None:
    app = importlib.import_module(app_module).app
    logs = captured(service, settings_module)
    client = TestClient(app, raise_server_exceptions=False)
    object_id = str(uuid.uuid4())
    cursor = "CURSOR" + uuid.uuid4().hex
    sub = f"admin-{uuid.uuid4().hex[:8]}"
    headers = auth("admin", sub)
    token = headers["Authorization"].removeprefix("Bearer ")

    anonymous = client.get(path.format(id=object_id), params={"cursor": cursor}, headers={"X-Request-ID": "anon-1"})
    assert anonymous.status_code == 401
    assert anonymous.headers["x-request-id"] == "anon-1"

    rid = f"{service}-{uuid.uuid4().hex}"
    missing = client.get(path.format(id=object_id), params={"cursor": cursor}, headers={**headers, "X-Request-ID": rid})
    assert missing.status_code == 404, missing.text
    assert missing.headers["x-request-id"] == rid

    line = _access_line(logs, rid)
    assert (line["service"], line["method"], line["route"]) == (service, "GET", route)
    assert (line["status"], line["sub"]) == (404, sub)
    assert _access_line(logs, "anon-1")["status"] == 401
    assert _access_line(logs, "anon-1")["sub"] is None
    text = logs.getvalue()
    for absent in (object_id, cursor, token, token.split(".")[1]):
        assert absent not in text
