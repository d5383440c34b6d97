"""`POST /v1/reveal`: a third party's mailed code shows the credential once (no bearer token)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from mspkit.errors import ErrorBody
from secrets_broker.deps import Gateway, Intake, NoStore, SessionDep, SettingsDep, Wraps
from secrets_broker.reveal import service
from secrets_broker.reveal.ratelimit import get_limiter
from secrets_broker.reveal.schemas import Revealed, RevealRequest

router = APIRouter(tags=["reveal"])

# Every status this route answers (the app adds 413 and the rest of the common errors).
RESPONSES: dict[int | str, dict[str, Any]] = {
    410: {
        "model": ErrorBody,
        "description": "`reveal_code_invalid`: unknown, used, expired or withdrawn (a failed live re-check "
        "withdraws the release)",
    },
    422: {"model": ErrorBody, "description": "`validation_error`: the body is not `{code}` with a well-formed code"},
    429: {"model": ErrorBody, "description": "`rate_limited`: too many attempts from this address (`Retry-After`)"},
    503: {"model": ErrorBody, "description": "`unavailable`: intake, Vault, the audit log or the rate limiter"},
}


# The answer holds plaintext: no cache of any kind may keep it (NoStore).
@router.post(
    "/v1/reveal",
    response_model=Revealed,
    responses=RESPONSES,
    openapi_extra={"security": []},
    dependencies=[NoStore],
)
def reveal(
    body: RevealRequest,
    request: Request,
    session: SessionDep,
    intake: Intake,
    gateway: Gateway,
    wraps: Wraps,
    settings: SettingsDep,
) -> Revealed:
    """Reveal a third party's credential once, by the code mailed to them (rate limited per address)."""
    address = request.client.host if request.client else "unknown"
    get_limiter(settings.redis_url, settings.reveal_rate_limit, settings.redis_timeout_s).hit(address)
    return service.reveal_code(
        session, code=body.code, client_ip=address, intake=intake, gateway=gateway, wraps=wraps, settings=settings
    )
