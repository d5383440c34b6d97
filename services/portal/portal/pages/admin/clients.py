"""`/clients`: the admin's client list, the create form, a client's details and its status change."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from portal.pages.admin.common import (
    Admin,
    ApiDep,
    count_open_tasks,
    found,
    json_object,
    missing_is_404,
    page_of,
    parse_id,
)
from portal.pages.admin.forms import (
    MONEY_WORDS,
    cents_to_dollars,
    dollars_to_cents,
    field_errors,
    form_text,
    message,
    split_list,
)
from portal.templating import render

router = APIRouter()

CLIENT_FIELDS = ("name", "primary_domain", "approver_emails", "purchase_approval_threshold", "alert_emails")
STATUSES = ("active", "inactive", "closed")
# The API names the money field in cents; the form asks for dollars under its own name.
RENAME = {"purchase_approval_threshold_cents": "purchase_approval_threshold"}


async def _list_page(request: Request, client: ApiDep, cursor: str | None, **context: Any) -> Response:
    params: dict[str, Any] = {"limit": 50, **({"cursor": cursor} if cursor else {})}
    items, next_cursor = page_of(await client.get("intake", "/v1/clients", params=params))
    values = context.pop("values", {"purchase_approval_threshold": "500.00"})
    return render(
        request,
        "admin/clients.html",
        {"clients": items, "next_cursor": next_cursor, "values": values, "errors": {}, **context},
        status_code=context.pop("status_code", 200),
    )


@router.get("/clients")
async def clients_page(request: Request, viewer: Admin, client: ApiDep, cursor: str | None = None) -> Response:
    """The clients, a page at a time, and the form that adds one."""
    return await _list_page(request, client, cursor)


def create_body(values: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The `POST /v1/clients` body from the form, and the problems only the form can know (the money field)."""
    body: dict[str, Any] = {
        "name": values["name"].strip(),
        "primary_domain": values["primary_domain"].strip(),
        "approver_emails": split_list(values["approver_emails"]),
    }
    errors: dict[str, str] = {}
    cents = dollars_to_cents(values["purchase_approval_threshold"])
    if cents is None:
        errors["purchase_approval_threshold"] = MONEY_WORDS
    else:
        body["purchase_approval_threshold_cents"] = cents
    alert = split_list(values["alert_emails"])
    if alert:
        # Sent only when given: "defaults to the approvers" is the API's own default.
        body["alert_emails"] = alert
    return body, errors


@router.post("/clients")
async def create_client(request: Request, viewer: Admin, client: ApiDep) -> Response:
    """Create a client through intake; every problem is shown next to its field."""
    form = await request.form()
    values = {name: form_text(form, name) for name in CLIENT_FIELDS}
    body, errors = create_body(values)
    response = await client.post("intake", "/v1/clients", json=body)
    if response.status_code == 201 and not errors:
        return RedirectResponse(f"/clients/{json_object(response)['id']}?created=1", status_code=303)
    if response.status_code == 422:
        api_errors = field_errors(response, rename=RENAME)
        # The form's own word on the amount beats the API's "field required" for the amount it never got.
        errors = {**api_errors, **errors}
    elif response.status_code != 201:
        errors["form"] = message(response, "The client could not be created.")
    return await _list_page(request, client, None, values=values, errors=errors, status_code=422 if errors else 200)


@router.get("/clients/{client_id}")
async def client_page(request: Request, client_id: str, viewer: Admin, client: ApiDep) -> Response:
    """One client's details and the form that changes its status."""
    record = found(await client.get("intake", f"/v1/clients/{parse_id(client_id)}"))
    return _detail(request, record, created=request.query_params.get("created") == "1")


def _detail(request: Request, record: dict[str, Any], *, status_code: int = 200, **context: Any) -> Response:
    context = {
        "client": record,
        "statuses": STATUSES,
        "threshold": cents_to_dollars(record.get("purchase_approval_threshold_cents")),
        **context,
    }
    return render(request, "admin/client.html", context, status_code=status_code)


async def _pending_approvals(client: ApiDep, client_id: str) -> int | None:
    response = await client.get("intake", "/v1/approvals", params={"client_id": client_id, "status": "pending"})
    if response.status_code != 200:
        return None
    return len(json_object(response).get("items") or [])


@router.post("/clients/{client_id}/status")
async def change_status(request: Request, client_id: str, viewer: Admin, client: ApiDep) -> Response:
    """Change a client's status; leaving `active` first shows what will happen and asks to confirm."""
    client_id = parse_id(client_id)
    record = found(await client.get("intake", f"/v1/clients/{client_id}"))
    form = await request.form()
    target = form_text(form, "status")
    if target not in STATUSES:
        return _detail(request, record, status_code=422, status_error="Choose active, inactive or closed.")
    if target == record.get("status"):
        return _detail(request, record, status_code=422, status_error=f"The client is already {target}.")
    leaving_active = record.get("status") == "active"
    if leaving_active and form_text(form, "confirm") != "yes":
        open_tasks, more = await count_open_tasks(client, client_id=client_id)
        context = {
            "client": record,
            "target": target,
            "open_tasks": open_tasks,
            "open_tasks_more": more,
            "pending_approvals": await _pending_approvals(client, client_id),
        }
        return render(request, "admin/client_confirm.html", context)
    response = await client.patch("intake", f"/v1/clients/{client_id}", json={"status": target})
    if response.status_code == 200:
        return RedirectResponse(f"/clients/{client_id}", status_code=303)
    missing_is_404(response)
    return _detail(
        request,
        record,
        status_code=response.status_code,
        status_error=message(response, "The status could not be changed."),
    )
