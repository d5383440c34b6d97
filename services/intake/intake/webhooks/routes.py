"""PSA webhook: `POST /v1/webhooks/psa/{provider}`, the configured PSA's signed callback (intake.psa.inbound)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool

from intake.deps import SessionDep
from intake.psa.protocol import MAX_CALLBACK_BYTES
from intake.settings import get_settings
from intake.webhooks.schemas import CallbackAck
from intake.webhooks.service import receive
from mspkit.errors import NotFound, PayloadTooLarge
from mspkit.patterns import described

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

PROVIDER = described(r"^[a-z0-9_\-]+$", "may contain only lowercase letters, digits, '_' and '-'")


@router.post(
    "/psa/{provider}",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def psa_webhook(
    provider: Annotated[str, Path(min_length=1, max_length=40, pattern=PROVIDER)],
    request: Request,
    session: SessionDep,
) -> CallbackAck:
    """Apply the configured PSA's callback: parsed, then its signature checked, then the ticket re-fetched."""
    configured = get_settings().psa_provider
    if configured == "none" or provider != configured:
        raise NotFound("unknown PSA provider: only the configured PSA calls this")
    raw = await request.body()
    if len(raw) > MAX_CALLBACK_BYTES:
        raise PayloadTooLarge(f"a PSA callback is at most {MAX_CALLBACK_BYTES} bytes")
    return await run_in_threadpool(receive, session, raw=raw, headers=dict(request.headers))
