"""Idempotency keys: scope, body digest and the stored response.

The key is claimed inside the statement that creates the request (see `intake.requests.create`):
the first response to (scope, key) is replayed for 24 h, another body under the same key is a 409,
and two concurrent calls with one key cannot both create a request.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from mspkit.auth import Principal


@dataclass(frozen=True)
class StoredResponse:
    """A response to send (again): its status and exact bytes."""

    status_code: int
    body: bytes


def scope_for(user: Principal) -> str:
    """Keys are scoped to the caller's client for client roles, else to the caller's `sub`."""
    return f"client:{user.client_id}" if user.is_client else f"sub:{user.sub}"


def body_hash(canonical_json: str) -> str:
    """SHA-256 of the validated body's JSON (in model order, so input key order and spacing drop out)."""
    return hashlib.sha256(canonical_json.encode()).hexdigest()
