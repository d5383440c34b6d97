"""intake as vendor_sync reads it (whether a client exists, technicians' staff views) and writes to it (system tasks).

A client that intake does not know is 404, as any unknown object in a path; when intake does not
answer (unreachable, slow, refused token, garbled answer) the answer is 503, never a guess. Found
clients are cached for a few seconds (clients are never deleted, so a found one stays found);
unknown ones are not cached, so a client created a moment ago is seen at once. Staff views
(`GET /internal/staff/{sub}`) come through the kit's `StaffDirectory`, cached in Redis at most 30 s
and dropped by the worker on `staff.changed`. System tasks (`POST /internal/tasks`) are created by the
worker from drift events; their callers tell "try again later" from "intake refused it".
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

import httpx
from cachetools import TTLCache

from mspkit.auth import Principal
from mspkit.errors import AppError, NotFound, Unavailable
from mspkit.service_tokens import MAX_PEER_BODY_BYTES, ServiceClient, ServiceTokenSource, token_source
from mspkit.staff_directory import StaffDirectory
from mspkit.tenancy import ensure_sees_client
from vendor_sync.settings import get_settings

TIMEOUT_S: Final = 2.0
FOUND_TTL_S: Final = 5.0
CACHE_SIZE: Final = 10_000
# Creating a task writes at intake (and emits its event there): a little more time than a read.
WRITE_TIMEOUT_S: Final = 5.0
_ERROR_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


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


class IntakeUnavailable(Exception):
    """intake did not take the call (unreachable, slow, 5xx, 429, our token refused): try again later."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IntakeRefused(Exception):
    """intake answered a 4xx about this very call (e.g. 409 inactive client, 422): retrying it will not help."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(f"intake refused the task: {status} {code}")
        self.status = status
        self.code = code


@dataclass(frozen=True)
class SystemTask:
    """A system task as `POST /internal/tasks` takes it (it starts in `new`; no credential ids, ever)."""

    client_id: uuid.UUID
    type: str
    title: str
    dedupe_key: str
    vendor_account_ids: tuple[uuid.UUID, ...] = field(default=())

    def body(self) -> dict[str, object]:
        """The JSON body of the call."""
        return {
            "client_id": str(self.client_id),
            "type": self.type,
            "title": self.title,
            "vendor_account_ids": [str(v) for v in self.vendor_account_ids],
            "dedupe_key": self.dedupe_key,
        }


@dataclass(frozen=True)
class CreatedTask:
    """intake's answer: the task's id, and whether this call created it (201) or found it by dedupe_key (200)."""

    id: uuid.UUID
    created: bool


class IntakeTasks:
    """Creates system tasks at intake (`POST /internal/tasks`) as `svc:vendor_sync`."""

    def __init__(self, *, base_url: str, tokens: ServiceTokenSource, timeout_s: float = WRITE_TIMEOUT_S) -> None:
        self._http = ServiceClient(base_url=base_url.rstrip("/"), audience="intake", tokens=tokens, timeout_s=timeout_s)

    def create_system_task(self, task: SystemTask) -> CreatedTask:
        """Create the task (or get the one its dedupe_key already made); raise IntakeUnavailable or IntakeRefused."""
        try:
            response = self._http.post("/internal/tasks", json=task.body())
        except httpx.HTTPError as exc:
            raise IntakeUnavailable("timeout" if isinstance(exc, httpx.TimeoutException) else "unreachable") from None
        except AppError as exc:
            # The token endpoint refused or failed: our outage, not a verdict on this task.
            raise IntakeUnavailable(f"token_{exc.code}") from None
        except (KeyError, ValueError):
            # A garbled answer from the token endpoint.
            raise IntakeUnavailable("token_malformed") from None
        status = response.status_code
        if status in (401, 403):
            # Our identity is refused (even after a fresh token): a deployment problem, not this task's.
            raise IntakeUnavailable(f"http_{status}")
        if status == 429 or status >= 500:
            raise IntakeUnavailable(f"http_{status}")
        if 400 <= status < 500:
            raise IntakeRefused(status, _error_code(response))
        if status not in (200, 201) or len(response.content) > MAX_PEER_BODY_BYTES:
            raise IntakeUnavailable(f"http_{status}")
        try:
            body = response.json()
            task_id = uuid.UUID(str(body["id"]))
            client_id = uuid.UUID(str(body["client_id"]))
        except (ValueError, KeyError, TypeError):
            raise IntakeUnavailable("malformed_answer") from None
        if client_id != task.client_id:
            # The dedupe_key named another client's task: never attach it to this client's event.
            raise IntakeRefused(status, "dedupe_key_of_another_client")
        return CreatedTask(id=task_id, created=status == 201)


def _error_code(response: httpx.Response) -> str:
    # Only the envelope's snake_case code: its detail may echo what we sent.
    try:
        code = response.json().get("error")
    except (ValueError, AttributeError):
        code = None
    return code if isinstance(code, str) and _ERROR_CODE.match(code) else f"http_{response.status_code}"


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


@lru_cache
def get_intake_tasks() -> IntakeTasks:
    """The process's writer of system tasks at intake, authenticated as `svc:vendor_sync`."""
    return IntakeTasks(base_url=get_settings().intake_url, tokens=get_intake_tokens())


