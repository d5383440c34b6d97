"""`mspctl token` and `mspctl.tokens.mint`."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import jwt
import pytest

from mspctl.layout import Layout
from mspctl.tokens import ensure_key, mint

pytestmark = pytest.mark.timeout(120)
CLIENT = "6f1c2b8e-3a4d-4c5e-8f90-1a2b3c4d5e6f"


def _verify(token: str, env: dict[str, str], audience: str = "intake") -> dict:
    keys = httpx.get(env["MSP_JWKS_URL"]).json()["keys"]
    header = jwt.get_unverified_header(token)
    (jwk,) = [k for k in keys if k["kid"] == header["kid"]]
    assert jwk["alg"] == "EdDSA" and jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519"
    return jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=["EdDSA"],
        audience=audience,
        issuer=env["MSP_JWT_ISSUER"],
        options={"require": ["exp", "nbf", "iat", "iss", "aud", "sub"]},
    )


def test_client_role_without_client_id_names_the_flag(mspctl, infra):
    result = mspctl(infra.dir, "token", "--role", "client_user", "--sub", "u1")
    assert result.returncode != 0
    assert "--client-id" in result.stderr
    assert result.stdout == ""


def test_client_role_with_client_id_prints_one_verifiable_jwt(mspctl, infra):
    result = mspctl(infra.dir, "token", "--role", "client_user", "--sub", "u1", "--client-id", CLIENT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and result.stdout.endswith("\n")
    claims = _verify(lines[0], infra.env)
    assert claims["sub"] == "u1"
    assert claims["role"] == "client_user"
    assert claims["msp_client_id"] == CLIENT and "client_id" not in claims
    assert sorted(claims["aud"]) == ["intake", "secrets_broker", "vendor_sync"]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["jti"]


def test_aud_and_ttl_options(mspctl, infra):
    result = mspctl(infra.dir, "token", "--role", "technician", "--sub", "t1", "--aud", "secrets_broker", "--ttl", "60")
    assert result.returncode == 0, result.stderr
    claims = _verify(result.stdout.strip(), infra.env, audience="secrets_broker")
    assert claims["aud"] == ["secrets_broker"]
    assert claims["exp"] - claims["iat"] == 60
    with pytest.raises(jwt.InvalidAudienceError):
        _verify(result.stdout.strip(), infra.env, audience="intake")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--role", "client_admin", "--sub", "u1", "--client-id", "not-a-uuid"], "--client-id"),
        (["--role", "superuser", "--sub", "u1"], "--role"),
    ],
)
def test_bad_arguments_are_refused(mspctl, infra, args, needle):
    result = mspctl(infra.dir, "token", *args)
    assert result.returncode != 0
    assert needle in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("auds", [[], ["intake", "secrets_broker"]], ids=["no-aud", "two-auds"])
def test_service_token_needs_exactly_one_aud(mspctl, infra, auds):
    args = [a for aud in auds for a in ("--aud", aud)]
    result = mspctl(infra.dir, "token", "--role", "service", "--sub", "svc:intake", *args)
    assert result.returncode != 0
    assert "--aud" in result.stderr and "role service" in result.stderr
    assert result.stdout == ""
    with pytest.raises(ValueError, match="--aud"):
        mint(infra.dir, role="service", sub="svc:intake", aud=auds or None)


def test_service_token_for_one_target(mspctl, infra):
    result = mspctl(infra.dir, "token", "--role", "service", "--sub", "svc:intake", "--aud", "secrets_broker")
    assert result.returncode == 0, result.stderr
    claims = _verify(result.stdout.strip(), infra.env, audience="secrets_broker")
    assert (claims["sub"], claims["role"], claims["aud"]) == ("svc:intake", "service", ["secrets_broker"])


def test_refuses_outside_dev_mode(mspctl, tmp_path: Path):
    layout = Layout(tmp_path)
    ensure_key(layout)
    layout.env_file.write_text("MSP_ENV=production\n")
    result = mspctl(tmp_path, "token", "--role", "admin", "--sub", "a1")
    assert result.returncode != 0
    assert "MSP_ENV=dev" in result.stderr
    with pytest.raises(ValueError, match="MSP_ENV=dev"):
        mint(tmp_path, role="admin", sub="a1")


def test_the_env_file_carries_the_token_profile_and_its_claim_mapping(mspctl, tmp_path: Path):
    """`mspctl up` writes the profile and its MSP_AUTH_* settings; `mspctl token` then shapes tokens by it."""
    from mspctl.envfile import ALL_KEYS, read_env, render, write_env
    from mspctl.tokens import PROFILE_CLAIM_SETTINGS

    layout = Layout(tmp_path)
    ensure_key(layout)
    values = {key: "x" for key in ALL_KEYS} | {"MSP_ENV": "dev", "MSP_DEV_TOKEN_PROFILE": "entra"}
    write_env(layout.env_file, values | PROFILE_CLAIM_SETTINGS["entra"])
    assert read_env(layout.env_file) == values | PROFILE_CLAIM_SETTINGS["entra"]  # MSP_AUTH_ROLE_CLAIM="" too
    with pytest.raises(ValueError, match="MSP_SOMETHING_ELSE"):  # never silently left out of the file
        render(values | {"MSP_SOMETHING_ELSE": "1"})
    result = mspctl(tmp_path, "token", "--role", "client_user", "--sub", "u1", "--client-id", CLIENT)
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), options={"verify_signature": False})
    assert "role" not in claims and claims["roles"] == ["client_user"]
    assert claims["oid"] == "u1" and claims["sub"] != "u1" and claims["extn.msp_client_id"] == CLIENT


def test_python_mint_matches_the_cli(infra):
    client_id = str(uuid.uuid4())
    token = infra.token(role="client_admin", sub="ca1", client_id=client_id, ttl=120)
    claims = _verify(token, infra.env, audience="vendor_sync")
    assert claims["msp_client_id"] == client_id and claims["role"] == "client_admin"
    with pytest.raises(ValueError, match="--client-id"):
        mint(infra.dir, role="client_user", sub="u1")


def test_key_files_are_private(infra):
    layout = Layout(infra.dir)
    assert layout.jwt_dir.stat().st_mode & 0o777 == 0o700
    assert layout.signing_key.stat().st_mode & 0o777 == 0o600
