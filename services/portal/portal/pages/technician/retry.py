"""The task page's "Retry provisioning" form: an on_hold provisioning task handed back to vendor_sync by intake."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal.pages.technician.common import ApiDep, StaffViewer, json_object, not_found, parse_uuid, refusal_words
from portal.pages.technician.task_page import render_task
from portal.pages.technician.words import (
    RETRY_CLIENT_INACTIVE,
    RETRY_FORBIDDEN,
    RETRY_NOT_ON_HOLD,
    RETRY_NOT_PROVISIONED,
    status_words,
)

router = APIRouter()


def retry_words(response: httpx.Response) -> str:
    """Intake's refusal of a retry in words, with what to do about it."""
    body = json_object(response)
    if response.status_code == 403:
        return RETRY_FORBIDDEN
    if body.get("error") == "invalid_transition":
        return RETRY_NOT_ON_HOLD.format(status=status_words(body.get("current_status")).lower())
    if body.get("error") == "conflict" and body.get("field") == "type":
        return RETRY_NOT_PROVISIONED
    if body.get("error") == "conflict" and body.get("field") == "client_id":
        return RETRY_CLIENT_INACTIVE
    return refusal_words(response)


@router.post("/tasks/{task_id}/provisioning/retry", response_class=HTMLResponse)
async def retry_provisioning(request: Request, task_id: str, viewer: StaffViewer, client: ApiDep) -> Response:
    """Re-queue the unfinished steps of an on_hold provisioning task (a technician of its client, or an admin)."""
    tid = parse_uuid(task_id)
    response = await client.post("intake", f"/v1/tasks/{tid}/provisioning/retry")
    if response.status_code == 202:
        return RedirectResponse(f"/tasks/{tid}?done=retried", status_code=303)
    if response.status_code == 404:
        raise not_found()
    return await render_task(
        request, viewer, client, tid, errors={"retry": retry_words(response)}, status_code=response.status_code
    )
