"""Requests: creating one (idempotent, expanded into tasks and approvals in one transaction), and reads."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from intake.approvals.models import Approval
from intake.clients.models import Client
from intake.common.queries import get_visible, tenant_page
from intake.common.types import new_id, utcnow
from intake.events import approval_created_data, emit
from intake.idempotency import service as idem
from intake.requests.expansion import SCOPED_VENDOR_KINDS, AnyBody, Plan, expand, reads_registry
from intake.requests.models import ServiceRequest
from intake.requests.schemas import BODY_TYPES, RequestDetail, RequestPublic, VendorContactUpdateBody
from intake.settings import get_settings
from intake.tasks.models import Task, TaskNote
from intake.vendors import ClientAccount, VendorAccountInfo, VendorRegistry, get_registry
from mspkit.auth import Principal
from mspkit.errors import Conflict, NotFound, Unavailable, ValidationFailed
from mspkit.logging import get_logger

log = get_logger("intake.requests")


def target_client(user: Principal, body: AnyBody) -> uuid.UUID:
    """The client a request is for: the caller's own for client roles; the body's `client_id` for admins."""
    client_id = getattr(body, "client_id", None)
    if user.is_client:
        if client_id is not None:
            raise ValidationFailed("client_id: a client role cannot name a client", field="client_id")
        assert user.client_id is not None
        return user.client_id
    if client_id is None:
        raise ValidationFailed("client_id: required for an admin", field="client_id")
    return uuid.UUID(str(client_id))


def vendor_info(registry: VendorRegistry, body: AnyBody, client_id: uuid.UUID) -> VendorAccountInfo | None:
    """For a vendor_contact_update: its account (404 unless the client's) and, when needed, its vendor."""
    if not isinstance(body, VendorContactUpdateBody):
        return None
    changes = body.contacts
    info = registry.account_for_client(
        body.vendor_account_id, client_id, with_vendor=bool(changes.add or changes.update)
    )
    if info.contact_ids is not None:
        for section, ids in (("update", [c.id for c in changes.update]), ("remove", changes.remove)):
            for index, contact_id in enumerate(ids):
                if str(contact_id) not in info.contact_ids:
                    # An unknown referenced id is a 404, like an unknown vendor account.
                    suffix = ".id" if section == "update" else ""
                    raise NotFound("contact not found", field=f"contacts.{section}.{index}{suffix}")
    return info


def registry_accounts(registry: VendorRegistry, client_id: uuid.UUID) -> tuple[ClientAccount, ...] | None:
    """The client's vendor accounts for scoping, or None when vendor_sync does not answer in time."""
    try:
        return registry.client_accounts(client_id, vendor_kinds=SCOPED_VENDOR_KINDS)
    except Unavailable as exc:
        # Not a refusal: the request is taken, and its task is scoped by category alone (with a note).
        log.warning("registry_silent_at_expansion", client_id=str(client_id), detail=exc.detail)
        return None


def create_request(session: Session, *, user: Principal, body: AnyBody, idempotency_key: str) -> idem.StoredResponse:
    """Create a request with its tasks, approvals and events in one transaction, or replay the key's first answer."""
    settings = get_settings()
    client_id = target_client(user, body)
    now = utcnow()
    # The digest covers the admin's `client_id`; the stored body leaves it out (the row has its own column).
    canonical = body.model_dump_json(exclude=None if getattr(body, "client_id", None) else {"client_id"})
    key = idem.KeyClaim.of(user, idempotency_key, canonical, now=now, ttl_s=settings.idempotency_ttl_s)
    vendor = None
    accounts: tuple[ClientAccount, ...] | None = ()
    if isinstance(body, VendorContactUpdateBody) or reads_registry(body):
        # A replay must not depend on the registry: look for the key before calling out.
        replayed = idem.replay(session, key=key)
        if replayed is not None:
            return replayed
        session.rollback()  # hold no connection (and no lock) while vendor_sync answers
        if isinstance(body, VendorContactUpdateBody):
            vendor = vendor_info(get_registry(), body, client_id)
        else:
            accounts = registry_accounts(get_registry(), client_id)

    # FOR SHARE: a concurrent PATCH of the client (status, threshold) waits for this transaction, or
    # this one sees its result; the threshold read here is the one the task's status is decided on.
    client = session.exec(
        select(Client.status, Client.purchase_approval_threshold_cents)
        .where(Client.id == client_id)
        .with_for_update(read=True)
    ).first()
    if client is None:
        raise NotFound("client not found", field="client_id")
    status, threshold = client
    if status != "active":
        raise Conflict("the client is not active", field="client_id")

    plan = expand(body, vendor=vendor, accounts=accounts)
    request_id = new_id()
    task_ids = [new_id() for _ in plan.tasks]
    # Every field is built here from typed values: nothing to validate, only to serialise.
    public = RequestPublic.model_construct(
        id=request_id, type=body.type, client_id=client_id, status="open", task_ids=task_ids, created_at=now
    )
    response = idem.StoredResponse(201, public.model_dump_json().encode())
    if not idem.claim(session, key=key, response=response, request_id=request_id, now=now):
        session.rollback()  # nothing was written; the key's holder has committed its answer
        replayed = idem.replay(session, key=key)
        if replayed is None:  # the holder vanished between the two statements: ask for a retry
            raise Conflict("Idempotency-Key is in use by a concurrent request", field="Idempotency-Key")
        return replayed
    _write_rows(
        session,
        user=user,
        body=body,
        plan=plan,
        threshold=threshold,
        client_id=client_id,
        request_id=request_id,
        task_ids=task_ids,
        now=now,
    )
    session.commit()
    return response


# Built once, bound per call: SQLAlchemy then reuses the compiled statement. Building
# `insert().values(...)` per call (coercing and cache-keying every value) cost about 40 % of the
# create's app CPU in a serial profile (docs/benchmarks.md).
_INSERT_REQUEST = insert(ServiceRequest.__table__)  # type: ignore[attr-defined]
_INSERT_TASKS = insert(Task.__table__)  # type: ignore[attr-defined]
_INSERT_APPROVALS = insert(Approval.__table__)  # type: ignore[attr-defined]
_INSERT_NOTES = insert(TaskNote.__table__)  # type: ignore[attr-defined]
EXPANSION_AUTHOR = "svc:intake"


def _write_rows(
    session: Session,
    *,
    user: Principal,
    body: AnyBody,
    plan: Plan,
    threshold: int,
    client_id: uuid.UUID,
    request_id: uuid.UUID,
    task_ids: list[uuid.UUID],
    now: datetime,
) -> None:
    """The request, its tasks, their approvals and `task.created` events: one INSERT per table."""
    expires_at = now + timedelta(seconds=get_settings().approval_ttl_s)
    common = {"client_id": client_id, "created_by": user.sub, "created_at": now, "updated_at": now}
    stored_body = body.model_dump(mode="json", exclude={"client_id"})
    session.execute(
        _INSERT_REQUEST,
        {
            "id": request_id,
            "type": body.type,
            "status": "open",
            "body": stored_body,
            "requester_email": verified_email(user),
            **common,
        },
    )
    tasks: list[dict[str, Any]] = []
    approvals: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for task_id, task in zip(task_ids, plan.tasks, strict=True):
        notes.extend(
            {"id": new_id(), "task_id": task_id, "kind": "scope", "author": EXPANSION_AUTHOR, "body": text}
            | {"created_at": now}
            for text in task.notes
        )
        status = task.initial_status(threshold)
        tasks.append(
            {
                "id": task_id,
                "request_id": request_id,
                "type": task.type,
                "title": task.title,
                "status": status,
                "credential_categories": list(task.credential_categories),
                "vendor_account_ids": list(task.vendor_account_ids),
                "credential_ids": list(task.credential_ids),
                **common,
            }
        )
        approvals.extend(
            {
                "id": new_id(),
                "task_id": task_id,
                "origin": "request",
                "status": "pending",
                "recipient_name": approval.recipient_name,
                "recipient_contact_email": approval.contact_email,
                "recipient_vendor_id": approval.vendor_id,
                "party_category": approval.party_category,
                "information_categories": list(approval.information_categories),
                "credential_ids": [],
                "expires_at": expires_at,
                **common,
            }
            for approval in task.needed_approvals(threshold)
        )
    session.execute(_INSERT_TASKS, tasks)
    if approvals:
        session.execute(_INSERT_APPROVALS, approvals)
    if notes:
        session.execute(_INSERT_NOTES, notes)
    for row in tasks:
        emit(
            session,
            "task.created",
            client_id=client_id,
            aggregate_id=row["id"],
            data={"task_id": str(row["id"]), "request_id": str(request_id), "status": row["status"]},
        )
    for approval_row in approvals:
        emit(
            session,
            "approval.created",
            client_id=client_id,
            aggregate_id=approval_row["id"],
            data=approval_created_data(approval_row["id"], task_id=approval_row["task_id"], origin="request"),
        )


def verified_email(user: Principal) -> str | None:
    """The caller's address when their token vouches for it (`email_verified: true`), else None."""
    if not user.is_client:
        return None  # status mail is for a client's own requesters
    email = user.claims.get("email")
    if user.claims.get("email_verified") is not True or not isinstance(email, str):
        return None
    email = email.strip()
    # A token's claim is not a validated body field: keep only a plausible single address.
    if not 3 <= len(email) <= 254 or "@" not in email or any(c.isspace() or c in ',;<>"\x00' for c in email):
        return None
    return email


def get_request(session: Session, *, user: Principal, request_id: uuid.UUID) -> ServiceRequest:
    """The request if the caller may see it, else 404."""
    return get_visible(session, ServiceRequest, request_id, user=user, what="request")


def _task_ids(session: Session, request_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    out: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    if request_ids:
        rows = session.exec(
            select(Task.request_id, Task.id)
            .where(col(Task.request_id).in_(request_ids))
            .order_by(col(Task.created_at), col(Task.id))
        ).all()
        for request_id, task_id in rows:
            if request_id is not None:
                out[request_id].append(task_id)
    return out


def request_views(session: Session, *, requests: Sequence[ServiceRequest]) -> list[RequestPublic]:
    """Views of these requests with their task ids."""
    task_ids = _task_ids(session, [r.id for r in requests])
    return [
        RequestPublic(
            id=r.id,
            type=r.type,  # type: ignore[arg-type]
            client_id=r.client_id,
            status=r.status,  # type: ignore[arg-type]
            task_ids=task_ids.get(r.id, []),
            created_at=r.created_at,
        )
        for r in requests
    ]


def request_detail(session: Session, *, request: ServiceRequest) -> RequestDetail:
    """A request with its typed body, for workers."""
    public = request_views(session, requests=[request])[0]
    body = BODY_TYPES[request.type].model_validate(request.body)
    return RequestDetail(**public.model_dump(), created_by=request.created_by, body=body)


def list_requests(
    session: Session,
    *,
    user: Principal,
    client_id: uuid.UUID | None,
    status: str | None,
    type: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[RequestPublic], str | None]:
    """A page of the requests the caller may see, filtered."""
    items, next_cursor = tenant_page(
        session, ServiceRequest, user=user, client_id=client_id, limit=limit, cursor=cursor, status=status, type=type
    )
    return request_views(session, requests=items), next_cursor
