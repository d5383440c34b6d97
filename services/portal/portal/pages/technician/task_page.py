"""`GET /tasks/{id}`: one task, its work forms (an admin's Assign form), its credentials with a Reveal form each."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal.api import ApiClient
from portal.deps import Viewer
from portal.pages.technician.common import ApiDep, StaffViewer, json_object, not_found, parse_uuid, refusal_words
from portal.pages.technician.roster import technicians
from portal.pages.technician.session import issue_nonces
from portal.pages.technician.words import (
    APPROVAL_WORDS,
    DONE_WORDS,
    PARTY_WORDS,
    TRANSITION_WORDS,
    WORK_TRANSITIONS,
    status_words,
    step_words,
    type_words,
)
from portal.templating import render

router = APIRouter()


async def load_task(client: ApiClient, task_id: uuid.UUID) -> dict[str, Any]:
    """The task as intake shows it to this person; a 404 (missing or not theirs) is the 404 page."""
    response = await client.get("intake", f"/v1/tasks/{task_id}")
    if response.status_code != 200:
        # 404 is the API's answer for another client's task; a malformed id (422) is as unknown to it.
        raise not_found()
    return json_object(response)


async def client_name(client: ApiClient, client_id: str) -> str:
    """The client's name, or its id when intake does not say."""
    response = await client.get("intake", f"/v1/clients/{client_id}")
    return str(json_object(response).get("name") or client_id) if response.status_code == 200 else client_id


async def credentials_in_scope(client: ApiClient, task_id: uuid.UUID) -> tuple[list[dict[str, Any]], str]:
    """The credentials in the task's scope (metadata only, the broker decides the scope), and a problem if any."""
    response = await client.get("secrets_broker", "/v1/credentials", params={"task_id": str(task_id), "limit": 200})
    if response.status_code == 200:
        return list(json_object(response).get("items") or []), ""
    if response.status_code in (403, 404):
        # The broker lists a task's credentials to its assignee (and admins) only.
        return [], "The credentials of this task are shown to its assignee."
    return [], refusal_words(response)


def failed_worker_steps(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps provisioning ran and failed (a person's checklist steps are not retried)."""
    return [s for s in task.get("steps") or [] if not s.get("human") and s.get("status") == "failed"]


async def render_task(
    request: Request,
    viewer: Viewer,
    client: ApiClient,
    task_id: uuid.UUID,
    *,
    errors: dict[str, Any] | None = None,
    notice: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    """The task page, with fresh reveal nonces, and any errors of the form just sent."""
    task = await load_task(client, task_id)
    name = await client_name(client, str(task.get("client_id")))
    credentials, credentials_problem = await credentials_in_scope(client, task_id)
    works = viewer.role == "technician"  # admins assign; the work forms and Reveal are the technicians'
    nonces: dict[str, str] = {}
    if works:
        nonces = await issue_nonces(request, task_id, [uuid.UUID(str(c["id"])) for c in credentials])
    status = str(task.get("status"))
    is_admin = viewer.role == "admin"
    failed_steps = failed_worker_steps(task)
    context = {
        "task": task,
        "client_name": name,
        "credentials": credentials,
        "credentials_problem": credentials_problem,
        "nonces": nonces,
        "is_assignee": task.get("assignee") == viewer.sub,
        "can_work": works,
        "can_take": works and task.get("assignee") is None and status == "ready",
        "transitions": [(to, TRANSITION_WORDS[to]) for to in WORK_TRANSITIONS.get(status, ())] if works else [],
        "is_admin": is_admin,
        "is_open": status in WORK_TRANSITIONS,
        "failed_steps": failed_steps,
        # Intake decides who may retry (a technician of the client unless another person holds it, an admin).
        "can_retry": status == "on_hold" and bool(failed_steps),
        "technicians": await technicians(client, str(task.get("client_id"))) if is_admin else [],
        "errors": errors or {},
        "notice": notice,
        "status_words": status_words,
        "type_words": type_words,
        "step_words": step_words,
        "party_words": PARTY_WORDS,
        "approval_words": APPROVAL_WORDS,
    }
    response = render(request, "technician/task.html", context, status_code=status_code)
    # The page carries single-use nonces: a cached copy would only offer spent ones.
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(
    request: Request, task_id: str, viewer: StaffViewer, client: ApiDep, done: str = ""
) -> HTMLResponse:
    """One task: what it is, its approvals, steps and notes, and what the viewer can do next."""
    return await render_task(request, viewer, client, parse_uuid(task_id), notice=DONE_WORDS.get(done, ""))
