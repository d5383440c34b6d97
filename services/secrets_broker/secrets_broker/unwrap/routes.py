"""Unwrap route: `POST /v1/unwrap` (the technician). A third party reveals through `reveal/routes.py`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from mspkit.errors import ErrorBody
from secrets_broker.deps import Gateway, Intake, NoStore, SessionDep, SettingsDep, Technician, Wraps
from secrets_broker.unwrap import service
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
    attempt = service.Attempt(user=user)
    return service.unwrap_token(
        session, token=body.wrap_token, attempt=attempt, wraps=wraps, intake=intake, gateway=gateway, settings=settings
    )
