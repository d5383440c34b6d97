"""What every client page shares: who may see it, the 404 page, and reading API answers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import Depends, Request

from portal.answers import ApiRefused, found, json_body, not_found, parse_id
from portal.api import Api, ApiClient
from portal.deps import ApiDep, Viewer, require_roles
from portal.pages.client.words import words_for

CLIENT_ROLES = ("client_user", "client_admin")

# Each page names the roles that see it; anyone else gets the core's 404 page, as the APIs would answer.
ClientViewer = Annotated[Viewer, Depends(require_roles(*CLIENT_ROLES))]
ClientAdmin = Annotated[Viewer, Depends(require_roles("client_admin"))]
__all__ = ["ApiDep", "ApiRefused", "ClientAdmin", "ClientViewer", "found", "json_body", "not_found", "parse_id"]

# Flash messages survive the 303 after a POST as a fixed key in the address (the core keeps no
# flash in the session); only these words can ever be shown, so the address cannot inject text.
FLASHES = {
    "received": "Request received",
    "approved": "You approved this disclosure.",
    "rejected": "You rejected this disclosure.",
}


def with_flash(path: str, key: str) -> str:
    """`path` carrying the flash `key` to show once the browser gets there."""
    return f"{path}?flash={key}"


def flashes(request: Request) -> list[str]:
    """The flash named in this request's address, if it is one of ours."""
    message = FLASHES.get(request.query_params.get("flash", ""))
    return [message] if message else []


async def fetch_many(client: ApiClient, target: Api, paths: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """GET several objects at once; each path maps to its object, or None when it could not be read."""
    unique = list(dict.fromkeys(paths))
    if not unique:
        return {}
    # The first call alone: it renews the person's token for this API if needed, so the calls that
    # follow at once reuse it instead of racing to renew (a rotated refresh token is single use).
    answers = [await client.get(target, unique[0])]
    answers += await asyncio.gather(*(client.get(target, path) for path in unique[1:]))
    out: dict[str, dict[str, Any] | None] = {}
    for path, response in zip(unique, answers, strict=True):
        body = json_body(response) if response.status_code == 200 else None
        out[path] = body if isinstance(body, dict) else None
    return out


async def tasks_of(client: ApiClient, requests: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """Every task of the given requests, by task id (None for a task that could not be read)."""
    ids = [str(task_id) for request in requests for task_id in request.get("task_ids") or []]
    fetched = await fetch_many(client, "intake", (f"/v1/tasks/{task_id}" for task_id in ids))
    return {task_id: fetched[f"/v1/tasks/{task_id}"] for task_id in ids}


def page_context(request: Request, viewer: Viewer, **context: Any) -> dict[str, Any]:
    """The context every client template gets: word helpers, flash, whether the viewer decides approvals."""
    is_client_admin = viewer.role == "client_admin"
    return {"w": words_for(viewer.role), "flash": flashes(request), "is_client_admin": is_client_admin, **context}
