"""The dev issuer's Ed25519 key, its JWKS, and `mint` (the Python form of `mspctl token`)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mspctl.envfile import read_env
from mspctl.files import write_private
from mspctl.layout import Layout, devstack_dir

ROLES = ("client_user", "client_admin", "technician", "admin", "service")
# Token shapes the dev issuer can emit: its own, and one shaped like Entra ID's, so that the services'
# claim mapping (MSP_AUTH_*_CLAIM) is exercised as a real IdP would need it.
PROFILES = ("dev", "entra")
# The settings each profile needs in every service (mspctl writes them into the devstack env).
PROFILE_CLAIM_SETTINGS: dict[str, dict[str, str]] = {
    "dev": {},
    "entra": {
        "MSP_AUTH_SUBJECT_CLAIM": "oid",
        "MSP_AUTH_ROLE_CLAIM": "",
        "MSP_AUTH_ROLES_CLAIM": "roles",
        "MSP_AUTH_TENANT_CLAIM": "extn.msp_client_id",
    },
}
CLIENT_ROLES = ("client_user", "client_admin")
AUDIENCES = ("intake", "secrets_broker", "vendor_sync")
ALGORITHM = "EdDSA"


class TokenError(ValueError):
    """A token request that the dev issuer refuses."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ensure_key(layout: Layout) -> None:
    """Create the signing key once (dir 0700, key 0600)."""
    layout.jwt_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    layout.jwt_dir.chmod(0o700)
    if layout.signing_key.exists():
        return
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(layout.signing_key, pem.decode())


def load_key(layout: Layout) -> Ed25519PrivateKey:
    """Load the signing key."""
    key = serialization.load_pem_private_key(layout.signing_key.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise TokenError(f"{layout.signing_key} is not an Ed25519 key")
    return key


def public_jwk(key: Ed25519PrivateKey) -> dict[str, str]:
    """The public JWK with its RFC 7638 thumbprint as `kid`."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = _b64(raw)
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    thumbprint = _b64(hashlib.sha256(canonical.encode()).digest())
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": thumbprint, "alg": ALGORITHM, "use": "sig"}


def jwks(layout: Layout) -> dict[str, Any]:
    """The JWKS document."""
    return {"keys": [public_jwk(load_key(layout))]}


def sign(layout: Layout, claims: dict[str, Any]) -> str:
    """Sign claims with the dev key (EdDSA, with `kid`)."""
    key = load_key(layout)
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": public_jwk(key)["kid"]})


def _pairwise(sub: str, audiences: list[str]) -> str:
    """An Entra-style pairwise subject: stable per (person, audience), useless as an id elsewhere."""
    return _b64(hashlib.sha256(f"{sub}|{','.join(sorted(audiences))}".encode()).digest())


def shape(claims: dict[str, Any], profile: str) -> dict[str, Any]:
    """The claims as the profile's IdP would write them (`dev` leaves them as they are).

    A claim the dev shape lacks stays absent in the other shape too (tests sign such tokens on purpose).
    """
    if profile not in PROFILES:
        raise TokenError(f"token profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    if profile == "dev":
        return claims
    shaped = {k: v for k, v in claims.items() if k not in {"sub", "role", "msp_client_id"}}
    if "sub" in claims:
        aud = claims.get("aud") or []
        shaped.update(sub=_pairwise(claims["sub"], [aud] if isinstance(aud, str) else aud), oid=claims["sub"])
    if "role" in claims:
        shaped["roles"] = [claims["role"]]
    if "msp_client_id" in claims:
        shaped["extn.msp_client_id"] = claims["msp_client_id"]
    return shaped


def claims_for(
    *, issuer: str, role: str, sub: str, client_id: str | None, aud: list[str] | None, ttl: int
) -> dict[str, Any]:
    """Validate a token request and build its claims (in the dev profile's shape)."""
    if role not in ROLES:
        raise TokenError(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    if not sub:
        raise TokenError("--sub must not be empty")
    if role in CLIENT_ROLES and not client_id:
        raise TokenError(f"--client-id is required for role {role} (a client UUID)")
    if role == "service" and len(aud or []) != 1:
        # One token per target (as the issuer's client-credentials grant mints them): a service token
        # naming several services could be replayed at each, and every verifier refuses it.
        raise TokenError("--aud is required exactly once for role service (the one service the token is for)")
    if client_id is not None:
        try:
            client_id = str(uuid.UUID(client_id))
        except ValueError as exc:
            raise TokenError(f"--client-id must be a UUID, not {client_id!r}") from exc
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": sub,
        "role": role,
        "aud": list(aud) if aud else list(AUDIENCES),
        "iat": now,
        "nbf": now,
        "exp": now + int(ttl),
        "jti": str(uuid.uuid4()),
    }
    if client_id is not None:
        claims["msp_client_id"] = client_id
    return claims


def mint(
    devstack: str | os.PathLike[str] | None,
    *,
    role: str,
    sub: str,
    client_id: str | None = None,
    aud: list[str] | None = None,
    ttl: int = 3600,
) -> str:
    """A JWT signed by the dev issuer of that devstack; refuses unless its env says MSP_ENV=dev."""
    layout = Layout(devstack_dir(devstack))
    env = read_env(layout.env_file)
    if env.get("MSP_ENV") != "dev":
        raise TokenError(f"refusing: {layout.env_file} does not say MSP_ENV=dev (run `mspctl up` first)")
    if not layout.signing_key.exists():
        raise TokenError(f"no signing key at {layout.signing_key}")
    issuer = env.get("MSP_JWT_ISSUER", "")
    claims = claims_for(issuer=issuer, role=role, sub=sub, client_id=client_id, aud=aud, ttl=ttl)
    return sign(layout, shape(claims, env.get("MSP_DEV_TOKEN_PROFILE") or "dev"))
