"""OpenBao: a real server (raft, static seal), its idempotent bootstrap, least-privilege roles, the
launcher token and `run-with-secret-id`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from mspctl.bao import API_ROLE, LAUNCHER_POLICY, REVOKER_ROLE, ROLE_SETTINGS, bootstrap, mint_wrapped_secret_id
from mspctl.layout import Layout

pytestmark = pytest.mark.timeout(120)


def _bao(infra, token: str | None = None) -> httpx.Client:
    headers = {"X-Vault-Token": token} if token else {}
    return httpx.Client(base_url=infra.env["MSP_VAULT_ADDR"] + "/v1/", headers=headers, timeout=10)


def _root(infra) -> str:
    return Layout(infra.dir).root_token.read_text().strip()


def _launcher(infra) -> str:
    return Layout(infra.dir).launcher_token.read_text().strip()


def _login(infra, role: str) -> str:
    role_id, wrapped = mint_wrapped_secret_id(infra.dir, role)
    with _bao(infra, wrapped) as c:
        secret_id = c.post("sys/wrapping/unwrap").json()["data"]["secret_id"]
    with _bao(infra) as c:
        resp = c.post("auth/approle/login", json={"role_id": role_id, "secret_id": secret_id})
    assert resp.status_code == 200, resp.text
    return resp.json()["auth"]["client_token"]


def test_token_and_key_files_are_private(infra):
    layout = Layout(infra.dir)
    for path in (layout.root_token, layout.launcher_token, layout.bao_seal_key, layout.bao_recovery_key):
        assert path.stat().st_mode & 0o777 == 0o600, path
    for path in (layout.bao_dir, layout.bao_data):
        assert path.stat().st_mode & 0o777 == 0o700, path
    assert layout.bao_seal_key.stat().st_size == 32


def test_it_is_a_real_server_with_raft_storage_and_the_static_seal(infra):
    with _bao(infra) as c:
        seal = c.get("sys/seal-status").json()
    assert (seal["type"], seal["storage_type"], seal["initialized"], seal["sealed"]) == ("static", "raft", True, False)
    with _bao(infra, _root(infra)) as c:
        mounts = c.get("sys/mounts").json()["data"]
    # Dev mode would have mounted `secret/`; this server holds only what bootstrap made.
    assert "secret/" not in mounts
    assert mounts["msp-kv/"]["type"] == "kv" and mounts["msp-kv/"]["options"]["version"] == "2"
    # The process supervisor watches is `bao server -config=<devstack>/bao.hcl`, nothing else on argv.
    argv = psutil.Process(infra.stack.pid("openbao")).cmdline()
    assert argv[1:] == ["server", f"-config={Layout(infra.dir).bao_hcl}"]
    assert Layout(infra.dir).bao_data.joinpath("vault.db").exists()


def _state(infra) -> dict:
    """What bootstrap manages, as OpenBao reports it (ids and accessors included)."""
    with _bao(infra, _root(infra)) as c:
        mounts = c.get("sys/mounts").json()["data"]
        auths = c.get("sys/auth").json()["data"]
        policies = {
            name: c.get(f"sys/policies/acl/{name}").json()["data"]["policy"]
            for name in (API_ROLE, REVOKER_ROLE, LAUNCHER_POLICY)
        }
        roles = {
            role: (c.get(f"auth/approle/role/{role}").json()["data"], c.get(f"auth/approle/role/{role}/role-id").json())
            for role in (API_ROLE, REVOKER_ROLE)
        }
    return {
        "mount": (mounts["msp-kv/"]["uuid"], mounts["msp-kv/"]["accessor"]),
        "approle": auths["approle/"]["accessor"],
        "policies": policies,
        "roles": {role: (settings, ids["data"]["role_id"]) for role, (settings, ids) in roles.items()},
        "launcher": Layout(infra.dir).launcher_token.read_text(),
    }


def test_bootstrap_twice_on_a_live_server_changes_nothing(infra):
    addr, layout = infra.env["MSP_VAULT_ADDR"], Layout(infra.dir)
    token = _login(infra, API_ROLE)
    path = f"msp-kv/data/clients/{uuid.uuid4()}/credentials/{uuid.uuid4()}"
    with _bao(infra, token) as c:
        assert c.post(path, json={"data": {"secret": "kept"}}).status_code == 200
    role_id, wrapped = mint_wrapped_secret_id(infra.dir, API_ROLE)
    before = _state(infra)

    assert bootstrap(addr, _root(infra), layout) == []
    assert bootstrap(addr, _root(infra), layout) == []

    assert _state(infra) == before
    with _bao(infra, token) as c:  # a token issued before still works, and the secret is there
        assert c.get(path).json()["data"]["data"] == {"secret": "kept"}
    with _bao(infra, wrapped) as c:  # and so does a secret id minted before
        secret_id = c.post("sys/wrapping/unwrap").json()["data"]["secret_id"]
    with _bao(infra) as c:
        assert c.post("auth/approle/login", json={"role_id": role_id, "secret_id": secret_id}).status_code == 200


def test_bootstrap_puts_back_what_drifted_in_place(infra):
    addr, layout = infra.env["MSP_VAULT_ADDR"], Layout(infra.dir)
    before = _state(infra)
    with _bao(infra, _root(infra)) as c:
        assert c.post(f"auth/approle/role/{REVOKER_ROLE}", json={"secret_id_num_uses": 5}).status_code == 204
        narrowed = 'path "x" { capabilities = ["read"] }'
        assert c.put(f"sys/policies/acl/{API_ROLE}", json={"policy": narrowed}).status_code == 204

    assert bootstrap(addr, _root(infra), layout) == [f"policy {API_ROLE}", f"approle {REVOKER_ROLE}"]

    after = _state(infra)
    assert after == before  # role ids, mount and accessors unchanged: updated in place, not recreated
    assert after["roles"][REVOKER_ROLE][0]["secret_id_num_uses"] == ROLE_SETTINGS["secret_id_num_uses"]


def test_a_launcher_token_close_to_expiry_is_replaced_and_revoked(infra):
    addr, layout = infra.env["MSP_VAULT_ADDR"], Layout(infra.dir)
    with _bao(infra, _root(infra)) as c:
        short = c.post(
            "auth/token/create-orphan",
            json={"policies": [LAUNCHER_POLICY], "no_default_policy": True, "ttl": "1h", "renewable": False},
        ).json()["auth"]["client_token"]
    layout.launcher_token.write_text(short + "\n")

    assert bootstrap(addr, _root(infra), layout) == ["launcher token"]

    fresh = layout.launcher_token.read_text().strip()
    assert fresh != short
    assert layout.launcher_token.stat().st_mode & 0o777 == 0o600
    with _bao(infra, _root(infra)) as c:
        assert c.post("auth/token/lookup", json={"token": short}).status_code != 200
        assert c.post("auth/token/lookup", json={"token": fresh}).json()["data"]["ttl"] > 30 * 24 * 3600
    assert mint_wrapped_secret_id(infra.dir, API_ROLE)[1]


def test_audit_device_is_enabled_and_writes(infra):
    with _bao(infra, _root(infra)) as c:
        devices = c.get("sys/audit").json()["data"]
    assert any(d["type"] == "file" for d in devices.values())
    assert Layout(infra.dir).bao_audit_log.stat().st_size > 0


def test_root_token_is_in_no_config_log_or_env_file(infra):
    root = _root(infra)
    layout = Layout(infra.dir)
    for path in [layout.env_file, layout.supervisor_conf, layout.bao_hcl, *layout.logs.glob("*")]:
        assert root not in path.read_text(errors="replace"), path


def test_wrapped_secret_id_unwraps_once_and_logs_in_without_root(infra):
    role_id, wrapped = mint_wrapped_secret_id(infra.dir, API_ROLE)
    with _bao(infra) as c:
        info = c.post("sys/wrapping/lookup", json={"token": wrapped}).json()["data"]
    assert info["creation_ttl"] == 60
    assert info["creation_path"] == f"auth/approle/role/{API_ROLE}/secret-id"
    with _bao(infra, wrapped) as c:
        first = c.post("sys/wrapping/unwrap")
        second = c.post("sys/wrapping/unwrap")
    assert first.status_code == 200
    assert second.status_code == 400
    secret_id = first.json()["data"]["secret_id"]
    with _bao(infra) as c:
        login = c.post("auth/approle/login", json={"role_id": role_id, "secret_id": secret_id})
        again = c.post("auth/approle/login", json={"role_id": role_id, "secret_id": secret_id})
    assert login.status_code == 200, login.text
    assert again.status_code == 400  # secret_id_num_uses=1
    auth = login.json()["auth"]
    assert "root" not in auth["policies"] and "root" not in auth["token_policies"]
    assert API_ROLE in auth["token_policies"]
    assert auth["renewable"] is True
    assert 0 < auth["lease_duration"] <= 3600


def test_api_role_can_write_and_read_but_never_delete_or_destroy(infra):
    token = _login(infra, API_ROLE)
    path = f"msp-kv/data/clients/{uuid.uuid4()}/credentials/{uuid.uuid4()}"
    meta = path.replace("/data/", "/metadata/", 1)
    with _bao(infra, token) as c:
        assert c.post(path, json={"data": {"secret": "x"}}).status_code == 200
        assert c.get(path).status_code == 200
        assert c.post("msp-kv/data/broker/audit-anchor", json={"data": {"h": "0"}}).status_code == 200
        assert c.get("msp-kv/metadata/broker/audit-anchor").status_code == 200
        assert c.delete(path).status_code == 403
        assert c.post(path.replace("/data/", "/delete/", 1), json={"versions": [1]}).status_code == 403
        assert c.post(path.replace("/data/", "/destroy/", 1), json={"versions": [1]}).status_code == 403
        assert c.delete(meta).status_code == 403
        assert c.get(meta).status_code == 403
        assert c.request("LIST", "msp-kv/metadata/clients").status_code == 403
        assert c.get("msp-kv/data/other/thing").status_code == 403
        assert c.post("auth/token/revoke-accessor", json={"accessor": "x"}).status_code == 403
        assert c.get("sys/policies/acl").status_code == 403


def test_revoker_role_only_revokes(infra):
    with _bao(infra, _root(infra)) as c:
        victim = c.post("auth/token/create", json={"policies": ["default"], "ttl": "5m"}).json()["auth"]
    token = _login(infra, REVOKER_ROLE)
    with _bao(infra, token) as c:
        assert c.get(f"msp-kv/data/clients/{uuid.uuid4()}/credentials/x").status_code == 403
        assert c.post("auth/token/revoke-accessor", json={"accessor": victim["accessor"]}).status_code == 204
    with _bao(infra, victim["client_token"]) as c:
        assert c.get("auth/token/lookup-self").status_code == 403


def test_launcher_token_can_only_mint_for_the_two_roles(infra):
    with _bao(infra, _root(infra)) as c:
        assert c.post("auth/approle/role/msp-other", json={"token_policies": ["default"]}).status_code == 204
    with _bao(infra, _launcher(infra)) as c:
        for role in (API_ROLE, REVOKER_ROLE):
            assert c.get(f"auth/approle/role/{role}/role-id").status_code == 200
        assert c.get(f"msp-kv/data/clients/{uuid.uuid4()}/credentials/x").status_code == 403
        assert c.request("LIST", "msp-kv/metadata").status_code == 403
        assert c.post("auth/approle/role/msp-other/secret-id").status_code == 403
        assert c.get("auth/approle/role/msp-other/role-id").status_code == 403
        assert c.post(f"auth/approle/role/{API_ROLE}", json={"token_policies": ["root"]}).status_code == 403
        assert c.post("auth/token/create", json={}).status_code == 403
        assert c.get("sys/audit").status_code == 403


def test_unknown_role_is_refused(infra):
    with pytest.raises(RuntimeError, match="unknown role"):
        mint_wrapped_secret_id(infra.dir, "msp-other")


def test_run_with_secret_id_hands_over_the_wrapped_secret_id(mspctl, infra):
    script = (
        "import json, os; print(json.dumps({k: v for k, v in os.environ.items() "
        "if k.startswith('SECRETS_BROKER_VAULT_')}))"
    )
    result = mspctl(infra.dir, "run-with-secret-id", API_ROLE, "--", "python", "-c", script)
    assert result.returncode == 0, result.stderr
    env = json.loads(result.stdout)
    assert env["SECRETS_BROKER_VAULT_ROLE"] == API_ROLE
    assert env["SECRETS_BROKER_VAULT_ROLE_ID"]
    with _bao(infra) as c:
        info = c.post("sys/wrapping/lookup", json={"token": env["SECRETS_BROKER_VAULT_WRAPPED_SECRET_ID"]})
    assert info.status_code == 200
    assert info.json()["data"]["creation_ttl"] == 60


@pytest.mark.parametrize("var", ["VAULT_TOKEN", "BAO_TOKEN"])
def test_run_with_secret_id_refuses_a_vault_token(mspctl, infra, var):
    result = mspctl(infra.dir, "run-with-secret-id", API_ROLE, "--", "true", env={var: "s.anything"})
    assert result.returncode != 0
    assert var in result.stderr


def test_run_with_secret_id_refuses_the_root_token_in_any_variable(mspctl, infra):
    result = mspctl(infra.dir, "run-with-secret-id", REVOKER_ROLE, "--", "true", env={"SOME_SETTING": _root(infra)})
    assert result.returncode != 0
    assert "SOME_SETTING" in result.stderr and "root token" in result.stderr
    assert _root(infra) not in result.stderr + result.stdout


def test_run_with_secret_id_refuses_other_roles(mspctl, infra):
    result = mspctl(infra.dir, "run-with-secret-id", "msp-other", "--", "true")
    assert result.returncode != 0
    assert "unknown role" in result.stderr


def test_vault_token_file_is_never_written(infra, vault_token_before):
    existed, mtime = vault_token_before
    now = Path.home() / ".vault-token"
    assert now.exists() == existed
    if existed:
        assert now.stat().st_mtime == mtime
    assert not (Layout(infra.dir).bao_dir / ".vault-token").exists()
