"""Staff bodies and views (DESIGN.md § Contract: staff directory and need-to-know)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, StrictBool, StringConstraints

from intake.common.types import NO_NUL, Email, Input, Name, Output, UtcDatetime
from intake.tasks.schemas import SUBJECT_PATTERN, Assignee
from mspkit.vocabulary import PsaProvider, StaffRole

# A staff member's `sub` follows the assignee's rules (`Assignee`): a person's subject, never a service's.
StaffSubPattern = SUBJECT_PATTERN
PsaMemberId = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NO_NUL)]
PsaMemberIds = Annotated[dict[PsaProvider, PsaMemberId], Field(max_length=3)]
# null: every client; a list: those clients only (an empty list: none).
ClientIds = Annotated[list[uuid.UUID] | None, Field(max_length=1000)]


class StaffCreate(Input):
    """POST /v1/staff."""

    sub: Assignee
    display_name: Name
    email: Email
    role: StaffRole
    active: StrictBool = True
    psa_member_ids: PsaMemberIds = Field(default_factory=dict)
    client_ids: ClientIds = None


class StaffUpdate(Input):
    """PATCH /v1/staff/{sub}: fields left out stay as they are; `client_ids: null` means every client."""

    display_name: Name | None = None
    email: Email | None = None
    role: StaffRole | None = None
    active: StrictBool | None = None
    psa_member_ids: PsaMemberIds | None = None
    client_ids: ClientIds = None


class StaffPublic(Output):
    """A staff member: who they are, their role, and the clients they may work for."""

    sub: str
    display_name: str
    email: str
    role: StaffRole
    active: bool
    psa_member_ids: dict[str, str]
    client_ids: list[uuid.UUID] | None
    created_at: UtcDatetime
    updated_at: UtcDatetime
