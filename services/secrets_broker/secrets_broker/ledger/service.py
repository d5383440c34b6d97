"""Recording and reading the disclosure ledger.

The ledger holds credential releases to third parties (`record`, in the release's transaction) and
information disclosures (`record_information`, `POST /internal/disclosures`) in one shape.

Order of one information disclosure (one transaction):

1. Take the caller's idempotency key's lock and look the key up: a row already recorded under it
   is the answer (the same body, or 409 naming `idempotency_key`), and nothing is read or written.
2. Take the task's lock (the worker's revocation of the task takes it too) and read intake's
   authorization view live (unreachable, slow or malformed: 503; a task it does not know: 404).
3. `decide_disclosure` on the view; a tombstone covering the view overrides an allow. A denial is
   audited (`disclosure.denied`, with its rule) and committed before the 403.
4. Insert the ledger row and audit it (`disclosure.recorded`), and COMMIT. Only then does the caller
   hear 201, and only then may it send the information.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Select, select
from sqlmodel import Session, col

from mspkit.auth import Principal
from mspkit.db import advisory_xact_lock
from mspkit.errors import Conflict
from mspkit.pagination import keyset, page_of
from secrets_broker.audit.service import Entry, audited_commit
from secrets_broker.common.types import utcnow
from secrets_broker.errors import DisclosureDenied
from secrets_broker.intake_client import IntakeClient
from secrets_broker.ledger.models import Disclosure
from secrets_broker.ledger.policy import APPROVAL_NOT_FOR_TASK, decide_disclosure
from secrets_broker.ledger.schemas import InformationDisclosureCreate
from secrets_broker.release import gate
from secrets_broker.release.models import Release
from secrets_broker.settings import Settings
from secrets_broker.task_auth import Approval
from secrets_broker.vault.gateway import VaultGateway

KEY_LOCK_NAMESPACE: Final = "secrets_broker.disclosure_key"


def record(session: Session, *, release: Release, approval: Approval, disclosed_by: str) -> Disclosure:
    """Add the ledger row of one third-party release (made on `approval`), in the caller's transaction."""
    row = Disclosure(
        **release.model_dump(include={"client_id", "task_id", "credential_id", "approval_id", "created_at"}),
        id=uuid.uuid4(),
        kind="credential",
        release_id=release.id,
        vendor_id=approval.recipient.vendor_id,
        party_category=approval.recipient.party_category,
        recipient_name=approval.recipient.name,
        recipient_contact_email=approval.recipient.contact_email,
        legal_reference=approval.recipient.legal_reference,
        information_categories=sorted(approval.information_categories),
        disclosed_by=disclosed_by,
    )
    session.add(row)
    return row


# --- information disclosures ------------------------------------------------------------------------


def _by_key(session: Session, *, actor: str, key: str) -> Disclosure | None:
    return session.execute(
        select(Disclosure).where(col(Disclosure.disclosed_by) == actor, col(Disclosure.idempotency_key) == key)
    ).scalar_one_or_none()


def _same_ask(row: Disclosure, body: InformationDisclosureCreate) -> bool:
    return (row.kind, row.approval_id, row.task_id, row.vendor_id, sorted(row.information_categories)) == (
        "information",
        body.approval_id,
        body.task_id,
        body.vendor_id,
        sorted(set(body.information_categories)),
    )


def _entry(
    action: str,
    *,
    user: Principal,
    body: InformationDisclosureCreate,
    client_id: uuid.UUID,
    at: datetime,
    rule: str | None = None,
    **extra: Any,
) -> Entry:
    return Entry(
        action=action,
        actor=user.sub,
        client_id=client_id,
        task_id=body.task_id,
        rule=rule,
        details={
            "kind": "information",
            "approval_id": str(body.approval_id),
            "vendor_id": str(body.vendor_id),
            "information_categories": sorted(set(body.information_categories)),
            "idempotency_key": body.idempotency_key,
            **extra,
        },
        at=at,
    )


