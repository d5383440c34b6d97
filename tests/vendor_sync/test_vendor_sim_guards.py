"""vendor_sim is dev-only: it refuses to start outside MSP_ENV=dev, and `/_sim` takes only a loopback
Host and JSON writes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from starlette.testclient import TestClient

from vendor_sim.app import DevOnlyRefused, create_app, require_dev_env


@pytest.fixture
def sim() -> TestClient:
    return TestClient(create_app(latency_ms=0), base_url="http://127.0.0.1:9")


@pytest.mark.parametrize("env", [{}, {"MSP_ENV": "production"}, {"MSP_ENV": "test"}])
def test_refuses_outside_dev(env: dict[str, str]) -> None:
    with pytest.raises(DevOnlyRefused, match="MSP_ENV=dev"):
        require_dev_env(env)


def test_the_app_does_not_start_outside_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSP_ENV", "production")
    with pytest.raises(DevOnlyRefused, match="vendor_sim refuses to start: MSP_ENV is 'production'"):
        with TestClient(create_app()):
            pass


def test_uvicorn_exits_outside_dev() -> None:
    env = {**os.environ, "MSP_ENV": "production"}
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "vendor_sim.app:app", "--host", "127.0.0.1", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "it runs only with MSP_ENV=dev" in result.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8004", "localhost:8004", "[::1]:8004"])
def test_loopback_hosts_reach_the_control_api(sim: TestClient, host: str) -> None:
    assert sim.get("/_sim/faults", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8004", "127.0.0.1.evil.example", "10.0.0.5:8004", ""])
def test_other_hosts_are_refused(sim: TestClient, host: str) -> None:
    response = sim.post("/_sim/reset", headers={"Host": host})
    assert response.status_code == 403
    assert "loopback Host" in response.json()["detail"]


def test_vendor_paths_answer_any_host(sim: TestClient) -> None:
    assert sim.get("/healthz", headers={"Host": "sim.internal"}).status_code == 200


def test_a_form_post_is_refused(sim: TestClient) -> None:
    response = sim.post("/_sim/latency", data={"ms": "5"})
    assert response.status_code == 415
    assert sim.get("/_sim/latency").json() == {"ms": 0.0}
    body = b'{"mode": "status", "status": 500}'
    plain = sim.post("/_sim/faults", content=body, headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415


def test_json_and_empty_writes_are_accepted(sim: TestClient) -> None:
    assert sim.post("/_sim/latency", json={"ms": 5}).json() == {"ms": 5.0}
    assert sim.post("/_sim/reset").status_code == 200
    assert sim.delete("/_sim/requests").status_code == 200
