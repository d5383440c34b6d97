"""The dev token issuer: JWKS and an OAuth2 client-credentials endpoint (`python -m mspctl.issuer`)."""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import secrets
import time
import uuid
from typing import Any
from urllib.parse import unquote

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mspctl.files import read_json, write_json_private
from mspctl.layout import Layout, devstack_dir
from mspctl.tokens import AUDIENCES, jwks, shape, sign

SERVICE_TOKEN_TTL = 600
SERVICES = ("intake", "vendor_sync", "secrets_broker")


def client_id_of(service: str) -> str:
    """The OAuth2 client id of a service."""
    return f"svc:{service}"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def write_clients(layout: Layout, client_secrets: dict[str, str]) -> None:
    """Store only the SHA-256 of each service's client secret, for the issuer to check."""
    write_json_private(
        layout.clients_file, {client_id_of(svc): _digest(secret) for svc, secret in client_secrets.items()}
    )


def new_client_secret() -> str:
    """A fresh client secret."""
    return secrets.token_hex(32)


def _target(form: Any) -> str | None:
    """The one service a grant asks a token for: `audience` (RFC 8693), `resource` (RFC 8707) or `scope`
    in Entra ID's `<api>/.default` form."""
    for name in ("audience", "resource"):
        if form.get(name):
            return str(form[name])
    scope = str(form.get("scope") or "")
    return scope.removesuffix("/.default") if scope.endswith("/.default") else None


def _no_store(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status, headers={"Cache-Control": "no-store", **(headers or {})})


def create_app(root: str | os.PathLike[str], issuer_url: str, profile: str = "dev") -> Starlette:
    """The issuer ASGI app for a devstack dir, emitting tokens in the given profile's shape."""
    layout = Layout(devstack_dir(root))
    issuer = issuer_url.rstrip("/")

    async def jwks_route(request: Request) -> JSONResponse:
        return JSONResponse(jwks(layout), headers={"Cache-Control": "max-age=60"})

    async def discovery(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "issuer": issuer,
                "jwks_uri": f"{issuer}/.well-known/jwks.json",
                "token_endpoint": f"{issuer}/oauth/token",
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "id_token_signing_alg_values_supported": ["EdDSA"],
            }
        )

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        client_id = str(form.get("client_id") or "")
        client_secret = str(form.get("client_secret") or "")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                # rpartition: client ids like `svc:intake` hold a colon (RFC 6749 wants it %-encoded;
                # many clients do not encode it), while our secrets never do.
                user, _, password = base64.b64decode(auth[6:]).decode().rpartition(":")
            except ValueError:
                return _no_store({"error": "invalid_client"}, 401)
            client_id, client_secret = unquote(user), unquote(password)
        if form.get("grant_type") != "client_credentials":
            return _no_store({"error": "unsupported_grant_type"}, 400)
        expected = read_json(layout.clients_file).get(client_id)
        if not expected or not client_secret or not hmac.compare_digest(expected, _digest(client_secret)):
            return _no_store({"error": "invalid_client"}, 401, {"WWW-Authenticate": 'Basic realm="mspctl"'})
        target = _target(form)
        if target is None:
            wanted = "name the target service: audience, resource or scope"
            return _no_store({"error": "invalid_request", "error_description": wanted}, 400)
        if target not in AUDIENCES:
            return _no_store({"error": "invalid_target", "error_description": f"no service {target!r}"}, 400)
        now = int(time.time())
        claims = {
            "iss": issuer,
            "sub": client_id,
            "role": "service",
            "aud": [target],  # one token per target: it cannot be replayed at another service
            "iat": now,
            "nbf": now,
            "exp": now + SERVICE_TOKEN_TTL,
            "jti": str(uuid.uuid4()),
        }
        token = sign(layout, shape(claims, profile))
        return _no_store({"access_token": token, "token_type": "Bearer", "expires_in": SERVICE_TOKEN_TTL})

    return Starlette(
        routes=[
            Route("/.well-known/jwks.json", jwks_route),
            Route("/.well-known/openid-configuration", discovery),
            Route("/oauth/token", token, methods=["POST"]),
            Route("/healthz", healthz),
        ]
    )


def main() -> None:
    """Run the issuer on 127.0.0.1."""
    parser = argparse.ArgumentParser(description="mspctl dev token issuer")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--devstack", default=None)
    args = parser.parse_args()
    issuer_url = os.environ.get("MSP_JWT_ISSUER") or f"http://127.0.0.1:{args.port}"
    app = create_app(devstack_dir(args.devstack), issuer_url, os.environ.get("MSP_DEV_TOKEN_PROFILE") or "dev")
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="info", access_log=False)


if __name__ == "__main__":
    main()
