"""What every client page shares: who may see it, the 404 page, and reading API answers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request

from portal.api import Api, ApiClient
from portal.deps import ApiDep, Viewer, require_roles
from portal.errors import PageNotFound
from portal.pages.client.words import WORDS

CLIENT_ROLES = ("client_user", "client_admin")

# Each page names the roles that see it; anyone else gets the core's 404 page, as the APIs would answer.
ClientViewer = Annotated[Viewer, Depends(require_roles(*CLIENT_ROLES))]
ClientAdmin = Annotated[Viewer, Depends(require_roles("client_admin"))]
__all__ = ["ApiDep", "ClientAdmin", "ClientViewer"]

# Flash messages survive the 303 after a POST as a fixed key in the address (the core keeps no
# flash in the session); only these words can ever be shown, so the address cannot inject text.
FLASHES = {
    "received": "Request received",
    "approved": "You approved this disclosure.",
    "rejected": "You rejected this disclosure.",
}


def not_found() -> Exception:
    """The core's 404 page, as an exception to raise."""
    return PageNotFound()


def with_flash(path: str, key: str) -> str:
    """`path` carrying the flash `key` to show once the browser gets there."""
    return f"{path}?flash={key}"


def flashes(request: Request) -> list[str]:
    """The flash named in this request's address, if it is one of ours."""
    message = FLASHES.get(request.query_params.get("flash", ""))
    return [message] if message else []


def parse_id(value: str) -> str:
    """A path id that is a UUID; anything else is the 404 page (the API would not know it either)."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise not_found() from None


def body_of(response: httpx.Response) -> Any:
    """The JSON body of an API answer, or None when it has none."""
    try:
        return response.json()
    except ValueError:
        return None


def found(response: httpx.Response) -> dict[str, Any]:
    """The object of a 200 answer; a 404 (missing or another client's) is the 404 page."""
    if response.status_code == 404:
        raise not_found()
    if response.status_code != 200:
        raise ApiRefused(response)
    body = body_of(response)
    return body if isinstance(body, dict) else {}


class ApiRefused(Exception):
    """An API answer the page did not expect; shown as a plain message rather than a crash."""

    def __init__(self, response: httpx.Response) -> None:
        body = body_of(response)
        detail = body.get("detail") if isinstance(body, dict) else None
        super().__init__(detail or f"The service answered {response.status_code}.")
        self.status_code = response.status_code
        self.detail = str(detail or "")


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
        body = body_of(response) if response.status_code == 200 else None
        out[path] = body if isinstance(body, dict) else None
    return out


async def tasks_of(client: ApiClient, requests: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """Every task of the given requests, by task id (None for a task that could not be read)."""
    ids = [str(task_id) for request in requests for task_id in request.get("task_ids") or []]
    fetched = await fetch_many(client, "intake", (f"/v1/tasks/{task_id}" for task_id in ids))
    return {task_id: fetched[f"/v1/tasks/{task_id}"] for task_id in ids}


def page_context(request: Request, viewer: Viewer, **context: Any) -> dict[str, Any]:
    """The context every client template gets: word helpers, flash, whether the viewer decides approvals."""
    return {"w": WORDS, "flash": flashes(request), "is_client_admin": viewer.role == "client_admin", **context}
