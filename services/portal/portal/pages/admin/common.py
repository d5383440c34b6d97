"""What every admin page shares: who may see it, the 404 page, and reading the APIs' answers."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import httpx
from fastapi import Depends

from portal import answers
from portal.answers import ApiRefused, json_object, not_found, parse_id
from portal.api import Api, ApiClient
from portal.deps import ApiDep, Viewer, require_roles

# Each page names the roles that see it; anyone else gets the core's 404 page, as the APIs would answer.
Admin = Annotated[Viewer, Depends(require_roles("admin"))]
LedgerReader = Annotated[Viewer, Depends(require_roles("admin", "client_admin"))]
__all__ = ["ApiDep", "ApiRefused", "json_object", "not_found", "parse_id"]

OPEN_TASK_STATUSES = ("new", "awaiting_approval", "ready", "in_progress", "on_hold")
# Counting pages through an API is bounded: past this many items the page says "at least".
COUNT_PAGES = 10
PAGE_LIMIT = 200


def optional_id(value: str | None) -> str | None:
    """A query id that is a UUID, or None when it is empty or not one."""
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def found(response: httpx.Response) -> dict[str, Any]:
    """The body of a 200 answer; a 404 (or a 403: not for this person) is the 404 page."""
    return answers.found(response, missing=(403, 404))


def page_of(response: httpx.Response) -> tuple[list[dict[str, Any]], str | None]:
    """The items and next cursor of a list answer (a 403/404 list is the 404 page)."""
    body = found(response)
    items = [item for item in body.get("items") or [] if isinstance(item, dict)]
    cursor = body.get("next_cursor")
    return items, str(cursor) if cursor else None


async def collect(
    client: ApiClient, target: Api, path: str, params: dict[str, Any] | None = None, *, pages: int = COUNT_PAGES
) -> tuple[list[dict[str, Any]], bool]:
    """Every item of a list, up to `pages` pages of 200; the flag says whether more remained."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(pages):
        query = {**(params or {}), "limit": PAGE_LIMIT, **({"cursor": cursor} if cursor else {})}
        batch, cursor = page_of(await client.get(target, path, params=query))
        items.extend(batch)
        if cursor is None:
            return items, False
    return items, True


async def count_open_tasks(client: ApiClient, **filters: str) -> tuple[int, bool]:
    """How many open tasks match `filters` (client_id, assignee), and whether the count is a lower bound."""
    total, more = 0, False
    for status in OPEN_TASK_STATUSES:
        items, truncated = await collect(client, "intake", "/v1/tasks", {**filters, "status": status}, pages=2)
        total += len(items)
        more = more or truncated
    return total, more


async def all_clients(client: ApiClient) -> tuple[list[dict[str, Any]], bool]:
    """The clients this person may see (for pickers and checkboxes), and whether the list was cut short."""
    return await collect(client, "intake", "/v1/clients")


def missing_is_404(response: httpx.Response) -> None:
    """A 404 answer to a write (the object vanished or is not this person's) becomes the 404 page."""
    if response.status_code == 404:
        raise not_found()
