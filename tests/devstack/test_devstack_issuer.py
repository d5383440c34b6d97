"""The issuer part: JWKS and the client-credentials grant."""

from __future__ import annotations

import configparser

import httpx
import jwt
import pytest

from mspctl.layout import Layout

pytestmark = pytest.mark.timeout(120)


def _decode(token: str, env: dict[str, str]) -> dict:
    jwks = httpx.get(env["MSP_JWKS_URL"]).json()
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]].key
    return jwt.decode(token, key, algorithms=["EdDSA"], audience="secrets_broker", issuer=env["MSP_JWT_ISSUER"])


def test_client_credentials_with_form(infra):
    env = infra.env
    resp = httpx.post(
        env["MSP_TOKEN_URL"],
        data={
            "grant_type": "client_credentials",
            "client_id": "svc:intake",
            "client_secret": infra.stack.client_secret("intake"),
            "audience": "secrets_broker",
        },
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600
    assert resp.headers["cache-control"] == "no-store"
    claims = _decode(body["access_token"], env)
    assert claims["sub"] == "svc:intake" and claims["role"] == "service"
    assert claims["aud"] == ["secrets_broker"]  # one token per target
    assert claims["exp"] - claims["iat"] == 600
    assert {"nbf", "jti"} <= claims.keys()


def test_client_credentials_with_basic_auth(infra):
    resp = httpx.post(
        infra.env["MSP_TOKEN_URL"],
        data={"grant_type": "client_credentials", "resource": "secrets_broker"},
        auth=("svc:vendor_sync", infra.stack.client_secret("vendor_sync")),
    )
    assert resp.status_code == 200, resp.text
    assert _decode(resp.json()["access_token"], infra.env)["sub"] == "svc:vendor_sync"


@pytest.mark.parametrize(
    ("client_id", "secret_of"),
    [("svc:intake", None), ("svc:intake", "secrets_broker"), ("svc:nobody", "intake")],
)
def test_wrong_client_is_refused(infra, client_id, secret_of):
    secret = infra.stack.client_secret(secret_of) if secret_of else "wrong-secret"
    resp = httpx.post(
        infra.env["MSP_TOKEN_URL"],
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "audience": "intake",
        },
    )
    assert resp.status_code == 401
    assert resp.json() == {"error": "invalid_client"}


@pytest.mark.parametrize(
    ("target", "aud"),
    [
        ({"audience": "intake"}, ["intake"]),
        ({"resource": "vendor_sync"}, ["vendor_sync"]),
        ({"scope": "secrets_broker/.default"}, ["secrets_broker"]),
    ],
)
def test_each_way_of_naming_the_target_gives_a_token_for_it_alone(infra, target, aud):
    resp = httpx.post(
        infra.env["MSP_TOKEN_URL"],
        data={"grant_type": "client_credentials", **target},
        auth=("svc:intake", infra.stack.client_secret("intake")),
    )
    assert resp.status_code == 200, resp.text
    token = resp.json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == aud


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ({}, "invalid_request"),
        ({"audience": "portal-admin"}, "invalid_target"),
        ({"scope": "intake"}, "invalid_request"),
    ],
)
def test_a_grant_without_a_known_target_is_refused(infra, target, error):
    resp = httpx.post(
        infra.env["MSP_TOKEN_URL"],
        data={"grant_type": "client_credentials", **target},
        auth=("svc:intake", infra.stack.client_secret("intake")),
    )
    assert resp.status_code == 400
    assert resp.json()["error"] == error
    assert "access_token" not in resp.json()


def test_other_grants_are_refused(infra):
    resp = httpx.post(infra.env["MSP_TOKEN_URL"], data={"grant_type": "password", "client_id": "svc:intake"})
    assert resp.status_code == 400
    assert resp.json() == {"error": "unsupported_grant_type"}


def test_jwks_shape(infra):
    (key,) = httpx.get(infra.env["MSP_JWKS_URL"]).json()["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA" and key["kid"]
    assert "d" not in key


def test_each_service_gets_only_its_own_secret(infra):
    conf = configparser.RawConfigParser()
    conf.read(Layout(infra.dir).supervisor_conf)
    for program, own in [
        ("intake", "INTAKE"),
        ("intake-relay", "INTAKE"),
        ("intake-worker", "INTAKE"),
        ("intake-beat", "INTAKE"),
        ("secrets_broker", "SECRETS_BROKER"),
        ("vendor_sync-worker", "VENDOR_SYNC"),
    ]:
        environment = conf[f"program:{program}"]["environment"]
        assert f"{own}_SERVICE_CLIENT_SECRET=" in environment
        others = {"INTAKE", "SECRETS_BROKER", "VENDOR_SYNC"} - {own}
        assert not any(f"{o}_SERVICE_CLIENT_SECRET" in environment for o in others)
        assert not any(f"{o}_DATABASE_URL" in environment for o in others)
        assert "MSP_DATABASE_URL=" not in environment  # the superuser URL stays with mspctl
        assert f"{own}_DATABASE_URL=" in environment
    env = infra.service_env("intake")
    assert "MSP_DATABASE_URL" not in env
    assert env["INTAKE_SERVICE_CLIENT_SECRET"] == infra.stack.client_secret("intake")
    assert "VENDOR_SYNC_DATABASE_URL" not in env
    # The issuer stores digests only, never the secrets themselves.
    clients = Layout(infra.dir).clients_file.read_text()
    assert infra.stack.client_secret("intake") not in clients
