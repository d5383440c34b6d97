"""OpenBao sealed, stalled or stopped during releases: 503 and no secret.

Each test runs its own throwaway OpenBao (never the shared one), configured, initialised and
bootstrapped the way the dev stack does it (raft storage, static seal), and points the broker app's
gateway at it. An explicit seal is undone with the recovery key that init left in the throwaway's dir;
a restart needs nothing: the static seal unseals the server by itself.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mspctl.ports import free_port

sys.path.insert(0, str(Path(__file__).parents[1] / "secrets_broker"))

import broker_fixtures
from broker_helpers import MintingSource, World, unwrap_at_vault
from sqlalchemy import text

# The broker's fixtures (tests/fault has no broker conftest).
broker_app = broker_fixtures.broker_app
broker = broker_fixtures.broker
broker_live = broker_fixtures.broker_live
world = broker_fixtures.world
engine = broker_fixtures.engine
vault_addr = broker_fixtures.vault_addr

pytestmark = pytest.mark.slow


class ThrowawayBao:
    """A private OpenBao like the stack's, with the broker's mount, policies, AppRoles and launcher token."""

    def __init__(self, root: Path) -> None:
        from mspctl import bao
        from mspctl.layout import Layout

        self.root = root
        self.layout = Layout(root)
        root.mkdir(parents=True, exist_ok=True)
        self.layout.bao_dir.mkdir(mode=0o700, exist_ok=True)
        self.port = free_port()
        bao.write_config(self.layout, self.port, free_port(avoid=[self.port]))
        bao.ensure_seal_key(self.layout)
        self.addr = f"http://127.0.0.1:{self.port}"
        self.log = root / "bao.out"
        self.start()
        bao.initialize(self.addr, self.layout)
        self.root_token = self.layout.root_token.read_text().strip()
        bao.bootstrap(self.addr, self.root_token, self.layout)
        (root / "env").write_text(f"MSP_VAULT_ADDR={self.addr}\n")

    def start(self) -> None:
        from mspctl import bao

        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(bao.server_command(self.layout), stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while not (bao.is_serving(self.addr) or self.proc.poll() is not None):
            assert time.monotonic() < deadline, "the throwaway OpenBao did not answer"
            time.sleep(0.1)

    def seal(self) -> None:
        r = requests.put(f"{self.addr}/v1/sys/seal", headers={"X-Vault-Token": self.root_token}, timeout=5)
        assert r.status_code == 204, r.text

    def unseal(self) -> None:
        key = self.layout.bao_recovery_key.read_text().strip()
        r = requests.put(f"{self.addr}/v1/sys/unseal", json={"key": key}, timeout=5)
        assert r.json()["sealed"] is False
        from mspctl import bao

        # Unsealed is not yet serving: the raft node first takes the leadership again.
        bao.wait_unsealed(self.addr, timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class StallingProxy:
    """A TCP proxy in front of Vault that can stop forwarding (Vault slow: accepted, never answered)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.stalled = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.addr = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        sockets = [client, upstream]
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select(sockets, [], [], 0.2)
                if self.stalled.is_set():
                    continue
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        finally:
            client.close()
            upstream.close()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()


@pytest.fixture
def throwaway(tmp_path: Path) -> Iterator[ThrowawayBao]:
    """A throwaway OpenBao for this test."""
    server = ThrowawayBao(tmp_path / "stack")
    yield server
    server.stop()


def _use_vault(broker_app: Any, addr: str, devstack: Path) -> Any:
    from secrets_broker.deps import gateway_dep
    from secrets_broker.vault.gateway import VaultGateway

    gw = VaultGateway(addr=addr, role="msp-broker-api", source=MintingSource(devstack), timeout_s=2.5)
    gw.login()
    broker_app.dependency_overrides[gateway_dep] = lambda: gw
    return gw


def _ready(world: World) -> tuple[Any, Any, str, Any, str]:
    return world.ready()


