"""Credentials: create (row pending → Vault cas=0 → row active), list in scope, rotate, sweep.

The two commits around the Vault write mean a crash can leave a `pending` row; `pending` rows are
never listed or released. The sweeper finishes them: if Vault holds the secret the row becomes
`active` (and is audited then), otherwise the row is removed. Nothing is ever deleted in Vault (the
API role has no delete right): a secret whose row was swept away is an unreferenced orphan.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from mspkit.auth import Principal
from mspkit.errors import AppError, Forbidden, NotFound, Unavailable, ValidationFailed
from mspkit.logging import get_logger
from mspkit.pagination import keyset, page_of
from mspkit.tenancy import sees_client, visible
from secrets_broker.audit.service import Entry, append, audited_commit
from secrets_broker.common.types import utcnow
from secrets_broker.credentials.models import Credential
from secrets_broker.credentials.schemas import CredentialCreate, SecretRotate
from secrets_broker.errors import ReleaseDenied
from secrets_broker.intake_client import IntakeClient
from secrets_broker.release import gate
from secrets_broker.release.need_to_know import ensure_need_to_know
from secrets_broker.release.policy import in_scope, service_task_rule
from secrets_broker.settings import Settings
from secrets_broker.task_auth import TaskAuth
from secrets_broker.vault.errors import VaultError, VaultUnreachable
from secrets_broker.vault.gateway import VaultGateway, credential_path
from secrets_broker.vendor_sync_client import VendorRegistry

log = get_logger("secrets_broker.credentials")

VENDOR_SYNC = "svc:vendor_sync"


# --- who may do what ----------------------------------------------------------------------------


def _live_tasks(intake: IntakeClient, user: Principal) -> list[TaskAuth]:
    # Tasks of an inactive client are being cancelled; they open nothing.
    return [t for t in intake.tasks_in_progress(user.sub) if t.client_status == "active"]


def authorize_create(*, user: Principal, body: CredentialCreate, intake: IntakeClient) -> None:
    """Allow admin, own client_admin, a technician with a live task there, and vendor_sync for its tasks.

    vendor_sync's task is checked live by `check_provisioning_task`, after this.
    """
    if body.task_id is not None and user.sub != VENDOR_SYNC:
        # Only what a provisioning job created at a vendor is stored "for a task" (intake lets
        # vendor_sync add exactly those to the task's scope); a person stores for the client.
        raise Forbidden("only svc:vendor_sync stores a credential for a task", field="task_id")
    if user.role == "admin":
        return
    if user.role == "client_admin":
        if user.client_id != body.client_id:
            raise Forbidden("client_admin may only store credentials of their own client")
        # The MSP's own credentials are the MSP's to store, never a client's.
        if body.owner == "msp":
            raise Forbidden("client_admin may only store credentials the client owns", field="owner")
        return
    if user.role == "service":
        if user.sub != VENDOR_SYNC:
            raise Forbidden("service not allowed to store credentials")
        if body.vendor_account_id is None:
            raise ValidationFailed("vendor_sync stores credentials of vendor accounts only", field="vendor_account_id")
        if body.task_id is None:
            raise ValidationFailed(
                "task_id: vendor_sync stores only credentials it created for a provisioning task", field="task_id"
            )
        return
    if user.role == "technician":
        # A client they may not see answers as one where they have no task (as a missing client does).
        if sees_client(user, body.client_id) and any(t.client_id == body.client_id for t in _live_tasks(intake, user)):
            return
        raise Forbidden("no in-progress task of yours for this client")
    raise Forbidden("role not allowed")


def check_provisioning_task(session: Session, *, user: Principal, body: CredentialCreate, intake: IntakeClient) -> None:
    """vendor_sync's task, read live: in progress, claimed by it, of this client (active), naming the account.

    A task intake does not know is 422 naming `task_id`; a failing rule is 403 naming it
    (`service_task_rule`, and a tombstone covering the view as for a release).
    """
    if body.task_id is None:
        return
    try:
        view = intake.authorization(body.task_id)
    except NotFound:
        raise ValidationFailed("task_id: no such task", field="task_id") from None
    rule = service_task_rule(
        view, service=user.sub, client_id=body.client_id, vendor_account_id=body.vendor_account_id
    ) or gate.tombstone_rule(session, view)
    if rule is not None:
        raise Forbidden(f"the task does not allow storing this credential ({rule})", field="task_id", rule=rule)


def check_references(*, body: CredentialCreate, intake: IntakeClient, registry: VendorRegistry) -> None:
    """The client must exist in intake and the vendor account belong to it (422 naming the field; 503 when unsure)."""
    if intake.client_status(body.client_id) is None:
        raise ValidationFailed("client_id: no such client", field="client_id")
    if body.vendor_account_id is not None and registry.account_owner(body.vendor_account_id) != body.client_id:
        # An unknown account and another client's look alike.
        raise ValidationFailed("vendor_account_id: no such vendor account for this client", field="vendor_account_id")


# --- create -------------------------------------------------------------------------------------


def create(
    session: Session,
    *,
    user: Principal,
    body: CredentialCreate,
    gateway: VaultGateway,
    intake: IntakeClient,
    registry: VendorRegistry,
    settings: Settings,
) -> Credential:
    """Store a credential: metadata row `pending`, secret and notes to Vault (cas=0), row `active`."""
    authorize_create(user=user, body=body, intake=intake)
    check_provisioning_task(session, user=user, body=body, intake=intake)
    check_references(body=body, intake=intake, registry=registry)
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
        task_id=credential.task_id,
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
    """Active credentials the caller may see: technicians only those of their clients in scope of their live tasks."""
    allowed = visible(user, client_id)  # a client the caller may not see: the 404 of a missing one
    if allowed.client_ids is not None and not allowed.client_ids:
        return [], None  # a technician without an active staff row reads nothing; intake is not asked
    stmt = select(Credential).where(col(Credential.status) == "active")
    by_client = allowed.where(col(Credential.client_id))
    if by_client is not None:
        stmt = stmt.where(by_client)
    if user.role == "technician":
        condition = _scope_condition(_live_tasks(intake, user))
        if condition is None:
            return [], None
        stmt = stmt.where(condition)
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
    if user.role == "technician" and sees_client(user, credential.client_id):
        meta = gate.credential_meta(credential)
        if any(t.client_id == credential.client_id and in_scope(t.scope, meta) for t in _live_tasks(intake, user)):
            return credential
    raise NotFound("credential not found")


def get_for_service(session: Session, *, credential_id: uuid.UUID) -> Credential:
    """One active credential's metadata for intake, which checks a task's scope against its client; else 404."""
    return gate.active_credential(session, credential_id)


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
    """Write a new secret version, decided like a release for `body.task_id`, audited before Vault has it.

    The `credential.rotated` entry commits first (that commit ends the chain's lock), then Vault gets
    an HTTP PATCH of the secret (and the notes only when replaced): no failed COMMIT can leave a
    version Vault shows but the audit log lacks, the chain's lock is never held across a Vault
    call, and the broker never reads the stored notes. A Vault failure after the entry is
    recorded by a second entry with `stage: failed`.
    """
    credential = gate.active_credential(session, credential_id)
    ask = gate.Ask(
        user=user,
        credential=credential,
        task_id=body.task_id,
        reason=body.reason,
        approval_id=None,
        operation="rotate",
        now=utcnow(),
    )
    ensure_need_to_know(session, ask, gateway=gateway, settings=settings)
    gate.lock_task_and_client(session, body.task_id, credential.client_id)
    ask = replace(ask, now=utcnow())  # as a release: the decision's time once the locks are held
    rule = gate.check(session, ask, intake=intake, settings=settings).decision.rule
    if rule is not None:
        gate.refuse(session, ask, rule, gateway=gateway, settings=settings)
        raise ReleaseDenied(rule)
    path = credential_path(credential.client_id, credential.id)
    authorized = _rotated(credential, ask, at=ask.now, stage="authorized", notes_replaced=body.notes is not None)
    audited_commit(session, authorized, gateway=gateway, settings=settings)

    fields = {"secret": body.secret.get_secret_value()}
    if body.notes is not None:
        fields["notes"] = body.notes.get_secret_value()
    try:
        version = gateway.patch_secret(path, fields)
    except VaultError as exc:
        _record_rotation_failure(session, credential, ask, exc, gateway=gateway, settings=settings)
        raise
    finally:
        del fields
    try:
        # Concurrent rotations may finish out of order: the row keeps the highest version seen.
        session.execute(
            update(Credential)
            .where(col(Credential.id) == credential.id)
            .values(
                vault_version=func.greatest(func.coalesce(col(Credential.vault_version), 0), version),
                updated_at=ask.now,
            )
        )
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        log.error("rotation_metadata_not_updated", credential_id=str(credential.id), error=type(exc).__name__)
        raise Unavailable("the new version is stored and audited, but its metadata could not be updated") from None
    session.refresh(credential)
    return credential


def _rotated(credential: Credential, ask: gate.Ask, *, at: datetime, **details: Any) -> Entry:
    return Entry(
        action="credential.rotated",
        actor=ask.user.sub,
        client_id=credential.client_id,
        task_id=ask.task_id,
        credential_id=credential.id,
        details={"reason": ask.reason, **details},
        at=at,
    )


def _record_rotation_failure(
    session: Session,
    credential: Credential,
    ask: gate.Ask,
    exc: VaultError,
    *,
    gateway: VaultGateway,
    settings: Settings,
) -> None:
    """Best effort: record that the rotation audited as authorized did not (or may not) reach Vault."""
    # Refused by Vault: no version was written. Unreachable (a timeout): it may have landed.
    written = "unknown" if isinstance(exc, VaultUnreachable) else "no"
    try:
        failed = _rotated(credential, ask, at=utcnow(), stage="failed", written=written, error=type(exc).__name__)
        audited_commit(session, failed, gateway=gateway, settings=settings)
    except (AppError, SQLAlchemyError) as audit_exc:
        session.rollback()
        log.error("rotation_failure_not_audited", credential_id=str(credential.id), error=type(audit_exc).__name__)


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
