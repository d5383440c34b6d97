"""JWT verification with the dev issuer's real keys: every forgery gets 401, allowlists give 403."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends
from fastapi.testclient import TestClient

from mspctl.layout import Layout
from mspctl.tokens import PROFILE_CLAIM_SETTINGS, load_key, public_jwk, shape, sign
from mspkit.app import create_app
from mspkit.auth import SHARED_SERVICE_TOKEN, CurrentUser, Principal, require_roles, require_service
from mspkit.settings import KitSettings


class _Settings(KitSettings):
    service_name = "intake"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def client(stack_env: dict[str, str]) -> TestClient:
    app = create_app(service="intake", settings=_Settings())

    @app.get("/whoami")
    def whoami(user: CurrentUser) -> dict[str, Any]:
        return {"sub": user.sub, "role": user.role, "client_id": str(user.client_id) if user.client_id else None}

    @app.get("/admin-only", dependencies=[Depends(require_roles("admin"))])
    def admin_only() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/internal/thing")
    def internal(user: Principal = Depends(require_service("svc:secrets_broker"))) -> dict[str, str]:
        return {"sub": user.sub}

    return TestClient(app)


@pytest.fixture(scope="module")
def layout(devstack_dir: Path) -> Layout:
    return Layout(devstack_dir)


@pytest.fixture(scope="module")
def issue(layout: Layout, token_profile: str) -> Callable[[dict[str, Any]], str]:
    """Sign dev-shaped claims as the run's token profile writes them (the app maps them back by settings)."""
    return lambda claims: sign(layout, shape(claims, token_profile))


def _claims(stack_env: dict[str, str], **over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": stack_env["MSP_JWT_ISSUER"],
        "sub": "tech-1",
        "role": "technician",
        "aud": ["intake"],
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def _get(client: TestClient, token: str, path: str = "/whoami") -> Any:
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


def test_valid_token_from_the_dev_issuer_is_accepted(client, issue, stack_env):
    response = _get(client, issue(_claims(stack_env)))
    assert response.status_code == 200
    assert response.json() == {"sub": "tech-1", "role": "technician", "client_id": None}


def test_missing_token_is_401(client):
    response = client.get("/whoami")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"


def test_alg_none_is_refused(client, stack_env):
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims(stack_env, role="admin")).encode())
    response = _get(client, f"{header}.{payload}.")
    assert response.status_code == 401
    assert response.json() == {"error": "unauthenticated", "detail": "token algorithm not accepted"}


def test_hs256_signed_with_the_public_key_is_refused(client, layout, stack_env):
    """Algorithm confusion: an HMAC keyed with the (public) verification key."""
    jwk = public_jwk(load_key(layout))
    public_pem = load_key(layout).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for key_bytes in (public_pem, base64.urlsafe_b64decode(jwk["x"] + "==")):
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": jwk["kid"]}).encode())
        payload = _b64(json.dumps(_claims(stack_env, role="admin")).encode())
        sig = _b64(hmac.new(key_bytes, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        response = _get(client, f"{header}.{payload}.{sig}")
        assert response.status_code == 401
        assert response.json() == {"error": "unauthenticated", "detail": "token algorithm not accepted"}


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"exp": lambda now: now - 120}, "token has expired"),  # beyond the 30 s skew
        ({"nbf": lambda now: now + 120}, "token is not valid yet"),  # beyond the skew
        ({"aud": ["secrets_broker"]}, "token is not meant for this service"),
        ({"iss": "http://evil.example/"}, "token comes from another issuer"),
        ({"role": "superuser"}, "token has no valid role"),
        ({"role": "client_user", "msp_client_id": "not-a-uuid"}, "client token without a valid {tenant}"),
        ({"role": "client_user", "client_id": str(uuid.uuid4())}, "client token without a valid {tenant}"),
        ({"exp": None}, "token lacks a required claim"),
        ({"sub": None}, "token has no valid subject"),
        ({"role": None, "roles": ["technician", "admin"]}, "token grants more than one role"),
        ({"role": "service", "sub": "svc:secrets_broker", "aud": ["intake", "vendor_sync"]}, SHARED_SERVICE_TOKEN),
    ],
    ids=[
        "expired", "nbf-future", "wrong-aud", "wrong-iss", "bad-role", "bad-tenant",
        "rfc9068-client_id-is-not-the-tenant", "no-exp", "no-sub", "two-roles", "service-token-for-two-services",
    ],
)
def test_bad_claims_are_refused_with_the_reason(client, issue, stack_env, token_profile, override, reason):
    now = int(time.time())  # times are taken when the test runs, not when pytest collects it
    override = {k: (v(now) if callable(v) else v) for k, v in override.items()}
    response = _get(client, issue(_claims(stack_env, **override)))
    assert response.status_code == 401
    tenant = PROFILE_CLAIM_SETTINGS[token_profile].get("MSP_AUTH_TENANT_CLAIM", "msp_client_id")
    assert response.json() == {"error": "unauthenticated", "detail": reason.format(tenant=tenant)}


