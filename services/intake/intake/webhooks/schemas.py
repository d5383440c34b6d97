"""PSA webhook answers."""

from __future__ import annotations

from intake.common.types import Output


class CallbackAck(Output):
    """What a callback did: `applied` false for a replay or a ticket no task is linked to."""

    applied: bool
    outcome: str