def _releases(engine: Any, task_id: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM releases WHERE task_id = :t"), {"t": task_id}).scalar_one())


def test_sealed_vault_is_503_and_no_secret(
    world: World, broker_app: Any, engine: Any, throwaway: ThrowawayBao
) -> None:
    _use_vault(broker_app, throwaway.addr, throwaway.root)
    _, credential_id, secret, task_id, sub = _ready(world)

    throwaway.seal()
    r = world.release(sub, task_id, credential_id)

    assert r.status_code == 503
    assert r.json()["error"] == "unavailable"
    assert secret not in r.text and "wrap_token" not in r.json()
    assert _releases(engine, task_id) == 0

    throwaway.unseal()
    ok = world.release(sub, task_id, credential_id)
    assert ok.status_code == 201
    assert unwrap_at_vault(throwaway.addr, ok.json()["wrap_token"]).json()["data"]["data"]["secret"] == secret


def test_stopped_vault_is_503_and_no_secret(
    world: World, broker_app: Any, engine: Any, throwaway: ThrowawayBao
) -> None:
    _use_vault(broker_app, throwaway.addr, throwaway.root)
    _, credential_id, secret, task_id, sub = _ready(world)

    throwaway.stop()
    r = world.release(sub, task_id, credential_id)

    assert r.status_code == 503
    assert secret not in r.text and "wrap_token" not in r.json()
    assert _releases(engine, task_id) == 0
    # Storing a credential fails the same way, leaving nothing active.
    created = world.broker.post(
        "/v1/credentials",
        headers=world.admin,
        json={
            "client_id": str(world.new_client()),
            "kind": "password",
            "owner": "client",
            "category": "isp",
            "name": "x",
            "username": "y",
            "secret": "never-stored",
        },
    )
    assert created.status_code == 503

    # Started again, it unseals itself and still holds the secret; the gateway's token survived too.
    throwaway.start()
    from mspctl import bao

    bao.wait_unsealed(throwaway.addr, timeout=30)
    ok = world.release(sub, task_id, credential_id)
    assert ok.status_code == 201, ok.text
    assert unwrap_at_vault(throwaway.addr, ok.json()["wrap_token"]).json()["data"]["data"]["secret"] == secret


def test_slow_vault_is_503_and_no_secret(
    world: World, broker_app: Any, engine: Any, throwaway: ThrowawayBao
) -> None:
    proxy = StallingProxy(throwaway.port)
    try:
        gw = _use_vault(broker_app, proxy.addr, throwaway.root)
        _, credential_id, secret, task_id, sub = _ready(world)

        # Every Vault call from here on: the timeout it was sent with, and how it ended.
        calls: list[tuple[Any, str]] = []
        send = gw._session.request

        def recording(*args: Any, **kwargs: Any) -> Any:
            try:
                response = send(*args, **kwargs)
            except Exception as exc:
                calls.append((kwargs.get("timeout"), type(exc).__name__))
                raise
            calls.append((kwargs.get("timeout"), str(response.status_code)))
            return response

        gw._session.request = recording  # type: ignore[method-assign]
        proxy.stalled.set()
        r = world.release(sub, task_id, credential_id)

        assert r.status_code == 503
        assert r.json()["error"] == "unavailable"
        assert secret not in r.text
        assert _releases(engine, task_id) == 0
        # The stalled proxy never answered: each call ended on the gateway's own 2.5 s read timeout,
        # not on hvac's 30 s default nor on no timeout at all.
        assert calls and set(calls) == {(2.5, "ReadTimeout")}
    finally:
        proxy.close()


def test_anchor_check_and_set_on_a_private_vault(broker_app: Any, throwaway: ThrowawayBao) -> None:
    from secrets_broker.vault.gateway import VaultGateway

    gw = VaultGateway(addr=throwaway.addr, role="msp-broker-api", source=MintingSource(throwaway.root))
    gw.login()
    assert gw.read_anchors() == []
    assert gw.write_anchor(index=10, hash_="a" * 64, anchored_at="2025-01-01T00:00:00Z")
    # Never backwards, and a concurrent writer's newer anchor wins the check-and-set.
    assert not gw.write_anchor(index=5, hash_="b" * 64, anchored_at="2025-01-01T00:00:01Z")
    assert gw.write_anchor(index=11, hash_="c" * 64, anchored_at="2025-01-01T00:00:02Z")
    assert [(a["index"], a["hash"][0]) for a in gw.read_anchors()] == [(10, "a"), (11, "c")]
    stale = requests.post(
        f"{throwaway.addr}/v1/msp-kv/data/broker/audit-anchor",
        headers={"X-Vault-Token": gw._client.token},
        json={"data": {"index": 12, "hash": "d" * 64}, "options": {"cas": 1}},
        timeout=5,
    )
    assert stale.status_code == 400


def test_rotation_against_a_sealed_vault_is_audited_as_failed_and_changes_nothing(
    world: World, broker_app: Any, engine: Any, throwaway: ThrowawayBao
) -> None:
    import json
    import uuid

    gw = _use_vault(broker_app, throwaway.addr, throwaway.root)
    client_id, credential_id, secret, task_id, sub = _ready(world)
    body = {"task_id": str(task_id), "reason": "customer ticket 4711: rotate", "secret": f"new-{uuid.uuid4().hex}"}

    throwaway.seal()
    r = world.broker.put(f"/v1/credentials/{credential_id}/secret", headers=world.tech(sub), json=body)

    assert (r.status_code, r.json()["error"]) == (503, "unavailable")
    assert body["secret"] not in r.text
    with engine.connect() as conn:
        stages = [
            json.loads(canonical)["details"]
            for canonical in conn.execute(
                text(
                    "SELECT canonical FROM audit_entries WHERE credential_id = :c AND action = 'credential.rotated' "
                    "ORDER BY index"
                ),
                {"c": credential_id},
            ).scalars()
        ]
        version = conn.execute(
            text("SELECT vault_version FROM credentials WHERE id = :c"), {"c": credential_id}
        ).scalar_one()
    # Audited before Vault was asked; Vault's refusal recorded after it (sealed: it may not say more).
    assert [(s["stage"], s.get("written")) for s in stages] == [("authorized", None), ("failed", "unknown")]
    assert version == 1

    throwaway.unseal()
    from secrets_broker.vault.gateway import credential_path

    stored = unwrap_at_vault(throwaway.addr, gw.wrapped_read(credential_path(client_id, credential_id), ttl_s=30).token)
    assert stored.json()["data"]["data"]["secret"] == secret
    assert stored.json()["data"]["metadata"]["version"] == 1
    # Unsealed, the same rotation goes through (the bootstrap's API policy allows the PATCH).
    ok = world.broker.put(f"/v1/credentials/{credential_id}/secret", headers=world.tech(sub), json=body)
    assert ok.status_code == 200, ok.text
