"""The admin's "Assign to" form on the task page: a choice of active technicians, sent to intake's assign."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal.pages.technician.common import AdminViewer, ApiDep, field_errors, not_found, parse_uuid, refusal_words
from portal.pages.technician.task_page import render_task

router = APIRouter()

NOT_ASSIGNABLE = "{who} cannot be assigned this task: choose an active technician who works for this client."
CHOOSE = "Choose a technician."


def assign_words(response: httpx.Response, assignee: str) -> str:
    """Intake's refusal of an assignment in words (a 422 on `assignee` names who could not be assigned)."""
    if response.status_code == 422:
        return NOT_ASSIGNABLE.format(who=assignee) if "assignee" in field_errors(response) else CHOOSE
    if response.status_code == 409:
        return "This task is closed: a closed task cannot be assigned."
    return refusal_words(response)


@router.post("/tasks/{task_id}/assign", response_class=HTMLResponse)
async def assign(
    request: Request, task_id: str, viewer: AdminViewer, client: ApiDep, assignee: Annotated[str, Form()] = ""
) -> Response:
    """Assign (or reassign) the task to the chosen technician; intake decides, its refusal is shown in words."""
    tid = parse_uuid(task_id)
    if not assignee.strip():
        return await render_task(request, viewer, client, tid, errors={"assign": CHOOSE}, status_code=422)
    response = await client.post("intake", f"/v1/tasks/{tid}/assign", json={"assignee": assignee})
    if response.status_code == 200:
        return RedirectResponse(f"/tasks/{tid}?done=assigned", status_code=303)
    if response.status_code == 404:
        raise not_found()
    errors = {"assign": assign_words(response, assignee), "assign_value": assignee}
    return await render_task(request, viewer, client, tid, errors=errors, status_code=response.status_code)
