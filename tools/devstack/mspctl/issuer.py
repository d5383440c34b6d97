"""The dev token issuer (`python -m mspctl.issuer`): JWKS, client credentials for the services, and an
OpenID provider for the portal (authorization code + PKCE, refresh tokens per API, revocation)."""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mspctl import people, signin_page
from mspctl.envfile import read_env
from mspctl.files import read_json, write_json_private
from mspctl.layout import Layout, devstack_dir
from mspctl.oidc import (
    CALLBACK_PATH,
    CLIENT_GRANTS,
    DEFAULT_PORTAL_URL,
    PORTAL_CLIENT_ID,
    SCOPES,
    OAuthError,
    Provider,
    check_authorization,
    target_of,
)
from mspctl.tokens import ALGORITHM, AUDIENCES, jwks, shape, sign

SERVICE_TOKEN_TTL = 600
SERVICES = ("intake", "vendor_sync", "secrets_broker")
GRANTS = ("client_credentials", "authorization_code", "refresh_token")


def client_id_of(service: str) -> str:
    """The OAuth2 client id of a service."""
    return f"svc:{service}"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_client_secret() -> str:
    """A fresh client secret."""
    return secrets.token_hex(32)


def portal_client_secret(layout: Layout) -> str:
    """The portal's OIDC client secret, made once and kept beside the services' in `<devstack>/secrets.json`."""
    data = read_json(layout.secrets_file)
    group = data.setdefault("clients", {})
    if PORTAL_CLIENT_ID not in group:
        group[PORTAL_CLIENT_ID] = new_client_secret()
        write_json_private(layout.secrets_file, data)
    return str(group[PORTAL_CLIENT_ID])


def write_clients(layout: Layout, client_secrets: dict[str, str]) -> None:
    """Store only the SHA-256 of each client's secret (the services' and the portal's), for the issuer to check."""
    digests = {client_id_of(svc): _digest(secret) for svc, secret in client_secrets.items() if svc in SERVICES}
    digests[PORTAL_CLIENT_ID] = _digest(portal_client_secret(layout))
    write_json_private(layout.clients_file, digests)


def portal_url(layout: Layout) -> str:
    """The portal's base URL: `MSP_PORTAL_URL` from the environment or the devstack env, else port 8000."""
    configured = os.environ.get("MSP_PORTAL_URL") or read_env(layout.env_file).get("MSP_PORTAL_URL")
    return (configured or DEFAULT_PORTAL_URL).rstrip("/")


def _no_store(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status, headers={"Cache-Control": "no-store", **(headers or {})})


def _oauth_error(exc: OAuthError) -> JSONResponse:
    return _no_store(exc.body(), exc.status)


def _invalid_client() -> JSONResponse:
    return _no_store({"error": "invalid_client"}, 401, {"WWW-Authenticate": 'Basic realm="mspctl"'})


def _authenticate(layout: Layout, request: Request, form: Any) -> str | None:
    """The client id whose secret came with the request (client_secret_basic or _post), else None."""
    client_id = str(form.get("client_id") or "")
    client_secret = str(form.get("client_secret") or "")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            # rpartition: client ids like `svc:intake` hold a colon (RFC 6749 wants it %-encoded;
            # many clients do not encode it), while our secrets never do.
            user, _, password = base64.b64decode(auth[6:]).decode().rpartition(":")
        except ValueError:
            return None
        client_id, client_secret = unquote(user), unquote(password)
    expected = read_json(layout.clients_file).get(client_id)
    if not expected or not client_secret or not hmac.compare_digest(expected, _digest(client_secret)):
        return None
    return client_id


