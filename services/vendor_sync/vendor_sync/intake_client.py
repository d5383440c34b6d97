"""intake as vendor_sync reads it: whether a client exists, and technicians' staff views.

A client that intake does not know is 404, as any unknown object in a path; when intake does not
answer (unreachable, slow, refused token, garbled answer) the answer is 503, never a guess. Found
clients are cached for a few seconds (clients are never deleted, so a found one stays found);
unknown ones are not cached, so a client created a moment ago is seen at once. Staff views
(`GET /internal/staff/{sub}`) come through the kit's `StaffDirectory`, cached in Redis at most 30 s
and dropped by the worker on `staff.changed`.
"""

from __future__ import annotations

import threading
import uuid
from functools import lru_cache
from typing import Final

from cachetools import TTLCache

from mspkit.auth import Principal
from mspkit.errors import NotFound, Unavailable
from mspkit.service_tokens import ServiceClient, ServiceTokenSource, token_source
from mspkit.staff_directory import StaffDirectory
from mspkit.tenancy import ensure_sees_client
from vendor_sync.settings import get_settings

TIMEOUT_S: Final = 2.0
FOUND_TTL_S: Final = 5.0
CACHE_SIZE: Final = 10_000


def _not_found() -> NotFound:
    # The same answer as the tenancy check's: another tenant's client and an unknown one look alike.
    return NotFound("client not found")


class IntakeClients:
    """Reads client existence from intake with vendor_sync's token for intake alone."""

    def __init__(
        self, *, base_url: str, tokens: ServiceTokenSource, timeout_s: float = TIMEOUT_S, ttl_s: float = FOUND_TTL_S
    ) -> None:
        self._http = ServiceClient(base_url=base_url.rstrip("/"), audience="intake", tokens=tokens, timeout_s=timeout_s)
        self._found: TTLCache[uuid.UUID, bool] = TTLCache(maxsize=CACHE_SIZE, ttl=ttl_s)
        self._lock = threading.Lock()

    def _exists(self, client_id: uuid.UUID) -> bool:
        body = self._http.read_json(f"/internal/clients/{client_id}")
        if body is None:
            return False
        try:
            answered_for = uuid.UUID(str(body["id"]))
        except (ValueError, KeyError, TypeError):
            raise Unavailable("intake's client view is malformed") from None
        if answered_for != client_id:
            raise Unavailable("intake answered for another client")
        return True

    def ensure_exists(self, client_id: uuid.UUID, *, viewer: Principal) -> None:
        """Return if `viewer` may see `client_id` and intake knows it; else 404 (503 if intake does not answer)."""
        ensure_sees_client(viewer, client_id, "client")
        with self._lock:
            if self._found.get(client_id):
                return
        if not self._exists(client_id):
            raise _not_found()
        with self._lock:
            self._found[client_id] = True


@lru_cache
def get_intake_tokens() -> ServiceTokenSource:
    """The process's `svc:vendor_sync` tokens (one per target, so both readers share intake's)."""
    return token_source(get_settings(), timeout_s=TIMEOUT_S)


@lru_cache
def get_intake_clients() -> IntakeClients:
    """The process's reader of intake's clients, authenticated as `svc:vendor_sync`."""
    return IntakeClients(base_url=get_settings().intake_url, tokens=get_intake_tokens())


@lru_cache
def get_staff_directory() -> StaffDirectory:
    """The process's reader of intake's staff views (API: need-to-know; worker: `staff.changed`)."""
    settings = get_settings()
    intake = ServiceClient(
        base_url=settings.intake_url.rstrip("/"), audience="intake", tokens=get_intake_tokens(), timeout_s=TIMEOUT_S
    )
    return StaffDirectory(intake=intake, redis_url=settings.redis_url, service="vendor_sync")


def reset_intake_readers() -> None:
    """Forget the process's intake readers (after a fork, or when a test moves intake)."""
    for factory in (get_intake_clients, get_staff_directory, get_intake_tokens):
        factory.cache_clear()
