"""Release API shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from secrets_broker.common.types import NO_CONTROLS, Input, Output, Reason, UtcDatetime
from secrets_broker.ledger.models import Disclosure
from secrets_broker.release.models import Release


class ReleaseCreate(Input):
    """`POST /v1/releases`: a missing reason is 422 here; a short one is the `reason_too_short` rule."""

    task_id: uuid.UUID
    credential_id: uuid.UUID
    reason: Reason
    approval_id: uuid.UUID | None = None


class ReleaseIssued(Output):
    """201 of `POST /v1/releases`."""

    # `wrap_token` is null for a release with `approval_id`: the token went to the approval's
    # recipient by mail, and the technician must never see it.

    release_id: uuid.UUID
    wrap_token: str | None
    wrap_ttl: int
    expires_at: UtcDatetime


RecipientKind = Literal["technician", "third_party", "service"]


class Recipient(Output):
    """Who a release went to: the technician, an approval's third party, or a service (`sub`)."""

    # `kind` is the contract's name (DESIGN.md, `GET /v1/releases`); `type`, the same value, is
    # kept for the clients written before the list existed.
    kind: RecipientKind
    type: RecipientKind
    sub: str | None = None
    name: str | None = None
    party_category: str | None = None


class ReleasePublic(Output):
    """`GET /v1/releases/{id}` and the items of `GET /v1/releases`: never a token, fingerprint or accessor."""

    id: uuid.UUID
    # Null only for a service release that named no task.
    task_id: uuid.UUID | None
    credential_id: uuid.UUID
    recipient: Recipient
    approval_id: uuid.UUID | None
    # Why it was asked for (a service release: its job); null only for rows older than the column
    # that had no audit entry to fill it from.
    reason: str | None
    status: Literal["issued", "unwrapped", "revoked", "expired"]
    expires_at: UtcDatetime
    created_at: UtcDatetime

    @classmethod
    def of(cls, release: Release, disclosure: Disclosure | None, *, now: datetime) -> ReleasePublic:
        """The public view of a release row (and, for a third party, its ledger row) at `now`."""
        # The row stays `issued` until something closes it; past its TTL the token is dead anyway.
        expired = release.status == "issued" and release.expires_at <= now
        if release.recipient_type == "third_party":
            recipient = Recipient(
                kind="third_party",
                type="third_party",
                name=disclosure.recipient_name if disclosure else None,
                party_category=disclosure.party_category if disclosure else None,
            )
        elif release.recipient_type == "service":
            recipient = Recipient(kind="service", type="service", sub=release.technician)
        else:
            recipient = Recipient(kind="technician", type="technician", sub=release.technician)
        return cls.model_validate(
            {**release.model_dump(), "recipient": recipient, "status": "expired" if expired else release.status}
        )


class ReleaseForIntake(ReleasePublic):
    """`GET /internal/releases/{id}` (svc:intake, for the access alert): the release with its client
    and the credential's name; never a secret, token, fingerprint or accessor."""

    client_id: uuid.UUID
    credential_name: str

    @classmethod
    def with_name(
        cls, release: Release, disclosure: Disclosure | None, *, credential_name: str, now: datetime
    ) -> ReleaseForIntake:
        """The internal view of a release row and its credential's name."""
        public = ReleasePublic.of(release, disclosure, now=now)
        return cls.model_validate(
            {**public.model_dump(), "client_id": release.client_id, "credential_name": credential_name}
        )


class ServiceReleaseCreate(Input):
    """`POST /internal/service-releases`; a provisioning job names its task (checked live at intake)."""

    credential_id: uuid.UUID
    vendor_account_id: uuid.UUID
    job_id: Annotated[str, Field(min_length=1, max_length=200, pattern=NO_CONTROLS)]
    task_id: uuid.UUID | None = None


class ServiceReleaseIssued(Output):
    """201 of `POST /internal/service-releases`."""

    wrap_token: str
    wrap_ttl: int
