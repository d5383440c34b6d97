"""What the pod page shows a signed-in person: the ticket's task, and its credentials to its assignee only."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from portal.answers import json_object
from portal.api import ApiClient
from portal.deps import Viewer
from portal.pages.technician.session import issue_nonces
from portal.pages.technician.task_page import credentials_in_scope
from portal.pages.technician.words import status_words, type_words
from portal.templating import render

# Client roles never see a task through the pod, whatever intake would show them of their own.
STAFF_ROLES = frozenset({"technician", "admin"})


async def linked_task(client: ApiClient, viewer: Viewer, ticket_id: str) -> dict[str, Any] | None:
    """The task linked to the ticket as intake shows it to this person, or None (none, or not theirs to see)."""
    if viewer.role not in STAFF_ROLES:
        return None
    response = await client.get("intake", "/v1/tasks", params={"psa_ticket_id": ticket_id, "limit": 2})
    items = json_object(response).get("items") if response.status_code == 200 else None
    # One ticket links one task (intake's unique key); anything else is treated as no link at all.
    if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
        return None
    return items[0]


def page(request: Request, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """The pod template with the ticket's context; never cached (it may carry single-use nonces)."""
    response = render(request, "pod/ticket.html", context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


async def task_context(request: Request, viewer: Viewer, client: ApiClient, task: dict[str, Any]) -> dict[str, Any]:
    """The task's summary; its credentials with fresh reveal nonces (bound to the pod session) for its assignee."""
    task_id = uuid.UUID(str(task["id"]))
    is_assignee = viewer.role == "technician" and task.get("assignee") == viewer.sub
    credentials: list[dict[str, Any]] = []
    problem, nonces = "", {}
    if is_assignee:
        credentials, problem = await credentials_in_scope(client, task_id)
        nonces = await issue_nonces(request, task_id, [uuid.UUID(str(c["id"])) for c in credentials])
    return {
        "state": "task",
        "task": task,
        "is_assignee": is_assignee,
        "credentials": credentials,
        "credentials_problem": problem,
        "nonces": nonces,
        "status_words": status_words,
        "type_words": type_words,
    }