def test_a_roles_array_with_one_known_role_is_mapped(client, issue, stack_env):
    claims = _claims(stack_env, role=None, roles=["Directory.Reader", "technician"])
    response = _get(client, issue(claims))
    assert response.status_code == 200
    assert response.json()["role"] == "technician"


def test_a_person_token_may_name_several_services_a_service_token_only_one(client, issue, stack_env):
    everywhere = ["intake", "secrets_broker", "vendor_sync"]
    response = _get(client, issue(_claims(stack_env, aud=everywhere)))
    assert response.status_code == 200
    assert response.json()["role"] == "technician"
    broker = _claims(stack_env, role="service", sub="svc:secrets_broker", aud=everywhere)
    response = _get(client, issue(broker), "/internal/thing")
    assert response.json() == {"error": "unauthenticated", "detail": SHARED_SERVICE_TOKEN}
    # The same service token naming only this service passes; a lone string `aud` is one audience too.
    for aud in (["intake"], "intake"):
        response = _get(client, issue({**broker, "aud": aud}), "/internal/thing")
        assert response.json() == {"sub": "svc:secrets_broker"}


def test_clock_skew_within_30s_is_tolerated(client, issue, stack_env):
    token = issue(_claims(stack_env, exp=int(time.time()) - 10))
    assert _get(client, token).status_code == 200


def test_token_signed_by_another_key_is_refused(client, layout, stack_env):
    other = Ed25519PrivateKey.generate()
    kid = public_jwk(load_key(layout))["kid"]  # even claiming the real key's kid
    token = jwt.encode(_claims(stack_env, role="admin"), other, algorithm="EdDSA", headers={"kid": kid})
    response = _get(client, token)
    assert response.status_code == 401
    assert response.json() == {"error": "unauthenticated", "detail": "token signature does not verify"}


def test_tampered_payload_is_refused(client, issue, stack_env):
    header, _, sig = issue(_claims(stack_env)).split(".")
    forged = _b64(json.dumps(_claims(stack_env, role="admin")).encode())
    refused = {"error": "unauthenticated", "detail": "token signature does not verify"}
    for path in ("/whoami", "/admin-only"):
        response = _get(client, f"{header}.{forged}.{sig}", path)
        assert (response.status_code, response.json()) == (401, refused)


def test_role_dependency_gives_403(client, issue, stack_env):
    assert _get(client, issue(_claims(stack_env)), "/admin-only").status_code == 403
    assert _get(client, issue(_claims(stack_env, role="admin")), "/admin-only").status_code == 200


def test_service_not_on_the_allowlist_gets_403(client, issue, stack_env):
    vendor_sync = issue(_claims(stack_env, role="service", sub="svc:vendor_sync"))
    broker = issue(_claims(stack_env, role="service", sub="svc:secrets_broker"))
    admin = issue(_claims(stack_env, role="admin", sub="svc:secrets_broker"))
    assert _get(client, vendor_sync, "/internal/thing").status_code == 403
    assert _get(client, admin, "/internal/thing").status_code == 403  # the role matters, not only the sub
    assert _get(client, broker, "/internal/thing").json() == {"sub": "svc:secrets_broker"}


def test_client_role_carries_its_client_id(client, issue, stack_env):
    cid = uuid.uuid4()
    token = issue(_claims(stack_env, role="client_user", msp_client_id=str(cid)))
    assert _get(client, token).json()["client_id"] == str(cid)


