"""`GET /tasks`: the queue (a technician's, or every task for an admin), filtered and paged by intake itself."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal.answers import list_page
from portal.api import ApiClient
from portal.pages.technician.common import ApiDep, StaffViewer, field_errors, refusal_words
from portal.pages.technician.words import STATUS_WORDS, TYPE_WORDS, status_words, type_words
from portal.templating import render

router = APIRouter()

# Clients are read in pages of this size, up to this many pages, for the filter's select.
CLIENT_PAGE = 200
CLIENT_PAGES = 5
# Tasks per page of the queue (intake's own default; a test lowers it to see the next link).
QUEUE_PAGE = 50
ASSIGNED_CHOICES = {"any": "Anyone", "mine": "Assigned to me", "unassigned": "Unassigned"}


async def client_names(client: ApiClient) -> dict[str, str]:
    """The technician's clients (intake lists only theirs), id -> name."""
    names: dict[str, str] = {}
    cursor: str | None = None
    for _ in range(CLIENT_PAGES):
        page = await list_page(client, "intake", "/v1/clients", {}, limit=CLIENT_PAGE, cursor=cursor)
        for item in page.items:
            names[str(item.get("id"))] = str(item.get("name") or item.get("id"))
        cursor = page.next_cursor
        if not cursor:
            break
    return names


def task_params(filters: dict[str, str], sub: str) -> dict[str, str]:
    """The intake query for the chosen filters (only those given)."""
    params = {key: filters[key] for key in ("status", "client_id", "type") if filters.get(key)}
    if filters.get("assigned") == "mine":
        params["assignee"] = sub
    elif filters.get("assigned") == "unassigned":
        params["assignee"] = "none"
    return params


@router.get("/tasks", response_class=HTMLResponse)
async def queue(
    request: Request,
    viewer: StaffViewer,
    client: ApiDep,
    status: str = "",
    client_id: str = "",
    type: str = "",
    assigned: str = "any",
    cursor: str = "",
) -> HTMLResponse:
    """The queue: tasks of the technician's clients and tasks assigned to them, as intake lists them."""
    filters = {"status": status, "client_id": client_id, "type": type, "assigned": assigned, "cursor": cursor}
    names = await client_names(client)
    page = await list_page(
        client, "intake", "/v1/tasks", task_params(filters, viewer.sub), limit=QUEUE_PAGE, cursor=cursor
    )
    response = page.response
    errors: dict[str, str] = {}
    problem = ""
    next_url = None
    if page.ok:
        if page.next_cursor:
            kept = {k: v for k, v in filters.items() if v and k != "cursor"}
            next_url = "/tasks?" + urlencode({**kept, "cursor": page.next_cursor})
    elif response.status_code == 422:
        errors = field_errors(response)
        # A bad cursor or `assignee` is no form field: say it above the table.
        problem = "; ".join(f"{k}: {v}" for k, v in errors.items() if k not in ("status", "client_id", "type"))
    else:
        problem = refusal_words(response)
    return render(
        request,
        "technician/queue.html",
        {
            "tasks": page.items,
            "filters": filters,
            "errors": errors,
            "problem": problem,
            "next_url": next_url,
            "clients": names,
            "statuses": STATUS_WORDS,
            "types": TYPE_WORDS,
            "assigned_choices": ASSIGNED_CHOICES,
            "status_words": status_words,
            "type_words": type_words,
        },
        status_code=422 if response.status_code == 422 else 200,
    )