def record_information(
    session: Session,
    *,
    user: Principal,
    body: InformationDisclosureCreate,
    intake: IntakeClient,
    gateway: VaultGateway,
    settings: Settings,
) -> tuple[Disclosure, bool]:
    """`POST /internal/disclosures`: decide on intake's live view, record and audit; (row, created).

    A retry under the same idempotency key returns the first row (created False) without asking
    intake again: the information may already be on its way. A refusal records nothing (it is
    audited), so a retry after one is decided afresh.
    """
    advisory_xact_lock(session, KEY_LOCK_NAMESPACE, f"{user.sub}:{body.idempotency_key}")
    earlier = _by_key(session, actor=user.sub, key=body.idempotency_key)
    if earlier is not None:
        # Detached as loaded, then the rollback ends the key's lock (nothing was written).
        session.expunge(earlier)
        session.rollback()
        if not _same_ask(earlier, body):
            raise Conflict("idempotency_key was used for another disclosure", field="idempotency_key")
        return earlier, False

    gate.lock_task(session, body.task_id)
    view = intake.authorization(body.task_id)
    now = utcnow()
    rule = decide_disclosure(
        view,
        caller=user.sub,
        approval_id=body.approval_id,
        vendor_id=body.vendor_id,
        categories=body.information_categories,
        now=now,
    ) or gate.tombstone_rule(session, view)
    # `decide_disclosure` allows only an approval the live view lists.
    approval = view.approval(body.approval_id)
    if rule is not None or approval is None:
        rule = rule or APPROVAL_NOT_FOR_TASK
        denied = _entry("disclosure.denied", user=user, body=body, client_id=view.client_id, at=now, rule=rule)
        audited_commit(session, denied, gateway=gateway, settings=settings)
        raise DisclosureDenied(rule)

    row = Disclosure(
        id=uuid.uuid4(),
        client_id=view.client_id,
        task_id=view.task_id,
        kind="information",
        release_id=None,
        credential_id=None,
        vendor_id=body.vendor_id,
        party_category=approval.recipient.party_category,
        recipient_name=approval.recipient.name,
        recipient_contact_email=approval.recipient.contact_email,
        approval_id=approval.id,
        legal_reference=approval.recipient.legal_reference,
        information_categories=sorted(set(body.information_categories)),
        disclosed_by=user.sub,
        idempotency_key=body.idempotency_key,
        created_at=now,
    )
    session.add(row)
    session.flush()
    recorded = _entry(
        "disclosure.recorded", user=user, body=body, client_id=view.client_id, at=now, disclosure_id=str(row.id)
    )
    audited_commit(session, recorded, gateway=gateway, settings=settings)
    return row, True


# --- reading --------------------------------------------------------------------------------------


def _filtered(client_id: uuid.UUID | None) -> Select[Any]:
    stmt = select(Disclosure)
    return stmt if client_id is None else stmt.where(col(Disclosure.client_id) == client_id)


def list_page(
    session: Session, *, client_id: uuid.UUID | None, limit: int, cursor: str | None
) -> tuple[list[Disclosure], str | None]:
    """A page of ledger rows, oldest first, with the next cursor."""
    stmt = keyset(
        _filtered(client_id), at=col(Disclosure.created_at), id_=col(Disclosure.id), limit=limit, cursor=cursor
    )
    rows = session.execute(stmt).scalars().all()
    return page_of(rows, limit=limit, key=lambda d: (d.created_at, d.id))


def iter_all(session: Session, *, client_id: uuid.UUID | None) -> Iterator[Disclosure]:
    """Every ledger row (for the CSV export), oldest first."""
    stmt = _filtered(client_id).order_by(col(Disclosure.created_at), col(Disclosure.id))
    yield from session.execute(stmt.execution_options(yield_per=500)).scalars()


def as_row(row: Disclosure) -> dict[str, Any]:
    """The ledger row with the CSV/JSON column names."""
    return {
        "disclosure_id": row.id,
        "created_at": row.created_at,
        "client_id": row.client_id,
        "task_id": row.task_id,
        "release_id": row.release_id,
        "credential_id": row.credential_id,
        "party_category": row.party_category,
        "recipient_name": row.recipient_name,
        "recipient_contact_email": row.recipient_contact_email,
        "approval_id": row.approval_id,
        "legal_reference": row.legal_reference,
        "information_categories": list(row.information_categories),
        "disclosed_by": row.disclosed_by,
        "kind": row.kind,
        "vendor_id": row.vendor_id,
    }
