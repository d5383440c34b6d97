"""`/requests/new/{type}`: one form per request type, sent to intake's `POST /v1/requests`.

Each rendered form carries its own Idempotency-Key, so a double submit files one request. The key
is kept across a 422 re-render (intake claims a key only when it creates the request, so fixing the
form and sending it again is still the same submission) and renewed after a 409.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal.pages.client.common import ApiDep, ClientViewer, json_body, not_found, page_context, with_flash
from portal.pages.client.forms import Built, Placed, Problem, build, errors_of, place
from portal.pages.client.formspec import FORMS, FormSpec
from portal.pages.client.words import WORDS
from portal.templating import render

router = APIRouter()
KEY_FIELD = "idempotency_key"
ALREADY_SENT = (
    "This form was already sent once with other values, so it was not filed again. "
    "Your values are kept below: press Send request to file them as a new request."
)


def _spec(type_: str) -> FormSpec:
    spec = FORMS.get(type_)
    if spec is None:
        raise not_found()
    return spec


async def _options(client: ApiDep, viewer: ClientViewer, spec: FormSpec) -> dict[str, list[tuple[str, str]]]:
    """Choices for select inputs: the client's vendor accounts for a contact change."""
    if spec.type != "vendor_contact_update" or not viewer.client_id:
        return {}
    response = await client.get("vendor_sync", f"/v1/clients/{viewer.client_id}/vendor-accounts", params={"limit": 200})
    accounts = (json_body(response) or {}).get("items") or [] if response.status_code == 200 else []
    return {"vendor_account_id": [(str(a["id"]), _account_words(a)) for a in accounts if a.get("id")]}


def _account_words(account: dict[str, Any]) -> str:
    """A vendor account as a person recognises it (vendor_sync gives clients the kind, not the vendor's name)."""
    return f"{WORDS.vendor_kind(account.get('vendor_kind'))} account {account.get('account_number', '')}".strip()


async def _form_page(
    request: Request,
    viewer: ClientViewer,
    client: ApiDep,
    spec: FormSpec,
    *,
    key: str,
    built: Built | None = None,
    placed: Placed | None = None,
    notice: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "client/request_new.html",
        page_context(
            request,
            viewer,
            spec=spec,
            key=key,
            key_field=KEY_FIELD,
            values=built.values if built else {},
            placed=placed or Placed(),
            notice=notice,
            options=await _options(client, viewer, spec),
        ),
        status_code=status_code,
    )


@router.get("/requests/new/{request_type}", response_class=HTMLResponse)
async def new_request_form(request: Request, request_type: str, viewer: ClientViewer, client: ApiDep) -> HTMLResponse:
    """An empty form for one request type, with a fresh Idempotency-Key."""
    return await _form_page(request, viewer, client, _spec(request_type), key=str(uuid.uuid4()))


@router.post("/requests/new/{request_type}", response_model=None)
async def submit_request(request: Request, request_type: str, viewer: ClientViewer, client: ApiDep) -> Response:
    """File the request; a refusal re-renders the form with the values kept and each error by its field."""
    spec = _spec(request_type)
    form = await request.form()
    key = str(form.get(KEY_FIELD) or "")
    built = build(spec, {name: value for name, value in form.items() if isinstance(value, str)})
    response = await client.post("intake", "/v1/requests", json=built.body, headers={"Idempotency-Key": key})
    body = json_body(response)
    if response.status_code == 201 and isinstance(body, dict) and body.get("id"):
        return RedirectResponse(with_flash(f"/requests/{body['id']}", "received"), status_code=303)
    if response.status_code == 409 and not (isinstance(body, dict) and body.get("field") == "client_id"):
        # The key was used for another body (the form sent again after Back and an edit); a 409 about
        # the client (no longer active) falls through to the API's own words below.
        return await _form_page(
            request, viewer, client, spec, key=str(uuid.uuid4()), built=built, notice=ALREADY_SENT, status_code=409
        )
    placed = place(spec, built, errors_of(body))
    if response.status_code != 422:
        # Not a field problem (the client is no longer active, say): the API's words, at the top.
        detail = str((body or {}).get("detail") or "") if isinstance(body, dict) else ""
        placed = Placed(
            unplaced=[Problem(None, "Your request", detail or "The request could not be filed. Please try again.")]
        )
        placed.summary = list(placed.unplaced)
    status_code = response.status_code if response.status_code >= 400 else 502
    return await _form_page(request, viewer, client, spec, key=key, built=built, placed=placed, status_code=status_code)
