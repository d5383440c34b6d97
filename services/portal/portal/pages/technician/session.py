"""The signed-in session's id hash, which binds reveal nonces to the session (or pod session) they were issued to."""

from __future__ import annotations

import uuid

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from portal import reveal_nonces
from portal.deps import current_session
from portal.errors import NotSignedIn
from portal.runtime import runtime


async def session_hash(request: Request) -> str:
    """The session's id hash (a SHA-256 of the cookie; the cookie value itself is never stored).

    Through the ticket pod it is the pod session's: a nonce issued in the pod works in that pod only.
    """
    record = await current_session(request)
    if record is None:  # the viewer dependency has already refused this request
        raise NotSignedIn()
    return record.pod_hash or record.id_hash


async def issue_nonces(request: Request, task_id: uuid.UUID, credential_ids: list[uuid.UUID]) -> dict[str, str]:
    """Fresh reveal nonces for these credentials of the task (by credential id), bound to this session."""
    return await run_in_threadpool(
        reveal_nonces.issue,
        runtime(request).engine,
        session_hash=await session_hash(request),
        task_id=task_id,
        credential_ids=credential_ids,
    )