def _grants_of(client_id: str) -> frozenset[str]:
    return CLIENT_GRANTS.get(client_id, frozenset({"client_credentials"}))


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def create_app(
    root: str | os.PathLike[str],
    issuer_url: str,
    profile: str = "dev",
    *,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The issuer ASGI app for a devstack dir, emitting tokens in the given profile's shape."""
    layout = Layout(devstack_dir(root))
    issuer = issuer_url.rstrip("/")
    provider = Provider(layout, issuer, profile, clock)

    def redirect_uris(client_id: str) -> list[str]:
        return [portal_url(layout) + CALLBACK_PATH] if client_id == PORTAL_CLIENT_ID else []

    async def jwks_route(request: Request) -> JSONResponse:
        return JSONResponse(jwks(layout), headers={"Cache-Control": "max-age=60"})

    async def discovery(request: Request) -> JSONResponse:
        auth_methods = ["client_secret_post", "client_secret_basic"]
        return JSONResponse(
            {
                "issuer": issuer,
                "jwks_uri": f"{issuer}/.well-known/jwks.json",
                "authorization_endpoint": f"{issuer}/authorize",
                "token_endpoint": f"{issuer}/oauth/token",
                "revocation_endpoint": f"{issuer}/revoke",
                "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": list(SCOPES),
                "subject_types_supported": ["pairwise" if profile == "entra" else "public"],
                "claims_supported": ["sub", "role", "msp_client_id", "name", "email", "email_verified"]
                if profile == "dev"
                else ["sub", "oid", "roles", "extn.msp_client_id", "name", "email", "email_verified"],
                "token_endpoint_auth_methods_supported": auth_methods,
                "revocation_endpoint_auth_methods_supported": auth_methods,
                "id_token_signing_alg_values_supported": [ALGORITHM],
                "authorization_response_iss_parameter_supported": True,  # RFC 9207
                "mspctl_dev": True,  # services outside dev refuse an issuer that says this
            }
        )

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    def refused(request: Request, exc: OAuthError) -> Response:
        return _oauth_error(exc) if _wants_json(request) else signin_page.error(exc)

    async def authorize_page(request: Request) -> Response:
        try:
            checked = check_authorization(request.query_params, redirect_uris)
        except OAuthError as exc:
            return refused(request, exc)
        return signin_page.signin(checked, people.load(layout))

    async def authorize_submit(request: Request) -> Response:
        form = await request.form()
        try:
            # The page's hidden fields come back from the browser: check them all again.
            checked = check_authorization(form, redirect_uris)
            person = people.find(layout, str(form.get("sub") or ""))
            if person is None:
                raise OAuthError("invalid_request", f"no demo person {form.get('sub')!r}")
        except OAuthError as exc:
            return refused(request, exc)
        code = provider.issue_code(checked, person)
        query = urlencode({"code": code, "state": checked.state, "iss": issuer})
        separator = "&" if "?" in checked.redirect_uri else "?"
        return RedirectResponse(f"{checked.redirect_uri}{separator}{query}", 303, headers={"Cache-Control": "no-store"})

    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        grant = form.get("grant_type")
        if grant not in GRANTS:
            return _no_store({"error": "unsupported_grant_type"}, 400)
        client_id = _authenticate(layout, request, form)
        if client_id is None:
            return _invalid_client()
        if grant not in _grants_of(client_id):
            return _no_store(
                {"error": "unauthorized_client", "error_description": f"{client_id} may not use {grant}"}, 400
            )
        try:
            if grant == "authorization_code":
                return _no_store(provider.exchange_code(client_id, form))
            if grant == "refresh_token":
                return _no_store(provider.refresh(client_id, form))
        except OAuthError as exc:
            return _oauth_error(exc)
        return _client_credentials(client_id, form)

    def _client_credentials(client_id: str, form: Any) -> JSONResponse:
        target = target_of(form)
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

    async def revoke(request: Request) -> JSONResponse:
        form = await request.form()
        client_id = _authenticate(layout, request, form)
        if client_id is None:
            return _invalid_client()
        if not form.get("token"):
            return _no_store({"error": "invalid_request", "error_description": "token is required"}, 400)
        # RFC 7009 §2.2: 200 whether or not the token was known; access tokens (JWTs) simply expire.
        provider.revoke(client_id, str(form["token"]))
        return _no_store({})

    return Starlette(
        routes=[
            Route("/.well-known/jwks.json", jwks_route),
            Route("/.well-known/openid-configuration", discovery),
            Route("/authorize", authorize_page, methods=["GET"]),
            Route("/authorize", authorize_submit, methods=["POST"]),
            Route("/oauth/token", token, methods=["POST"]),
            Route("/revoke", revoke, methods=["POST"]),
            Route("/healthz", healthz),
        ]
    )


class DevOnlyRefused(RuntimeError):
    """The dev issuer was asked to start outside MSP_ENV=dev."""


def require_dev_env(root: Path, environ: Mapping[str, str] | None = None) -> None:
    """Raise DevOnlyRefused unless MSP_ENV=dev: the process's own, else the devstack's env file.

    The dev issuer signs a token for anyone who picks a name on its page, so it never runs elsewhere.
    Supervisor hands parts a scrubbed environment, hence the devstack's env file when MSP_ENV is unset.
    """
    environ = os.environ if environ is None else environ
    value = environ.get("MSP_ENV")
    where = "MSP_ENV"
    if value is None:
        value = read_env(Layout(root).env_file).get("MSP_ENV")
        where = f"MSP_ENV in {Layout(root).env_file}"
    if value != "dev":
        raise DevOnlyRefused(
            f"the dev issuer refuses to start: {where} is {value or 'unset'!r}; it runs only with MSP_ENV=dev"
        )


def main() -> None:
    """Run the issuer on 127.0.0.1 (dev only)."""
    parser = argparse.ArgumentParser(description="mspctl dev token issuer")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--devstack", default=None)
    # docker-compose.dev.yml runs it in a container of its own; mspctl keeps it on loopback.
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    try:
        require_dev_env(devstack_dir(args.devstack))
    except DevOnlyRefused as exc:
        raise SystemExit(str(exc)) from exc
    issuer_url = os.environ.get("MSP_JWT_ISSUER") or f"http://127.0.0.1:{args.port}"
    app = create_app(devstack_dir(args.devstack), issuer_url, os.environ.get("MSP_DEV_TOKEN_PROFILE") or "dev")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False)


if __name__ == "__main__":
    main()
