"""Who an admin can assign a task to: the active technicians of the task's client, from intake's staff list."""

from __future__ import annotations

from typing import Any

from portal.answers import list_page
from portal.api import ApiClient

STAFF_PAGE = 200
STAFF_PAGES = 5


def works_for(member: dict[str, Any], client_id: str) -> bool:
    """Whether a staff member may see the client (`client_ids` null means every client)."""
    client_ids = member.get("client_ids")
    return client_ids is None or client_id in [str(c) for c in client_ids]


async def technicians(client: ApiClient, client_id: str) -> list[tuple[str, str]]:
    """The active technicians who work for the task's client, as (sub, display name), by name."""
    found: list[tuple[str, str]] = []
    cursor: str | None = None
    for _ in range(STAFF_PAGES):
        page = await list_page(client, "intake", "/v1/staff", {}, limit=STAFF_PAGE, cursor=cursor)
        for member in page.items:
            if member.get("role") == "technician" and member.get("active") and works_for(member, client_id):
                sub = str(member.get("sub"))
                found.append((sub, str(member.get("display_name") or sub)))
        cursor = page.next_cursor
        if not cursor:
            break
    return sorted(found, key=lambda pair: pair[1].lower())
