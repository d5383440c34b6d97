"""The Vault gateway against the private OpenBao: login checks, re-login, token loss, error mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hvac.exceptions as hvac_errors
import pytest
import requests
from broker_helpers import MintingSource, lookup_at_vault, unwrap_at_vault


def _gateway(vault_addr: str, source: Any, **kw: Any) -> Any:
    from secrets_broker.vault.gateway import VaultGateway

    return VaultGateway(addr=vault_addr, role="msp-broker-api", source=source, timeout_s=2.5, **kw)


def _revoke_own_token(gw: Any) -> None:
    # The default policy lets a token revoke itself: what an operator or a max TTL would do to it.
    gw._client.auth.token.revoke_self()


def test_login_with_a_wrapped_secret_id_and_no_root(vault_addr: str, devstack_dir: Path) -> None:
    gw = _gateway(vault_addr, MintingSource(devstack_dir))
    gw.login()
    assert gw.logged_in
    info = gw._client.auth.token.lookup_self()["data"]
    assert "root" not in info["policies"] and "msp-broker-api" in info["policies"]
    gw.check_ready()


def test_a_wrapped_secret_id_of_another_role_is_refused_unopened(vault_addr: str, devstack_dir: Path) -> None:
    from mspctl.bao import mint_wrapped_secret_id
    from secrets_broker.vault.errors import VaultLoginRefused
    from secrets_broker.vault.session import LauncherSecretId

    role_id, wrapped = mint_wrapped_secret_id(devstack_dir, "msp-broker-revoker")
    gw = _gateway(vault_addr, LauncherSecretId(role_id, wrapped))

    with pytest.raises(VaultLoginRefused):
        gw.login()

    assert not gw.logged_in
    # Not unwrapped: the wrapping token is still alive.
    assert lookup_at_vault(vault_addr, wrapped).status_code == 200


def test_a_wrapped_response_of_any_other_path_is_refused(vault_addr: str, devstack_dir: Path, world: Any) -> None:
    from secrets_broker.vault.errors import VaultLoginRefused
    from secrets_broker.vault.gateway import credential_path
    from secrets_broker.vault.session import LauncherSecretId

    client_id = world.new_client()
    credential_id, _ = world.new_credential(client_id)
    from secrets_broker.vault.gateway import get_gateway

    planted = get_gateway().wrapped_read(credential_path(client_id, credential_id), ttl_s=60)
    gw = _gateway(vault_addr, LauncherSecretId("some-role-id", planted.token))
    with pytest.raises(VaultLoginRefused):
        gw.login()
    assert unwrap_at_vault(vault_addr, planted.token).status_code == 200


def test_renewal_refused_logs_in_again_under_the_lock(vault_addr: str, devstack_dir: Path) -> None:
    source = MintingSource(devstack_dir)
    gw = _gateway(vault_addr, source)
    gw.login()
    old_token = gw._client.token
    gw.renew_once()
    assert gw._client.token == old_token  # a plain renewal keeps the token

    _revoke_own_token(gw)
    gw.renew_once()

    assert gw.logged_in and source.taken == 2
    assert gw._client.token != old_token
    gw.check_ready()


def test_a_revoked_token_found_on_demand_recovers_on_the_next_call(vault_addr: str, devstack_dir: Path) -> None:
    from secrets_broker.vault.errors import VaultDenied

    source = MintingSource(devstack_dir)
    gw = _gateway(vault_addr, source)
    gw.login()
    _revoke_own_token(gw)

    with pytest.raises(VaultDenied):
        gw.read_anchors()
    gw.read_anchors()
    assert source.taken == 2


def test_with_the_launchers_single_secret_id_a_lost_token_means_restart(vault_addr: str, devstack_dir: Path) -> None:
    from mspctl.bao import mint_wrapped_secret_id
    from secrets_broker.vault.errors import VaultError, VaultNotLoggedIn
    from secrets_broker.vault.session import LauncherSecretId

    lost: list[bool] = []
    gw = _gateway(
        vault_addr,
        LauncherSecretId(*mint_wrapped_secret_id(devstack_dir, "msp-broker-api")),
        on_token_lost=lambda: lost.append(True),
    )
    gw.login()
    _revoke_own_token(gw)

    gw.renew_once()

    assert gw.lost and lost == [True]
    with pytest.raises(VaultNotLoggedIn):
        gw.check_ready()
    with pytest.raises(VaultError) as excinfo:
        gw.read_anchors()
    assert excinfo.value.status_code == 503
    gw.renew_once()
    assert lost == [True]  # reported once


def test_no_fallback_to_vault_token_or_home_token_file(
    vault_addr: str, devstack_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from secrets_broker.vault.errors import VaultNotLoggedIn
    from secrets_broker.vault.session import LauncherSecretId

    root = (devstack_dir / "bao" / "root-token").read_text().strip()
    monkeypatch.setenv("VAULT_TOKEN", root)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".vault-token").write_text(root)

    gw = _gateway(vault_addr, LauncherSecretId(None, None))

    assert gw._client.token == ""
    with pytest.raises(VaultNotLoggedIn):
        gw.read_anchors()


def test_a_token_with_the_root_policy_is_refused(
    vault_addr: str, devstack_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from secrets_broker.vault.errors import VaultLoginRefused
    from secrets_broker.vault.session import check_policies

    check_policies(["default", "msp-broker-api"])
    with pytest.raises(VaultLoginRefused):
        check_policies(["default", "root"])
    # AppRole cannot mint root tokens, so simulate the lookup a misconfigured auth would return.
    gw = _gateway(vault_addr, MintingSource(devstack_dir))
    from hvac.api.auth_methods import Token

    monkeypatch.setattr(Token, "lookup_self", lambda self: {"data": {"policies": ["root"], "ttl": 60}})
    with pytest.raises(VaultLoginRefused):
        gw.login()
    assert not gw.logged_in and gw._client.token == ""


def test_pool_and_timeout_are_set(vault_addr: str) -> None:
    from secrets_broker.vault.session import LauncherSecretId

    gw = _gateway(vault_addr, LauncherSecretId(None, None), pool_size=40)
    assert gw._session.get_adapter(vault_addr)._pool_maxsize == 40
    assert gw._client.adapter._kwargs["timeout"] == 2.5
    assert gw._session.trust_env is False


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (requests.ReadTimeout("read timed out http://vault/v1/msp-kv/data/clients/x"), "VaultUnreachable"),
        (requests.ConnectionError("refused"), "VaultUnreachable"),
        (hvac_errors.VaultDown("Vault is sealed, on get http://vault/v1/x"), "VaultUnreachable"),
        (hvac_errors.RateLimitExceeded("slow down"), "VaultUnreachable"),
        (hvac_errors.InternalServerError("boom"), "VaultUnreachable"),
        (hvac_errors.Forbidden("permission denied, on get http://vault/v1/x"), "VaultDenied"),
        (hvac_errors.Unauthorized("no"), "VaultDenied"),
        (hvac_errors.InvalidPath("nothing"), "VaultNotFound"),
        (hvac_errors.InvalidRequest("check-and-set parameter did not match the current version"), "VaultCasMismatch"),
        (hvac_errors.InvalidRequest("bad"), "VaultRejected"),
    ],
)
def test_errors_are_translated_without_urls(raised: Exception, expected: str) -> None:
    from secrets_broker.vault.errors import VaultError, translate

    def boom() -> None:
        raise raised

    with pytest.raises(VaultError) as excinfo:
        translate(boom)
    assert type(excinfo.value).__name__ == expected
    assert excinfo.value.status_code == 503
    assert "http" not in str(excinfo.value) and excinfo.value.__cause__ is None


def test_readyz_follows_the_gateway(broker: Any, gateway: Any, devstack_dir: Path) -> None:
    from secrets_broker.vault.session import LauncherSecretId

    assert broker.get("/readyz").status_code == 200
    try:
        gateway.use_source(LauncherSecretId(None, None))
        _revoke_own_token(gateway)
        gateway.renew_once()
        r = broker.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["vault"].startswith("failed")
        assert r.json()["checks"]["database"] == "ok"
    finally:
        gateway.use_source(MintingSource(devstack_dir))
        gateway.login()
    assert broker.get("/readyz").status_code == 200


def test_a_spent_launcher_secret_id_is_not_retried(vault_addr: str, devstack_dir: Path) -> None:
    from mspctl.bao import mint_wrapped_secret_id
    from secrets_broker.vault.errors import VaultNotLoggedIn, VaultRejected
    from secrets_broker.vault.session import LauncherSecretId

    role_id, wrapped = mint_wrapped_secret_id(devstack_dir, "msp-broker-api")
    assert unwrap_at_vault(vault_addr, wrapped).status_code == 200  # someone used it first
    gw = _gateway(vault_addr, LauncherSecretId(role_id, wrapped))

    with pytest.raises(VaultRejected):
        gw.login()
    with pytest.raises(VaultNotLoggedIn):
        gw.login()
    assert gw.lost


def test_lifespan_logs_in_and_serves_readyz(broker_app: Any) -> None:
    from fastapi.testclient import TestClient

    with TestClient(broker_app) as client:
        r = client.get("/readyz")
        assert r.status_code == 200
        assert r.json()["checks"] == {"database": "ok", "vault": "ok"}
        assert client.get("/openapi.json").status_code == 200


def test_concurrent_callers_of_a_revoked_token_log_in_again_once(vault_addr: str, devstack_dir: Path) -> None:
    import threading

    from secrets_broker.vault.errors import VaultError

    source = MintingSource(devstack_dir)
    gw = _gateway(vault_addr, source)
    gw.login()
    _revoke_own_token(gw)
    outcomes: list[str] = []

    def call() -> None:
        try:
            gw.read_anchors()
            outcomes.append("ok")
        except VaultError:
            outcomes.append("503")

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert source.taken == 2
    assert len(outcomes) == 8
    gw.read_anchors()


def test_patch_merges_one_field_without_reading_and_never_creates(
    gateway: Any, vault_addr: str, devstack_dir: Path
) -> None:
    import uuid

    from vault_audit import VaultOp, vault_ops

    from secrets_broker.vault.errors import VaultNotFound
    from secrets_broker.vault.gateway import credential_path, data_path

    path = credential_path(uuid.uuid4(), uuid.uuid4())
    assert gateway.create_secret(path, {"secret": "first", "notes": "door code 1234"}) == 1

    assert gateway.patch_secret(path, {"secret": "second"}) == 2

    wrap = gateway.wrapped_read(path, ttl_s=30)
    assert unwrap_at_vault(vault_addr, wrap.token).json()["data"]["data"] == {
        "secret": "second",
        "notes": "door code 1234",
    }
    # One PATCH on the path: no plaintext read before it (as hvac's `kv.v2.patch` would do), no rewrite.
    assert vault_ops(devstack_dir, data_path(path)) == [
        VaultOp(operation="create", wrapped=False),
        VaultOp(operation="patch", wrapped=False),
        VaultOp(operation="read", wrapped=True),
    ]

    missing = credential_path(uuid.uuid4(), uuid.uuid4())
    with pytest.raises(VaultNotFound):
        gateway.patch_secret(missing, {"secret": "x"})
    assert not gateway.exists(missing)
