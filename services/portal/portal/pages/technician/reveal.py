"""`POST /tasks/{id}/reveal`: release and unwrap server-side, show the secret once, keep it nowhere.

Order matters: the recent sign-in and the reason's presence are checked before the nonce is spent;
the nonce is spent (atomically) before the broker is asked, so a resubmission can never make a second
release. The wrap token lives only in this function's locals and never reaches the browser; the
secret goes only into the response body (no-store), never into a log line, the session or the database.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from portal import reveal_nonces
from portal.api import ApiClient
from portal.auth.recent import signed_in_recently
from portal.pages.technician import words
from portal.pages.technician.common import ApiDep, TechViewer, field_errors, json_object, parse_uuid
from portal.pages.technician.session import issue_nonces, session_hash
from portal.pod.paths import is_pod_request, pod_page_of
from portal.runtime import runtime
from portal.templating import render

router = APIRouter()


def reveal_clock(request: Request) -> float:
    """Now, in seconds since the epoch: the runtime's clock, as a dependency so a test can move it."""
    return runtime(request).clock()


Clock = Annotated[float, Depends(reveal_clock)]
FormText = Annotated[str, Form()]


def release_refusal(response: httpx.Response) -> str:
    """The broker's refusal of a release or an unwrap, in words a technician can act on."""
    body = json_object(response)
    error = body.get("error")
    if error == "release_denied":
        return words.rule_words(body.get("rule"))
    if response.status_code == 409 and body.get("field") == "client_id":
        return words.RULE_WORDS["client_not_active"]
    if response.status_code == 422:
        problems = field_errors(response)
        return words.NEED_REASON if "reason" in problems else "This reveal form is not valid; reload the page."
    if response.status_code == 410:
        return words.TOKEN_GONE
    if response.status_code == 429:
        return words.TOO_MANY
    return words.NOT_AVAILABLE


def message_region(credential_id: str) -> str | None:
    """The selector of the credential's message area, or None when the form named no credential."""
    try:
        return f"#reveal-message-{uuid.UUID(credential_id)}"
    except ValueError:
        return None


def fragment(request: Request, context: dict[str, Any], status_code: int) -> HTMLResponse:
    """The result (a whole page when the form was sent without htmx); never cached.

    Only a revealed secret goes to the result area; a refusal goes to the message area, so a second
    answer (a double click's 409) can never replace a secret that is already shown.
    """
    htmx = bool(request.headers.get("HX-Request"))
    if htmx:
        name = "technician/reveal_result.html"
        context = {**context, "oob": True}
    else:
        # A whole page replaces the form, so there is no hidden field to refresh: the page links back.
        name = "pod/reveal_page.html" if is_pod_request(request) else "technician/reveal_page.html"
        context = {k: v for k, v in context.items() if k != "nonce"} | {"back_to": pod_page_of(request)}
    response = render(request, name, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    target = message_region(str(context.get("credential_id") or ""))
    if htmx and "revealed" not in context and target:
        response.headers["HX-Retarget"] = target
    return response


def sign_in_again(request: Request, task_id: uuid.UUID) -> dict[str, Any]:
    """How to sign in again: a forced sign-in back to the task, or in the ticket pod its sign-in pop-up."""
    if is_pod_request(request):
        return {"pod_sign_in": True, "sign_in_words": words.SIGN_IN_AGAIN}
    return {"sign_in": f"/login?prompt=login&return_to=/tasks/{task_id}", "sign_in_words": words.SIGN_IN_AGAIN}


async def fresh_nonce(request: Request, task_id: uuid.UUID, credential_id: uuid.UUID) -> str:
    """A new nonce for the same form, after a refusal that released nothing, so the form works again."""
    issued = await issue_nonces(request, task_id, [credential_id])
    return issued[str(credential_id)]


async def release_and_unwrap(
    client: ApiClient, task_id: uuid.UUID, credential_id: uuid.UUID, reason: str
) -> tuple[dict[str, Any] | None, httpx.Response]:
    """Release to the caller and unwrap at once; the revealed body, or None with the refusing answer."""
    released = await client.post(
        "secrets_broker",
        "/v1/releases",
        json={"task_id": str(task_id), "credential_id": str(credential_id), "reason": reason},
    )
    if released.status_code != 201:
        return None, released
    unwrapped = await client.post(
        "secrets_broker", "/v1/unwrap", json={"wrap_token": json_object(released).get("wrap_token")}
    )
    if unwrapped.status_code != 200:
        return None, unwrapped
    return json_object(unwrapped), unwrapped


@router.post("/tasks/{task_id}/reveal", response_class=HTMLResponse)
async def reveal(
    request: Request,
    task_id: str,
    viewer: TechViewer,
    client: ApiDep,
    now: Clock,
    credential_id: FormText = "",
    nonce: FormText = "",
    reason: FormText = "",
) -> HTMLResponse:
    """Reveal one credential of the task once, for a reason, to its assignee who signed in recently."""
    tid = parse_uuid(task_id)
    base: dict[str, Any] = {"task_id": str(tid), "credential_id": credential_id}
    try:
        cid = uuid.UUID(credential_id)
    except ValueError:
        return fragment(request, {**base, "problem": words.NONCE_INVALID}, 422)
    if not signed_in_recently(viewer, now):
        # Nothing is spent or released; signing in again comes back to this task with fresh forms.
        return fragment(request, {**base, **sign_in_again(request, tid)}, 401)
    if not reason.strip():
        return fragment(request, {**base, "problem": words.NEED_REASON}, 422)
    outcome = await run_in_threadpool(
        reveal_nonces.consume,
        runtime(request).engine,
        nonce=nonce,
        session_hash=await session_hash(request),
        task_id=tid,
        credential_id=cid,
    )
    if outcome is not reveal_nonces.Outcome.CONSUMED:
        problem = words.ALREADY_USED if outcome is reveal_nonces.Outcome.USED else words.NONCE_INVALID
        return fragment(request, {**base, "problem": problem}, 409)
    revealed, answer = await release_and_unwrap(client, tid, cid, reason)
    if revealed is None:
        context = {**base, "problem": release_refusal(answer), "nonce": await fresh_nonce(request, tid, cid)}
        return fragment(request, context, answer.status_code if answer.status_code < 500 else 502)
    return fragment(request, {**base, "revealed": revealed}, 200)
