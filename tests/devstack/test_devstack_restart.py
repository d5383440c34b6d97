"""Per-part control on the infra stack, and OpenBao's state across a kill and across `down` + `up`."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest

from mspctl.bao import API_ROLE, is_bootstrapped, is_unsealed, mint_wrapped_secret_id
from mspctl.layout import Layout
from mspctl.stack import Stack

pytestmark = pytest.mark.timeout(120)


def _wait_new_pid(stack, part: str, old: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = next(s for s in stack.status() if s.name == part)
        if entry.state == "RUNNING" and entry.pid and entry.pid != old:
            return entry.pid
        time.sleep(0.2)
    raise AssertionError(f"{part} did not come back")


def _bao(addr: str, token: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=addr + "/v1/", headers={"X-Vault-Token": token} if token else {}, timeout=10)


def _login(root: Path, addr: str) -> str:
    """An AppRole login the way the broker does it: launcher-minted wrapped secret id, unwrap, login."""
    role_id, wrapped = mint_wrapped_secret_id(root, API_ROLE)
    with _bao(addr, wrapped) as c:
        secret_id = c.post("sys/wrapping/unwrap").json()["data"]["secret_id"]
    with _bao(addr) as c:
        resp = c.post("auth/approle/login", json={"role_id": role_id, "secret_id": secret_id})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["auth"]["client_token"])


def _wait_unsealed(addr: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not is_unsealed(addr):
        assert time.monotonic() < deadline, "openbao did not unseal itself"
        time.sleep(0.2)


def test_killed_openbao_unseals_itself_and_keeps_everything(mspctl, infra):
    layout = Layout(infra.dir)
    addr = infra.env["MSP_VAULT_ADDR"]
    launcher = layout.launcher_token.read_text()
    token = _login(infra.dir, addr)
    path = f"msp-kv/data/clients/{uuid.uuid4()}/credentials/{uuid.uuid4()}"
    with _bao(addr, token) as c:
        assert c.post(path, json={"data": {"secret": "before the kill"}}).status_code == 200
    old = infra.stack.pid("openbao")

    result = mspctl(infra.dir, "kill", "openbao")

    assert result.returncode == 0, result.stderr
    _wait_new_pid(infra.stack, "openbao", old)
    _wait_unsealed(addr)
    # Nothing was re-made: the same launcher token works, the broker's token and the secret survived.
    assert layout.launcher_token.read_text() == launcher
    assert is_bootstrapped(addr, layout)
    with _bao(addr, token) as c:
        assert c.get(path).json()["data"]["data"] == {"secret": "before the kill"}
    assert _login(infra.dir, addr)


def test_down_and_up_keep_every_secret_and_change_nothing():
    root = Path(tempfile.mkdtemp(prefix="mspctl-bao-"))
    said: list[str] = []
    stack = Stack(root, ports="auto", externals={}, say=said.append)
    layout = Layout(root)
    try:
        stack.up(only=["openbao"])
        assert "openbao: initialised (raft storage, static seal)" in said
        addr = stack.env["MSP_VAULT_ADDR"]
        root_token, launcher = layout.root_token.read_text(), layout.launcher_token.read_text()
        seal_key, recovery = layout.bao_seal_key.read_bytes(), layout.bao_recovery_key.read_text()
        token = _login(root, addr)
        path = f"msp-kv/data/clients/{uuid.uuid4()}/credentials/{uuid.uuid4()}"
        with _bao(addr, token) as c:
            assert c.post(path, json={"data": {"secret": "kept across down and up"}}).status_code == 200

        stack.down()
        assert not is_unsealed(addr)
        said.clear()
        stack.up(only=["openbao"])

        addr = stack.env["MSP_VAULT_ADDR"]
        # No second init and nothing to bootstrap: the server came back with all of it.
        assert not [line for line in said if line.startswith("openbao: ")], said
        assert layout.root_token.read_text() == root_token
        assert layout.launcher_token.read_text() == launcher
        assert layout.bao_seal_key.read_bytes() == seal_key
        assert layout.bao_recovery_key.read_text() == recovery
        with _bao(addr, token) as c:
            assert c.get(path).json()["data"]["data"] == {"secret": "kept across down and up"}
        with _bao(addr, _login(root, addr)) as c:  # the secret-id flow works after the restart
            assert c.get(path).json()["data"]["data"] == {"secret": "kept across down and up"}
    finally:
        stack.down()
        shutil.rmtree(root, ignore_errors=True)


def test_stop_and_start_one_part(mspctl, infra):
    assert mspctl(infra.dir, "stop", "redis").returncode == 0
    assert next(s for s in infra.stack.status() if s.name == "redis").state == "STOPPED"
    result = mspctl(infra.dir, "start", "redis")
    assert result.returncode == 0, result.stderr
    assert next(s for s in infra.stack.status() if s.name == "redis").state == "RUNNING"
