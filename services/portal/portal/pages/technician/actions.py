"""The task page's forms: take, change status, add a note, decide a human step. Intake decides each."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal.api import ApiClient
from portal.deps import Viewer
from portal.pages.technician.common import (
    ApiDep,
    TechViewer,
    field_errors,
    json_object,
    not_found,
    parse_uuid,
    refusal_words,
)
from portal.pages.technician.task_page import render_task
from portal.pages.technician.words import status_words

router = APIRouter()

FormText = Annotated[str, Form()]


def done(task_id: uuid.UUID, what: str) -> RedirectResponse:
    """Back to the task page after a change (POST, redirect, GET: a reload repeats nothing)."""
    return RedirectResponse(f"/tasks/{task_id}?done={what}", status_code=303)


def with_text(payload: dict[str, Any], **texts: str) -> dict[str, Any]:
    """`payload` plus each optional text that is not blank (intake wants a blank note left out, not empty)."""
    return {**payload, **{name: text for name, text in texts.items() if text.strip()}}


async def refused(
    request: Request,
    viewer: Viewer,
    client: ApiClient,
    task_id: uuid.UUID,
    response: httpx.Response,
    errors: dict[str, Any],
) -> HTMLResponse:
    """The task page again with the refusal next to its form; a 404 from the API is the 404 page."""
    if response.status_code == 404:
        raise not_found()
    return await render_task(request, viewer, client, task_id, errors=errors, status_code=response.status_code)


def transition_words(response: httpx.Response) -> str:
    """An `invalid_transition` (or another refusal) in words, with where the task can go from here."""
    body = json_object(response)
    if body.get("error") != "invalid_transition":
        if response.status_code == 403:
            return "Only the task's assignee or an admin can change its status."
        return refusal_words(response)
    allowed = [status_words(s) for s in body.get("allowed") or []]
    current = status_words(body.get("current_status"))
    where = f" From {current} it can go to: {', '.join(allowed)}." if allowed else ""
    return refusal_words(response) + where


@router.post("/tasks/{task_id}/take", response_class=HTMLResponse)
async def take(request: Request, task_id: str, viewer: TechViewer, client: ApiDep) -> Response:
    """Take an unassigned ready task for oneself (intake allows only that to a technician)."""
    tid = parse_uuid(task_id)
    response = await client.post("intake", f"/v1/tasks/{tid}/assign", json={"assignee": viewer.sub})
    if response.status_code == 200:
        return done(tid, "taken")
    words = refusal_words(response)
    if response.status_code == 403:
        words = "Only an unassigned task that is ready can be taken; an admin reassigns the others."
    return await refused(request, viewer, client, tid, response, {"take": words})


@router.post("/tasks/{task_id}/transition", response_class=HTMLResponse)
async def transition(
    request: Request, task_id: str, viewer: TechViewer, client: ApiDep, to: FormText = "", note: FormText = ""
) -> Response:
    """Move the task to another status; intake's table decides, and its refusal is shown in words."""
    tid = parse_uuid(task_id)
    response = await client.post("intake", f"/v1/tasks/{tid}/transition", json=with_text({"to": to}, note=note))
    if response.status_code == 200:
        return done(tid, "moved")
    errors: dict[str, Any] = {}
    if response.status_code == 422:
        problems = field_errors(response)
        if "note" in problems:
            errors["transition_note"] = problems.pop("note")
        if problems:
            errors["transition"] = "Choose one of the buttons to change the status."
    else:
        errors["transition"] = transition_words(response)
    return await refused(request, viewer, client, tid, response, errors)


@router.post("/tasks/{task_id}/notes", response_class=HTMLResponse)
async def add_note(request: Request, task_id: str, viewer: TechViewer, client: ApiDep, body: FormText = "") -> Response:
    """Add an internal note (the assignee or an admin)."""
    tid = parse_uuid(task_id)
    response = await client.post("intake", f"/v1/tasks/{tid}/notes", json={"body": body})
    if response.status_code == 201:
        return done(tid, "noted")
    if response.status_code == 422:
        words = "The note " + field_errors(response).get("body", "is not valid") + "; write what you did or found."
    elif response.status_code == 403:
        words = "Only the task's assignee or an admin can add notes; take the task first."
    else:
        words = refusal_words(response)
    return await refused(request, viewer, client, tid, response, {"note": words, "note_body": body})


@router.post("/tasks/{task_id}/steps/{step_id}", response_class=HTMLResponse)
async def decide_step(
    request: Request,
    task_id: str,
    step_id: str,
    viewer: TechViewer,
    client: ApiDep,
    status: FormText = "",
    detail: FormText = "",
) -> Response:
    """Record the outcome of a human step (succeeded or failed, with what happened)."""
    tid, sid = parse_uuid(task_id), parse_uuid(step_id)
    response = await client.post(
        "intake", f"/v1/tasks/{tid}/steps/{sid}", json=with_text({"status": status}, detail=detail)
    )
    if response.status_code == 200:
        return done(tid, "step")
    step_errors: dict[str, str] = {}
    if response.status_code == 422:
        problems = field_errors(response)
        if "detail" in problems:
            step_errors["detail"] = "What happened " + problems["detail"] + "."
        else:
            step_errors["form"] = "Press Mark succeeded or Mark failed."
    elif response.status_code == 403:
        step_errors["form"] = "Only the task's assignee or an admin can record a step; take the task first."
    else:
        step_errors["form"] = refusal_words(response)
    return await refused(request, viewer, client, tid, response, {f"step:{sid}": step_errors})
