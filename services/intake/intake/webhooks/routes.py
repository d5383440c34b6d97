"""PSA webhook: an HMAC-SHA256-signed callback that links a PSA ticket to a task (an internal note)."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import StringConstraints, ValidationError
from sqlmodel import Session, select

from intake.common.types import Input, Name, Output, ShortText
from intake.db import SessionDep
from intake.settings import get_settings
from intake.tasks.models import Task, TaskNote
from intake.tasks.service import add_note
from mspkit.errors import NotFound, Unauthenticated

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

TicketUrl = Annotated[str, StringConstraints(min_length=8, max_length=2000, pattern=r"^https://[!-~]+$")]


class PsaTicketLink(Input):
    """The PSA tells us which ticket tracks a task."""

    task_id: uuid.UUID
    ticket_id: ShortText
    ticket_url: TicketUrl | None = None
    summary: Name | None = None


class PsaAck(Output):
    """What was recorded."""

    task_id: uuid.UUID
    provider: str
    ticket_id: str
    recorded: bool


def _signature_ok(secret: str, raw: bytes, header: str) -> bool:
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    given = header.removeprefix("sha256=").strip().lower()
    return hmac.compare_digest(expected, given)


def _record(session: Session, provider: str, link: PsaTicketLink) -> bool:
    body = f"{provider} ticket {link.ticket_id}" + (f" {link.ticket_url}" if link.ticket_url else "")
    task = session.exec(select(Task).where(Task.id == link.task_id).with_for_update()).first()
    if task is None:
        raise NotFound("task not found")
    # A redelivered webhook adds nothing: the same link is recorded once.
    seen = session.exec(
        select(TaskNote.id).where(TaskNote.task_id == task.id, TaskNote.kind == "psa_link", TaskNote.body == body)
    ).first()
    if seen is not None:
        return False
    add_note(session, task, kind="psa_link", author=f"psa:{provider}", body=body)
    session.commit()
    return True


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
    provider: Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[a-z0-9_\-]+$")],
    request: Request,
    session: SessionDep,
    x_psa_signature: Annotated[
        str, Header(alias="X-PSA-Signature", pattern=r"^sha256=[0-9a-fA-F]{64}$", description="sha256=<hex HMAC>")
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
    recorded = await run_in_threadpool(_record, session, provider, link)
    return PsaAck(task_id=link.task_id, provider=provider, ticket_id=link.ticket_id, recorded=recorded)