def test_service_token_from_client_credentials_grant(stack_env):
    """The issuer's token endpoint gives a service a token for its target, which only that target accepts."""
    from mspkit.auth import JWTVerifier
    from mspkit.errors import Unauthenticated
    from mspkit.service_tokens import ServiceTokenSource

    source = ServiceTokenSource(
        token_url=stack_env["MSP_TOKEN_URL"],
        client_id="svc:intake",
        client_secret=stack_env["INTAKE_SERVICE_CLIENT_SECRET"],
    )
    token = source.token("secrets_broker")
    assert source.token("secrets_broker") == token  # cached until near expiry

    def verifier(audience: str) -> JWTVerifier:
        return JWTVerifier(
            issuer=stack_env["MSP_JWT_ISSUER"],
            jwks_url=stack_env["MSP_JWKS_URL"],
            audience=audience,
            claim_map=_Settings().claim_map,  # the issuer emits the run's token profile
        )

    principal = verifier("secrets_broker").verify(token)
    assert (principal.sub, principal.role) == ("svc:intake", "service")
    for elsewhere in ("intake", "vendor_sync"):  # replayed at any other service: refused
        with pytest.raises(Unauthenticated, match="token is not meant for this service"):
            verifier(elsewhere).verify(token)
    wrong = ServiceTokenSource(token_url=stack_env["MSP_TOKEN_URL"], client_id="svc:intake", client_secret="nope")
    with pytest.raises(Unauthenticated, match="refused"):
        wrong.token("secrets_broker")


def test_an_entra_shaped_token_is_mapped_by_settings_alone(layout, stack_env, monkeypatch):
    """oid → sub, roles[] → role, extn.msp_client_id → tenant; the pairwise sub is ignored."""
    for name, value in PROFILE_CLAIM_SETTINGS["entra"].items():
        monkeypatch.setenv(name, value)
    settings = _Settings()
    verifier_client = TestClient(create_app(service="intake", settings=settings))

    @verifier_client.app.get("/whoami")  # type: ignore[attr-defined]
    def whoami(user: CurrentUser) -> dict[str, Any]:
        return {"sub": user.sub, "role": user.role, "client_id": str(user.client_id) if user.client_id else None}

    cid = str(uuid.uuid4())
    entra = shape(_claims(stack_env, sub="person-1", role="client_admin", msp_client_id=cid), "entra")
    assert entra["sub"] != "person-1" and "role" not in entra and entra["roles"] == ["client_admin"]
    response = _get(verifier_client, sign(layout, entra))
    assert response.status_code == 200
    assert response.json() == {"sub": "person-1", "role": "client_admin", "client_id": cid}
    # The dev shape says `role`, a claim the Entra mapping does not read.
    dev_shaped = _claims(stack_env, role="admin")
    response = _get(verifier_client, sign(layout, dev_shaped))
    assert response.json() == {"error": "unauthenticated", "detail": "token has no valid role"}


def test_the_suite_runs_in_the_token_profile_it_asked_for(mint_token, stack_env, token_profile):
    """`MSP_DEV_TOKEN_PROFILE=entra` really gives Entra-shaped tokens and the services the matching mapping."""
    cid = str(uuid.uuid4())
    claims = jwt.decode(mint_token("client_admin", "person-1", cid), options={"verify_signature": False})
    assert stack_env["MSP_DEV_TOKEN_PROFILE"] == token_profile
    if token_profile == "entra":
        assert "role" not in claims and claims["roles"] == ["client_admin"]
        assert claims["oid"] == "person-1" and claims["sub"] != "person-1"  # pairwise sub
        assert claims["extn.msp_client_id"] == cid and "msp_client_id" not in claims
    else:
        assert (claims["sub"], claims["role"], claims["msp_client_id"]) == ("person-1", "client_admin", cid)
    mapping = _Settings().claim_map
    expected = PROFILE_CLAIM_SETTINGS[token_profile]
    assert mapping.subject == expected.get("MSP_AUTH_SUBJECT_CLAIM", "sub")
    assert mapping.role == expected.get("MSP_AUTH_ROLE_CLAIM", "role")
    assert mapping.tenant == expected.get("MSP_AUTH_TENANT_CLAIM", "msp_client_id")
