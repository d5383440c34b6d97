"""`POST /v1/requests` without FastAPI's per-request parameter machinery, when the request is plain.

FastAPI solves the route's dependencies (bearer scheme, role check), the Idempotency-Key header and
the body through its generic machinery on every call; on intake's hottest route that costs more
than the create itself. `PlainCreateRoute` keeps the route as declared (its OpenAPI, its errors) and
puts a direct path in front of it for the common case: JSON content type, a bearer token already
verified and cached, an allowed role, a well-formed Idempotency-Key and a body that validates. The
checks are the same ones, made with the same validators. Anything else (a missing or unseen token,
a bad header, a body that fails) goes to FastAPI's own handler, so every error is the one FastAPI
would give, byte for byte. The direct path solves no dependency, so `dependency_overrides` do
not reach it (the route's only dependency is the role check).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from mspkit.auth import Principal

Endpoint = Callable[[Request, Any, str, Principal], Awaitable[Response]]


class PlainRequest:
    """What the direct path needs from the route: the body model, the allowed roles and the key rule."""

    def __init__(self, body_type: Any, roles: frozenset[str], key_pattern: str, key_max_length: int) -> None:
        self.body = TypeAdapter(body_type)
        self.roles = roles
        self.key = re.compile(key_pattern)
        self.key_max_length = key_max_length

    def principal(self, request: Request, authorization: str | None) -> Principal | None:
        """The cached principal of a `Bearer` token with an allowed role, else None (the slow path decides)."""
        # FastAPI's own parser (the one HTTPBearer uses), so both paths read the same token.
        scheme, token = get_authorization_scheme_param(authorization)
        if scheme.lower() != "bearer" or not token:
            return None
        principal: Principal | None = request.app.state.verified_tokens.get(token)
        if principal is None or principal.role not in self.roles:
            return None
        return principal

    def idempotency_key(self, value: str | None) -> str | None:
        """The header when FastAPI's own constraints (length 1..max, pattern) would accept it."""
        if value is None or len(value) > self.key_max_length or self.key.fullmatch(value) is None:
            return None
        return value

    def parse(self, raw: bytes) -> Any:
        """The validated body, or None when FastAPI's parser would answer with an error."""
        try:
            return self.body.validate_python(json.loads(raw))
        except (ValueError, ValidationError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            return None


def plain_route_class(plain: PlainRequest, endpoint: Endpoint) -> type[APIRoute]:
    """An APIRoute class whose handler takes the direct path for plain requests and FastAPI's otherwise."""

    class PlainCreateRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            standard = super().get_route_handler()

            async def handler(request: Request) -> Response:
                headers = _headers(request)
                if headers.get("content-type") != "application/json":
                    return await standard(request)
                user = plain.principal(request, headers.get("authorization"))
                key = plain.idempotency_key(headers.get("idempotency-key"))
                if user is None or key is None:
                    return await standard(request)
                body = plain.parse(await request.body())
                if body is None:
                    return await standard(request)
                return await endpoint(request, body, key, user)

            return handler

    return PlainCreateRoute


def _headers(request: Request) -> dict[str, str]:
    """The request's headers by lower-case name; a repeated header maps to '' so that it takes the slow path."""
    seen: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:
        name = raw_name.decode("latin-1")
        seen[name] = "" if name in seen else raw_value.decode("latin-1")
    return seen
