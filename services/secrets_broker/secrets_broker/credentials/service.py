"""Credentials: create (row pending → Vault cas=0 → row active), list in scope, rotate, sweep.

The two commits around the Vault write mean a crash can leave a `pending` row; `pending` rows are
never listed or released. The sweeper finishes them: if Vault holds the secret the row becomes
`active` (and is audited then), otherwise the row is removed. Nothing is ever deleted in Vault (the
API role has no delete right): a secret whose row was swept away is an unreferenced orphan.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from mspkit.auth import Principal
from mspkit.errors import AppError, Forbidden, NotFound, Unavailable, ValidationFailed
from mspkit.logging import get_logger
from mspkit.pagination import keyset, page_of
from secrets_broker.audit.service import Entry, append, audited_commit
from secrets_broker.common.types import utcnow
from secrets_broker.credentials.models import Credential
from secrets_broker.credentials.schemas import CredentialCreate, SecretRotate
from secrets_broker.errors import ReleaseDenied
from secrets_broker.intake_client import IntakeClient
from secrets_broker.release import gate
from secrets_broker.release.policy import in_scope
from secrets_broker.settings import Settings
from secrets_broker.task_auth import TaskAuth
from secrets_broker.vault.errors import VaultError
from secrets_broker.vault.gateway import VaultGateway, credential_path

log = get_logger("secrets_broker.credentials")

VENDOR_SYNC = "svc:vendor_sync"


# --- who may do what ----------------------------------------------------------------------------


def _live_tasks(intake: IntakeClient, user: Principal) -> list[TaskAuth]:
    # Tasks of an inactive client are being cancelled; they open nothing.
    return [t for t in intake.tasks_in_progress(user.sub) if t.client_status == "active"]


def authorize_create(*, user: Principal, body: CredentialCreate, intake: IntakeClient) -> None:
    """Allow admin, own client_admin, a technician with a live task there, and vendor_sync for accounts."""
    if user.role == "admin":
        return
    if user.role == "client_admin":
        if user.client_id == body.client_id:
            return
        raise Forbidden("client_admin may only store credentials of their own client")
    if user.role == "service":
        if user.sub != VENDOR_SYNC:
            raise Forbidden("service not allowed to store credentials")
        if body.vendor_account_id is None:
            raise ValidationFailed("vendor_sync stores credentials of vendor accounts only", field="vendor_account_id")
        return
    if user.role == "technician":
        if any(t.client_id == body.client_id for t in _live_tasks(intake, user)):
            return
        raise Forbidden("no in-progress task of yours for this client")
    raise Forbidden("role not allowed")


# --- create -------------------------------------------------------------------------------------


def create(
    session: Session,
    *,
    user: Principal,
    body: CredentialCreate,
    gateway: VaultGateway,
    intake: IntakeClient,
    settings: Settings,
) -> Credential:
    """Store a credential: metadata row `pending`, secret and notes to Vault (cas=0), row `active`."""
    authorize_create(user=user, body=body, intake=intake)
    now = utcnow()
    credential = Credential(
        **body.model_dump(exclude={"secret", "notes"}),
        id=uuid.uuid4(),
        status="pending",
        created_by=user.sub,
        created_at=now,
        updated_at=now,
    )
    session.add(credential)
    session.commit()

    data = {
        "secret": body.secret.get_secret_value(),
        "notes": body.notes.get_secret_value() if body.notes is not None else "",
    }
    # A failure leaves the row pending: the write may have landed, so only the sweeper (which
    # looks in Vault) decides between active and removed.
    version = gateway.create_secret(credential_path(credential.client_id, credential.id), data)
    del data

    activated_at = utcnow()
    result = session.execute(
        update(Credential)
        .where(col(Credential.id) == credential.id, col(Credential.status) == "pending")
        .values(status="active", vault_version=version, updated_at=activated_at)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Unavailable("credential creation took too long and was abandoned")
    audited_commit(session, _created(credential, actor=user.sub, at=activated_at), gateway=gateway, settings=settings)
    credential.status = "active"
    credential.vault_version = version
    credential.updated_at = activated_at
    return credential


def _created(credential: Credential, *, actor: str, at: datetime | None = None, **extra: str) -> Entry:
    return Entry(
        action="credential.created",
        actor=actor,
        client_id=credential.client_id,
        credential_id=credential.id,
        details={
            "kind": credential.kind,
            "owner": credential.owner,
            "category": credential.category,
            "vendor_account_id": str(credential.vendor_account_id) if credential.vendor_account_id else None,
            **extra,
        },
        at=at,
    )


# --- read ---------------------------------------------------------------------------------------


def _scope_condition(tasks: list[TaskAuth]) -> ColumnElement[bool] | None:
    conditions = []
    for task in tasks:
        parts: list[Any] = []
        if task.scope.credential_ids:
            parts.append(col(Credential.id).in_(sorted(task.scope.credential_ids)))
        if task.scope.vendor_account_ids and task.scope.credential_categories:
            # A category alone never opens anything: only together with a vendor account.
            parts.append(
                and_(
                    col(Credential.vendor_account_id).in_(sorted(task.scope.vendor_account_ids)),
                    col(Credential.category).in_(sorted(task.scope.credential_categories)),
                )
            )
        if parts:
            conditions.append(and_(col(Credential.client_id) == task.client_id, or_(*parts)))
    return or_(*conditions) if conditions else None


def list_visible(
    session: Session,
    *,
    user: Principal,
    intake: IntakeClient,
    client_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Credential], str | None]:
    """Active credentials the caller may see: technicians only those in scope of their live tasks."""
    stmt = select(Credential).where(col(Credential.status) == "active")
    if user.role == "client_admin":
        client_id = user.client_id
    elif user.role == "technician":
        condition = _scope_condition(_live_tasks(intake, user))
        if condition is None:
            return [], None
        stmt = stmt.where(condition)
    if client_id is not None:
        stmt = stmt.where(col(Credential.client_id) == client_id)
    stmt = keyset(stmt, at=col(Credential.created_at), id_=col(Credential.id), limit=limit, cursor=cursor)
    rows = session.execute(stmt).scalars().all()
    return page_of(rows, limit=limit, key=lambda c: (c.created_at, c.id))


def get_visible(session: Session, *, user: Principal, intake: IntakeClient, credential_id: uuid.UUID) -> Credential:
    """One active credential, or the 404 of a missing one when the caller may not see it."""
    credential = session.get(Credential, credential_id)
    if credential is None or credential.status != "active":
        raise NotFound("credential not found")
    if user.role == "admin":
        return credential
    if user.role == "client_admin" and user.client_id == credential.client_id:
        return credential
    if user.role == "technician":
        meta = gate.credential_meta(credential)
        if any(t.client_id == credential.client_id and in_scope(t.scope, meta) for t in _live_tasks(intake, user)):
            return credential
    raise NotFound("credential not found")


# --- rotate -------------------------------------------------------------------------------------


def rotate(
    session: Session,
    *,
    user: Principal,
    credential_id: uuid.UUID,
    body: SecretRotate,
    gateway: VaultGateway,
    intake: IntakeClient,
    settings: Settings,
) -> Credential:
    """Write a new secret version, decided like a release for `body.task_id` and audited first."""
    credential = gate.locked_credential(session, credential_id=credential_id, task_id=body.task_id)
    ask = gate.Ask(
        user=user,
        credential=credential,
        task_id=body.task_id,
        reason=body.reason,
        approval_id=None,
        operation="rotate",
        now=utcnow(),
    )
    rule = gate.check(session, ask, intake=intake, settings=settings).decision.rule
    if rule is not None:
        audited_commit(session, gate.denial(session, ask, rule), gateway=gateway, settings=settings)
        raise ReleaseDenied(rule)
    path = credential_path(credential.client_id, credential.id)

    def write_version() -> None:
        # After the entry is written (and its insert checked), before COMMIT: a rotation that cannot
        # be audited does not happen. The chain lock is held across the Vault write; rotations are rare.
        if body.notes is not None:
            notes = body.notes.get_secret_value()
        else:
            notes = str(gateway.read_secret(path).get("notes", ""))
        data = {"secret": body.secret.get_secret_value(), "notes": notes}
        del notes
        credential.vault_version = gateway.write_version(path, data)
        del data
        credential.updated_at = ask.now
        session.add(credential)

    entry = Entry(
        action="credential.rotated",
        actor=user.sub,
        client_id=credential.client_id,
        task_id=body.task_id,
        credential_id=credential.id,
        details={"reason": body.reason, "notes_replaced": body.notes is not None},
        at=ask.now,
    )
    audited_commit(session, entry, gateway=gateway, settings=settings, before_commit=write_version)
    return credential


# --- sweeper ------------------------------------------------------------------------------------


def sweep_pending(
    engine: Engine, *, gateway: VaultGateway, grace_s: float, now: datetime | None = None
) -> dict[str, int]:
    """Finish `pending` rows older than `grace_s`: active if Vault has the secret, else removed."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=grace_s)
    counts = {"activated": 0, "removed": 0, "skipped": 0}
    with Session(engine) as session:
        ids = list(
            session.execute(
                select(col(Credential.id))
                .where(col(Credential.status) == "pending", col(Credential.created_at) <= cutoff)
                .order_by(col(Credential.created_at))
                .limit(200)
            ).scalars()
        )
    for credential_id in ids:
        try:
            with Session(engine) as session, session.begin():
                credential = session.execute(
                    select(Credential)
                    .where(col(Credential.id) == credential_id, col(Credential.status) == "pending")
                    .with_for_update(skip_locked=True)
                ).scalar_one_or_none()
                if credential is None:
                    continue
                if gateway.exists(credential_path(credential.client_id, credential.id)):
                    credential.status = "active"
                    credential.updated_at = utcnow()
                    session.add(credential)
                    append(session, _created(credential, actor=credential.created_by, completed_by="sweeper"))
                    counts["activated"] += 1
                else:
                    session.delete(credential)
                    counts["removed"] += 1
        except (VaultError, AppError, SQLAlchemyError) as exc:
            # Vault down or the audit refused: leave the row pending for the next round.
            log.warning("sweep_pending_failed", error=type(exc).__name__)
            counts["skipped"] += 1
    if counts["activated"] or counts["removed"]:
        log.info("sweep_pending", **counts)
    return counts
