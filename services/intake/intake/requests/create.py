"""Creating a request: idempotent, expanded into tasks and approvals, written in one statement.

The statement, in order of its data flow:

1. `client`: the client row, locked FOR SHARE (a concurrent PATCH that deactivates the client waits
   for this statement, or this statement sees the new status);
2. `claim`: the Idempotency-Key row with the response already in it, inserted only for an active
   client; a live row with the same (scope, key) makes it insert nothing (a row past its TTL is taken
   over in place). A concurrent duplicate waits on the unique index until the first one commits;
3. `req`, `t<i>`, `a<i>`, `o<i>`: the request, each task (`awaiting_approval` when its approval
   applies, else `ready`), its approval and its `task.created` outbox row — each only if the step
   before it wrote something.

Everything commits together or not at all, in one round trip. The first answer (status and exact
bytes) is computed before the statement, since every id and time in it is chosen here.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import timedelta
from functools import lru_cache
from typing import Any

from fastapi.concurrency import run_in_threadpool
from pydantic_core import to_json

from intake.common.types import new_id, utcnow
from intake.idempotency import service as idem
from intake.requests.expansion import AnyBody, Plan, expand
from intake.requests.schemas import RequestPublic, VendorContactUpdateBody
from intake.settings import Settings
from intake.store import Store
from intake.vendors import VendorAccountInfo, VendorRegistry
from mspkit.auth import Principal
from mspkit.errors import Conflict, NotFound, ValidationFailed
from mspkit.outbox import make_envelope


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


_CLAIM = """
WITH client AS (
    SELECT status, purchase_approval_threshold_cents AS threshold
    FROM intake.clients WHERE id = :client_id FOR SHARE
), claim AS (
    INSERT INTO intake.idempotency_keys AS k
        (scope, key, body_hash, status_code, response_body, request_id, created_at)
    SELECT :scope, :key, :body_hash, :status_code, :response, :request_id, :now
    FROM client WHERE client.status = 'active'
    ON CONFLICT (scope, key) DO UPDATE SET
        body_hash = EXCLUDED.body_hash, status_code = EXCLUDED.status_code,
        response_body = EXCLUDED.response_body, request_id = EXCLUDED.request_id, created_at = EXCLUDED.created_at
    WHERE k.created_at <= :cutoff
    RETURNING k.request_id
), req AS (
    INSERT INTO intake.requests (id, client_id, type, status, body, created_by, created_at, updated_at)
    SELECT request_id, :client_id, :type, 'open', CAST(:body AS jsonb), :sub, :now, :now FROM claim
    RETURNING id
)"""

_TASK = """, t{i} AS (
    INSERT INTO intake.tasks (id, request_id, client_id, type, title, status, credential_categories,
                              vendor_account_ids, credential_ids, created_by, created_at, updated_at)
    SELECT :t{i}_id, req.id, :client_id, :t{i}_type, :t{i}_title,
           CASE WHEN {needed} THEN 'awaiting_approval' ELSE 'ready' END,
           CAST(:t{i}_categories AS jsonb), CAST(:t{i}_vendor_accounts AS jsonb), CAST(:t{i}_credentials AS jsonb),
           :sub, :now, :now
    FROM req, client
    RETURNING id, status
)"""

_APPROVAL = """, a{i} AS (
    INSERT INTO intake.approvals (id, task_id, client_id, status, recipient_name, recipient_contact_email,
                                  party_category, information_categories, credential_ids, expires_at,
                                  created_by, created_at, updated_at)
    SELECT :a{i}_id, t{i}.id, :client_id, 'pending', :a{i}_name, :a{i}_email, :a{i}_party,
           CAST(:a{i}_categories AS jsonb), CAST('[]' AS jsonb), :a{i}_expires_at, :sub, :now, :now
    FROM t{i} WHERE t{i}.status = 'awaiting_approval'
)"""

_OUTBOX = """, o{i} AS (
    INSERT INTO intake.outbox (event_id, type, envelope)
    SELECT :o{i}_event_id, 'task.created',
           jsonb_set(CAST(:o{i}_envelope AS jsonb), '{{data,status}}', to_jsonb(t{i}.status))
    FROM t{i}
)"""

_RESULT = """
SELECT (SELECT status FROM client) AS client_status, (SELECT count(*) FROM claim) AS claimed"""

LOOKUP_SQL = """
SELECT body_hash, status_code, response_body FROM intake.idempotency_keys
WHERE scope = :scope AND key = :key AND created_at > :cutoff"""

PURGE_SQL = """
WITH gone AS (
    DELETE FROM intake.idempotency_keys WHERE ctid IN (
        SELECT ctid FROM intake.idempotency_keys WHERE created_at <= :cutoff LIMIT 500)
    RETURNING 1
)
SELECT count(*) AS purged FROM gone"""
PURGE_PROBABILITY = 0.01


@lru_cache(maxsize=64)
def create_sql(shape: tuple[str, ...]) -> str:
    """The statement for a plan shape: one entry per task, `none`, `always` or `over_threshold`."""
    parts = [_CLAIM]
    for i, kind in enumerate(shape):
        needed = {
            "none": "false",
            "always": "true",
            "over_threshold": f"CAST(:t{i}_total AS bigint) > client.threshold",
        }[kind]
        parts.append(_TASK.format(i=i, needed=needed))
        if kind != "none":
            parts.append(_APPROVAL.format(i=i))
        parts.append(_OUTBOX.format(i=i))
    parts.append(_RESULT)
    return "".join(parts)


def _json_list(values: tuple[str, ...]) -> str:
    """A JSON array of strings (most scopes are empty: skip the encoder for them)."""
    return json.dumps(values) if values else "[]"


def _shape_and_params(
    plan: Plan, task_ids: list[uuid.UUID], *, client_id: uuid.UUID, request_id: uuid.UUID, approval_expires_at: Any
) -> tuple[tuple[str, ...], dict[str, Any]]:
    shape: list[str] = []
    params: dict[str, Any] = {}
    request = str(request_id)
    for i, (task_id, task) in enumerate(zip(task_ids, plan.tasks, strict=True)):
        approval = task.approval
        if approval is None:
            shape.append("none")
        elif approval.over_threshold_cents is None:
            shape.append("always")
        else:
            shape.append("over_threshold")
            params[f"t{i}_total"] = approval.over_threshold_cents
        params[f"t{i}_id"] = task_id
        params[f"t{i}_type"] = task.type
        params[f"t{i}_title"] = task.title
        params[f"t{i}_categories"] = _json_list(task.credential_categories)
        params[f"t{i}_vendor_accounts"] = _json_list(task.vendor_account_ids)
        params[f"t{i}_credentials"] = _json_list(task.credential_ids)
        if approval is not None:
            params[f"a{i}_id"] = new_id()
            params[f"a{i}_name"] = approval.recipient_name
            params[f"a{i}_email"] = approval.contact_email
            params[f"a{i}_party"] = approval.party_category
            params[f"a{i}_categories"] = _json_list(approval.information_categories)
            params[f"a{i}_expires_at"] = approval_expires_at
        # The status is filled in by the statement: it depends on the client's threshold.
        envelope = make_envelope(
            type="task.created",
            client_id=client_id,
            aggregate_id=task_id,
            data={"task_id": str(task_id), "request_id": request, "status": None},
        )
        params[f"o{i}_event_id"] = envelope["event_id"]  # the uuid column takes its text form
        params[f"o{i}_envelope"] = to_json(envelope).decode()
    return tuple(shape), params


async def _replay(store: Store, *, scope: str, key: str, digest: str, cutoff: Any) -> idem.StoredResponse | None:
    row = await store.fetch(LOOKUP_SQL, {"scope": scope, "key": key, "cutoff": cutoff})
    if row is None:
        return None
    if row["body_hash"] != digest:
        raise Conflict("Idempotency-Key was already used with another body", field="Idempotency-Key")
    return idem.StoredResponse(int(row["status_code"]), str(row["response_body"]).encode())


async def create_request(
    store: Store, *, user: Principal, body: AnyBody, key: str, registry: VendorRegistry, settings: Settings
) -> idem.StoredResponse:
    """Create a request and expand it, or replay the first response to the same Idempotency-Key."""
    client_id = target_client(user, body)
    scope = idem.scope_for(user)
    # One serialisation of the validated body serves both the digest and the stored copy (which
    # leaves out the admin's `client_id`: the request row has its own column).
    stored_body = body.model_dump_json(exclude={"client_id"})
    digest = idem.body_hash(stored_body if getattr(body, "client_id", None) is None else body.model_dump_json())
    now = utcnow()
    cutoff = now - timedelta(seconds=settings.idempotency_ttl_s)
    vendor = None
    if isinstance(body, VendorContactUpdateBody):
        # A replay must not depend on the registry: look for the key before calling out.
        replayed = await _replay(store, scope=scope, key=key, digest=digest, cutoff=cutoff)
        if replayed is not None:
            return replayed
        vendor = await run_in_threadpool(vendor_info, registry, body, client_id)

    plan = expand(body, vendor=vendor)
    request_id = new_id()
    task_ids = [new_id() for _ in plan.tasks]
    # Every field is built here from typed values: nothing to validate, only to serialise.
    public = RequestPublic.model_construct(
        id=request_id, type=body.type, client_id=client_id, status="open", task_ids=task_ids, created_at=now
    )
    response = idem.StoredResponse(201, public.model_dump_json().encode())
    shape, task_params = _shape_and_params(
        plan,
        task_ids,
        client_id=client_id,
        request_id=request_id,
        approval_expires_at=now + timedelta(seconds=settings.approval_ttl_s),
    )
    row = await store.fetch(
        create_sql(shape),
        {
            "client_id": client_id,
            "scope": scope,
            "key": key,
            "body_hash": digest,
            "status_code": response.status_code,
            "response": response.body.decode(),
            "request_id": request_id,
            "now": now,
            "cutoff": cutoff,
            "type": body.type,
            "body": stored_body,
            "sub": user.sub,
            **task_params,
        },
    )
    assert row is not None
    if row["client_status"] is None:
        raise NotFound("client not found", field="client_id")
    if row["client_status"] != "active":
        raise Conflict("the client is not active", field="client_id")
    if not row["claimed"]:
        replayed = await _replay(store, scope=scope, key=key, digest=digest, cutoff=cutoff)
        if replayed is None:  # the holder of the key vanished between the two statements: ask for a retry
            raise Conflict("Idempotency-Key is in use by a concurrent request", field="Idempotency-Key")
        return replayed
    if random.random() < PURGE_PROBABILITY:
        await store.fetch(PURGE_SQL, {"cutoff": cutoff})
    return response
