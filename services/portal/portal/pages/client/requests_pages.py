"""`/requests` and `/requests/{id}`: a client's requests, each with its tasks' progress and steps."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal.answers import list_page
from portal.pages.client.common import (
    ApiDep,
    ClientViewer,
    found,
    page_context,
    parse_id,
    tasks_of,
)
from portal.pages.client.formspec import FORMS
from portal.pages.client.words import REQUEST_STATUSES, REQUEST_TYPES
from portal.templating import render

router = APIRouter()
PAGE_SIZE = 20


def _filters(status: str | None, type_: str | None) -> dict[str, str]:
    """Only the filter values the API knows; a made-up one in the address is dropped, not sent."""
    chosen: dict[str, str] = {}
    if status and status in REQUEST_STATUSES:
        chosen["status"] = status
    if type_ and type_ in REQUEST_TYPES:
        chosen["type"] = type_
    return chosen


@router.get("/requests", response_class=HTMLResponse)
async def list_requests(
    request: Request,
    viewer: ClientViewer,
    client: ApiDep,
    status: str | None = None,
    type: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    """The client's requests, newest first, with each task's status and steps."""
    filters = _filters(status, type)
    page = await list_page(client, "intake", "/v1/requests", filters, limit=PAGE_SIZE, cursor=cursor)
    # A stale or edited cursor: say so and offer the first page instead of failing.
    problem = "" if page.ok else "This list could not be shown as asked. Start again from the first page."
    items = page.items
    tasks = await tasks_of(client, items)
    return render(
        request,
        "client/requests.html",
        page_context(
            request,
            viewer,
            requests=items,
            tasks=tasks,
            filters=filters,
            next_cursor=page.next_cursor,
            problem=problem,
            forms=FORMS,
            request_types=REQUEST_TYPES,
            request_statuses=REQUEST_STATUSES,
        ),
    )


@router.get("/requests/{request_id}", response_class=HTMLResponse)
async def show_request(request: Request, request_id: str, viewer: ClientViewer, client: ApiDep) -> HTMLResponse:
    """One request: its status, its tasks with their steps, and the approvals still waiting."""
    found_request = found(await client.get("intake", f"/v1/requests/{parse_id(request_id)}"))
    tasks = await tasks_of(client, [found_request])
    pending = [
        approval
        for task in tasks.values()
        if task
        for approval in task.get("approvals") or []
        if approval.get("status") == "pending"
    ]
    return render(
        request,
        "client/request_detail.html",
        page_context(request, viewer, req=found_request, tasks=tasks, pending=pending),
    )
