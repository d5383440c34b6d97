"""Unwrap routes: `POST /v1/unwrap` (the technician) and `POST /v1/reveal` (a third party, no token)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from mspkit.errors import ErrorBody
from secrets_broker.deps import Gateway, Intake, NoStore, SessionDep, SettingsDep, Technician, Wraps
from secrets_broker.unwrap import service
from secrets_broker.unwrap.ratelimit import get_limiter
from secrets_broker.unwrap.schemas import Revealed, UnwrapRequest

router = APIRouter(tags=["unwrap"])

RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "`wrap_token_wrong_path`: the token wraps another path"},
    403: {"model": ErrorBody, "description": "`forbidden` (not this caller's release) or `release_denied`"},
    410: {"model": ErrorBody, "description": "`wrap_token_invalid`: used, revoked, expired or unknown"},
}


# The answer holds plaintext: no cache of any kind may keep it (NoStore).
@router.post("/v1/unwrap", response_model=Revealed, responses=RESPONSES, dependencies=[NoStore])
def unwrap(
    body: UnwrapRequest,
    session: SessionDep,
    user: Technician,
    wraps: Wraps,
    intake: Intake,
    gateway: Gateway,
    settings: SettingsDep,
) -> Revealed:
    """Unwrap a released token for the release's technician, once, after a live re-check."""
    attempt = service.Attempt(door="unwrap", sub=user.sub)
    return service.unwrap_token(
        session, token=body.wrap_token, attempt=attempt, wraps=wraps, intake=intake, gateway=gateway, settings=settings
    )


@router.post(
    "/v1/reveal",
    response_model=Revealed,
    responses={**RESPONSES, 429: {"model": ErrorBody, "description": "Too many attempts from this address"}},
    openapi_extra={"security": []},
    dependencies=[NoStore],
)
def reveal(
    body: UnwrapRequest,
    request: Request,
    session: SessionDep,
    wraps: Wraps,
    intake: Intake,
    gateway: Gateway,
    settings: SettingsDep,
) -> Revealed:
    """Reveal a third party's mailed token once (no bearer token; rate limited per address)."""
    address = request.client.host if request.client else "unknown"
    get_limiter(settings.redis_url, settings.reveal_rate_limit, settings.redis_timeout_s).hit(address)
    attempt = service.Attempt(door="reveal", client_ip=address)
    return service.unwrap_token(
        session, token=body.wrap_token, attempt=attempt, wraps=wraps, intake=intake, gateway=gateway, settings=settings
    )
