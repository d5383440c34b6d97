"""PSA webhook bodies and answers."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import StringConstraints

from intake.common.types import Input, Name, Output, ShortText
from mspkit.patterns import described

TICKET_URL = described(r"^https://[!-~]+$", "must be an https:// address without spaces")
TicketUrl = Annotated[str, StringConstraints(min_length=8, max_length=2000, pattern=TICKET_URL)]


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
