"""The signed-in session's id hash, which binds reveal nonces to the session (or pod session) they were issued to."""

from __future__ import annotations

from fastapi import Request

from portal.deps import current_session
from portal.errors import NotSignedIn


async def session_hash(request: Request) -> str:
    """The session's id hash (a SHA-256 of the cookie; the cookie value itself is never stored).

    Through the ticket pod it is the pod session's: a nonce issued in the pod works in that pod only.
    """
    record = await current_session(request)
    if record is None:  # the viewer dependency has already refused this request
        raise NotSignedIn()
    return record.pod_hash or record.id_hash
