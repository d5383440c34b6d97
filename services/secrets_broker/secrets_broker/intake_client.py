"""Live reads of intake's authorization view and client status (never cached): any doubt becomes 503, never an allow."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, cast
from uuid import UUID

from mspkit.errors import NotFound
from mspkit.logging import get_logger
from mspkit.service_tokens import ServiceClient, ServiceTokenSource, token_source
from mspkit.vocabulary import CLIENT_STATUSES, ClientStatus
from secrets_broker.errors import IntakeUnavailable
from secrets_broker.settings import get_settings
from secrets_broker.task_auth import MalformedAuthorization, TaskAuth, parse_task_auth

log = get_logger("secrets_broker.intake")
MAX_PAGES = 50


class IntakeClient:
    """Calls intake's `/internal` routes with the broker's service token, within a hard deadline."""

    def __init__(self, *, base_url: str, tokens: ServiceTokenSource, timeout_s: float = 2.0) -> None:
        self.timeout_s = timeout_s
        self._http = ServiceClient(base_url=base_url.rstrip("/"), audience="intake", tokens=tokens, timeout_s=timeout_s)

    def _read(self, path: str, params: dict[str, str] | None = None) -> Any | None:
        return self._http.read_json(path, params=params, unavailable=IntakeUnavailable)

    def authorization(self, task_id: UUID) -> TaskAuth:
        """The task's live authorization view; 404 when intake does not know the task."""
        body = self._read(f"/internal/tasks/{UUID(str(task_id))}/authorization")
        if body is None:
            raise NotFound("task not found")
        try:
            view = parse_task_auth(body)
        except MalformedAuthorization as exc:
            log.warning("intake_authorization_malformed", detail=str(exc))
            raise IntakeUnavailable("intake's authorization view is malformed") from None
        if view.task_id != task_id:
            raise IntakeUnavailable("intake answered for another task")
        return view

    def client_status(self, client_id: UUID) -> ClientStatus | None:
        """The client's live status (`active`, `inactive`, `closed`); None when intake does not know it."""
        body = self._read(f"/internal/clients/{UUID(str(client_id))}")
        if body is None:
            return None
        try:
            answered_for, status = UUID(str(body["id"])), body["status"]
        except (ValueError, KeyError, TypeError):
            raise IntakeUnavailable("intake's client view is malformed") from None
        if answered_for != client_id:
            raise IntakeUnavailable("intake answered for another client")
        if status not in CLIENT_STATUSES:
            raise IntakeUnavailable("intake's client status is unknown")
        return cast(ClientStatus, status)

    def tasks_in_progress(self, assignee: str) -> list[TaskAuth]:
        """The authorization views of every in-progress task assigned to `assignee`."""
        out: list[TaskAuth] = []
        params = {"assignee": assignee, "status": "in_progress"}
        for _ in range(MAX_PAGES):
            body = self._read("/internal/tasks", params=params)
            # The contract says "the same shape, as a list": accept a bare list or a page.
            items = body if isinstance(body, list) else body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise IntakeUnavailable("intake's task list is malformed")
            try:
                views = [parse_task_auth(item) for item in items]
            except MalformedAuthorization:
                raise IntakeUnavailable("intake's task list is malformed") from None
            # Defence in depth: keep only what we asked for, whatever intake returned.
            out.extend(v for v in views if v.assignee == assignee and v.status == "in_progress")
            cursor = body.get("next_cursor") if isinstance(body, dict) else None
            if not cursor:
                return out
            params = {**params, "cursor": str(cursor)}
        raise IntakeUnavailable("intake's task list has too many pages")


@lru_cache
def get_intake() -> IntakeClient:
    """The process's intake client, authenticated as `svc:secrets_broker`."""
    settings = get_settings()
    timeout_s = settings.intake_timeout_s
    return IntakeClient(base_url=settings.intake_url, tokens=token_source(settings), timeout_s=timeout_s)
