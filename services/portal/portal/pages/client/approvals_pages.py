"""`/approvals` and `/approvals/{id}` (client_admin): what would be disclosed, to whom, and the decision."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal.answers import list_page
from portal.pages.client.common import (
    ApiDep,
    ClientAdmin,
    fetch_many,
    found,
    json_body,
    not_found,
    page_context,
    parse_id,
    with_flash,
)
from portal.pages.client.forms import errors_of, plain
from portal.templating import render

router = APIRouter()
PAGE_SIZE = 50
DECISIONS = ("approved", "rejected")
LIST_PROBLEM = "This list could not be shown. Start again from the first page."
ALREADY_DECIDED = (
    "This approval can no longer be decided: it was already decided, or it expired. Its current state is shown below."
)


@router.get("/approvals", response_class=HTMLResponse)
async def list_approvals(
    request: Request, viewer: ClientAdmin, client: ApiDep, cursor: str | None = None
) -> HTMLResponse:
    """Approvals waiting for a decision first, then the earlier ones."""
    pending: list[dict[str, Any]] = []
    if not cursor:
        pending = (
            await list_page(client, "intake", "/v1/approvals", {"status": "pending"}, limit=200, cursor=None)
        ).items
    page = await list_page(client, "intake", "/v1/approvals", {}, limit=PAGE_SIZE, cursor=cursor)
    earlier = [a for a in page.items if a.get("status") != "pending"]
    return render(
        request,
        "client/approvals.html",
        page_context(
            request,
            viewer,
            pending=pending,
            earlier=earlier,
            next_cursor=page.next_cursor,
            problem="" if page.ok else LIST_PROBLEM,
        ),
    )


async def _detail(
    request: Request,
    viewer: ClientAdmin,
    client: ApiDep,
    approval: dict[str, Any],
    *,
    notice: str = "",
    comment: str = "",
    comment_error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    """The approval page: what, to whom, in which category, until when; the decision form while pending."""
    credential_ids = [str(c) for c in approval.get("credential_ids") or []]
    # Credential names as this person may read them from the broker; an id alone when they may not.
    names = await fetch_many(client, "secrets_broker", (f"/v1/credentials/{c}" for c in credential_ids))
    credentials = [{"id": c, "meta": names.get(f"/v1/credentials/{c}")} for c in credential_ids]
    task_answer = await client.get("intake", f"/v1/tasks/{approval.get('task_id')}")
    task = json_body(task_answer) if task_answer.status_code == 200 else None
    return render(
        request,
        "client/approval_detail.html",
        page_context(
            request,
            viewer,
            approval=approval,
            credentials=credentials,
            task=task,
            notice=notice,
            comment=comment,
            comment_error=comment_error,
        ),
        status_code=status_code,
    )


@router.get("/approvals/{approval_id}", response_class=HTMLResponse)
async def show_approval(request: Request, approval_id: str, viewer: ClientAdmin, client: ApiDep) -> HTMLResponse:
    """One approval in plain words, with Approve and Reject while it waits."""
    approval = found(await client.get("intake", f"/v1/approvals/{parse_id(approval_id)}"))
    return await _detail(request, viewer, client, approval)


@router.post("/approvals/{approval_id}/decision", response_model=None)
async def decide(request: Request, approval_id: str, viewer: ClientAdmin, client: ApiDep) -> Response:
    """Approve or reject; intake decides whether this person may, and whether it is still pending."""
    path = f"/v1/approvals/{parse_id(approval_id)}"
    form = await request.form()
    decision = str(form.get("decision") or "")
    comment = str(form.get("comment") or "").strip()
    if decision not in DECISIONS:
        raise not_found()  # only the page's two buttons send a decision
    payload: dict[str, Any] = {"decision": decision}
    if comment:
        payload["comment"] = comment
    answer = await client.post("intake", f"{path}/decision", json=payload)
    if answer.status_code == 200:
        return RedirectResponse(with_flash(path.removeprefix("/v1"), decision), status_code=303)
    if answer.status_code == 404:
        raise not_found()
    approval = found(await client.get("intake", path))
    problems = errors_of(json_body(answer))
    words = " ".join(plain(str(p.get("detail") or ""), str(p.get("field") or "")) for p in problems)
    if answer.status_code == 409:
        # Already decided or expired; or the client is no longer active (`field: client_id`), in the API's words.
        refused_client = any(p.get("field") == "client_id" for p in problems)
        notice = words if refused_client else ALREADY_DECIDED
        return await _detail(request, viewer, client, approval, notice=notice, status_code=409)
    if answer.status_code == 422:
        return await _detail(request, viewer, client, approval, comment=comment, comment_error=words, status_code=422)
    return await _detail(request, viewer, client, approval, notice=words, status_code=answer.status_code)
