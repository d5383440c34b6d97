"""Live reads of intake's authorization view (never cached): any doubt becomes 503, never an allow."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any
from uuid import UUID

import httpx

from mspkit.errors import AppError, NotFound
from mspkit.logging import get_logger
from mspkit.service_tokens import ServiceClient, ServiceTokenSource, token_source
from secrets_broker.errors import IntakeUnavailable
from secrets_broker.settings import get_settings
from secrets_broker.task_auth import MalformedAuthorization, TaskAuth, parse_task_auth

log = get_logger("secrets_broker.intake")
MAX_BODY_BYTES = 1024 * 1024
MAX_PAGES = 50


class IntakeClient:
    """Calls intake's `/internal` routes with the broker's service token, within a hard deadline."""

    def __init__(self, *, base_url: str, tokens: ServiceTokenSource, timeout_s: float = 2.0) -> None:
        self.timeout_s = timeout_s
        self._http = ServiceClient(base_url=base_url.rstrip("/"), audience="intake", tokens=tokens, timeout_s=timeout_s)

    def _get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        started = time.monotonic()
        try:
            response = self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise IntakeUnavailable(f"intake unreachable ({type(exc).__name__})") from None
        except AppError as exc:
            # The token endpoint refused or failed: that is our outage, not the caller's 401.
            raise IntakeUnavailable(f"service token unavailable ({exc.code})") from None
        # httpx's timeout is per phase; a slow trickle can exceed it in total, which is still "slow".
        if time.monotonic() - started > self.timeout_s:
            raise IntakeUnavailable("intake answered too slowly")
        if len(response.content) > MAX_BODY_BYTES:
            raise IntakeUnavailable("intake answer too large")
        return response

    def authorization(self, task_id: UUID) -> TaskAuth:
        """The task's live authorization view; 404 when intake does not know the task."""
        response = self._get(f"/internal/tasks/{UUID(str(task_id))}/authorization")
        if response.status_code == 404:
            raise NotFound("task not found")
        if response.status_code != 200:
            log.warning("intake_authorization_failed", status=response.status_code)
            raise IntakeUnavailable(f"intake answered {response.status_code}")
        try:
            view = parse_task_auth(response.content)
        except MalformedAuthorization as exc:
            log.warning("intake_authorization_malformed", detail=str(exc))
            raise IntakeUnavailable("intake's authorization view is malformed") from None
        if view.task_id != task_id:
            raise IntakeUnavailable("intake answered for another task")
        return view

    def tasks_in_progress(self, assignee: str) -> list[TaskAuth]:
        """The authorization views of every in-progress task assigned to `assignee`."""
        out: list[TaskAuth] = []
        params = {"assignee": assignee, "status": "in_progress"}
        for _ in range(MAX_PAGES):
            response = self._get("/internal/tasks", params=params)
            if response.status_code != 200:
                log.warning("intake_task_list_failed", status=response.status_code)
                raise IntakeUnavailable(f"intake answered {response.status_code}")
            try:
                body: Any = response.json()
            except ValueError:
                raise IntakeUnavailable("intake's task list is not JSON") from None
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