def reset_intake_readers() -> None:
    """Forget the process's intake readers and writer (after a fork, or when a test moves intake)."""
    for factory in (get_intake_clients, get_staff_directory, get_intake_tasks, get_intake_tokens):
        factory.cache_clear()


# ---- provisioning: request details, claim, steps and scope (`svc:vendor_sync`) ----------------------


@dataclass(frozen=True)
class StepReport:
    """A step as `POST /internal/tasks/{id}/steps` takes it; the key makes a repeated report a no-op."""

    name: str
    status: str  # pending (human steps only) | succeeded | failed
    human: bool
    idempotency_key: str
    detail: str | None = None

    def body(self) -> dict[str, object]:
        """The JSON body of the call."""
        body: dict[str, object] = {
            "name": self.name,
            "status": self.status,
            "human": self.human,
            "idempotency_key": self.idempotency_key,
        }
        if self.detail:
            body["detail"] = self.detail
        return body


class IntakeProvisioning:
    """What a provisioning job reads from and reports to intake, as `svc:vendor_sync`.

    Every call raises IntakeUnavailable (try later: unreachable, slow, 5xx, 429, our token refused) or
    IntakeRefused (a 4xx about this call: unknown task, a task that cannot be claimed, a bad body).
    """

    def __init__(self, *, base_url: str, tokens: ServiceTokenSource, timeout_s: float = WRITE_TIMEOUT_S) -> None:
        self._http = ServiceClient(base_url=base_url.rstrip("/"), audience="intake", tokens=tokens, timeout_s=timeout_s)

    def request_detail(self, request_id: uuid.UUID) -> dict[str, Any]:
        """`GET /internal/requests/{id}`: the request with its typed body."""
        return self._call("GET", f"/internal/requests/{request_id}", None, ok=(200,))

    def claim(self, task_id: uuid.UUID) -> dict[str, Any]:
        """`POST /internal/tasks/{id}/claim`: the task, now in progress for `svc:vendor_sync`."""
        return self._call("POST", f"/internal/tasks/{task_id}/claim", None, ok=(200, 201))

    def report_step(self, task_id: uuid.UUID, step: StepReport) -> dict[str, Any]:
        """`POST /internal/tasks/{id}/steps`: the step recorded (201), or the one its key recorded first (200)."""
        return self._call("POST", f"/internal/tasks/{task_id}/steps", step.body(), ok=(200, 201))

    def add_scope(self, task_id: uuid.UUID, credential_ids: list[uuid.UUID]) -> dict[str, Any]:
        """`POST /internal/tasks/{id}/scope`: add credentials vendor_sync created for this task."""
        body = {"add": {"credential_ids": [str(c) for c in credential_ids]}}
        return self._call("POST", f"/internal/tasks/{task_id}/scope", body, ok=(200, 201))

    def _call(self, method: str, path: str, body: object, *, ok: tuple[int, ...]) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **({} if body is None else {"json": body}))
        except httpx.HTTPError as exc:
            raise IntakeUnavailable("timeout" if isinstance(exc, httpx.TimeoutException) else "unreachable") from None
        except AppError as exc:
            raise IntakeUnavailable(f"token_{exc.code}") from None
        except (KeyError, ValueError):
            raise IntakeUnavailable("token_malformed") from None
        status = response.status_code
        if status in (401, 403) or status == 429 or status >= 500:
            raise IntakeUnavailable(f"http_{status}")
        if 400 <= status < 500:
            raise IntakeRefused(status, _error_code(response))
        if status not in ok or len(response.content) > MAX_PEER_BODY_BYTES:
            raise IntakeUnavailable(f"http_{status}")
        try:
            answer = response.json()
        except ValueError:
            raise IntakeUnavailable("malformed_answer") from None
        if not isinstance(answer, dict):
            raise IntakeUnavailable("malformed_answer")
        return answer


@lru_cache
def get_intake_provisioning() -> IntakeProvisioning:
    """The process's provisioning client for intake, authenticated as `svc:vendor_sync`."""
    return IntakeProvisioning(base_url=get_settings().intake_url, tokens=get_intake_tokens())
