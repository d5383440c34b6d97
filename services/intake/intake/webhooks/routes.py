"""PSA webhook: an HMAC-SHA256-signed callback that links a PSA ticket to a task (an internal note)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from intake.deps import SessionDep
from intake.settings import get_settings
from intake.webhooks.schemas import PsaAck, PsaTicketLink
from intake.webhooks.service import record_ticket_link
from mspkit.errors import NotFound, Unauthenticated
from mspkit.patterns import described

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

PROVIDER = described(r"^[a-z0-9_\-]+$", "may contain only lowercase letters, digits, '_' and '-'")
SIGNATURE = described(r"^sha256=[0-9a-fA-F]{64}$", "must be sha256= followed by 64 hexadecimal digits")


def _signature_ok(secret: str, raw: bytes, header: str) -> bool:
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    given = header.removeprefix("sha256=").strip().lower()
    return hmac.compare_digest(expected, given)


@router.post(
    "/psa/{provider}",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PsaTicketLink.model_json_schema()}},
        }
    },
)
async def psa_webhook(
    provider: Annotated[str, Path(min_length=1, max_length=40, pattern=PROVIDER)],
    request: Request,
    session: SessionDep,
    x_psa_signature: Annotated[
        str, Header(alias="X-PSA-Signature", pattern=SIGNATURE, description="sha256=<hex HMAC>")
    ],
) -> PsaAck:
    """Record a PSA ticket link on a task; the HMAC is checked over the raw body before it is parsed."""
    secrets = get_settings().psa_webhook_secrets
    secret = secrets.get(provider)
    if secret is None:
        raise NotFound("unknown PSA provider")
    raw = await request.body()
    if not _signature_ok(secret.get_secret_value(), raw, x_psa_signature):
        raise Unauthenticated("bad webhook signature")
    try:
        link = PsaTicketLink.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from exc
    recorded = await run_in_threadpool(record_ticket_link, session, provider=provider, link=link)
    return PsaAck(task_id=link.task_id, provider=provider, ticket_id=link.ticket_id, recorded=recorded)
