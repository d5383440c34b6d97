"""`/staff`: the staff directory, adding a member, editing one, and (de)activating them."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from portal.pages.admin.common import Admin, ApiDep, all_clients, count_open_tasks, found, missing_is_404, page_of
from portal.pages.admin.forms import field_errors, form_text, message
from portal.templating import render

router = APIRouter()

ROLES = ("technician", "admin")
EVERY_CLIENT = "all"


def staff_path(sub: str) -> str:
    """The API path of one staff member (a sub is visible ASCII, so it may hold '/' or '?')."""
    return f"/v1/staff/{quote(sub, safe='')}"


def page_path(sub: str) -> str:
    """The portal path of one staff member's page."""
    return f"/staff/{quote(sub, safe='')}"


def access_values(form: Any) -> tuple[str, list[str]]:
    """The access choice ("all" or "some") and the ticked client ids of a staff form."""
    access = form_text(form, "access") or EVERY_CLIENT
    ticked = [value for value in form.getlist("client_ids") if isinstance(value, str)]
    return access, ticked


def client_ids_of(access: str, ticked: list[str]) -> list[str] | None:
    """`client_ids` for the API: null means every client; a list (possibly empty) means those only."""
    return None if access == EVERY_CLIENT else ticked


async def _list_page(
    request: Request, client: ApiDep, cursor: str | None, *, status_code: int = 200, **context: Any
) -> Response:
    params: dict[str, Any] = {"limit": 50, **({"cursor": cursor} if cursor else {})}
    members, next_cursor = page_of(await client.get("intake", "/v1/staff", params=params))
    clients, clients_more = await all_clients(client)
    context = {
        "members": members,
        "next_cursor": next_cursor,
        "clients": clients,
        "clients_more": clients_more,
        "client_names": {c["id"]: c.get("name", c["id"]) for c in clients},
        "roles": ROLES,
        "values": {"role": "technician", "access": EVERY_CLIENT, "client_ids": []},
        "errors": {},
        "page_path": page_path,
        **context,
    }
    return render(request, "admin/staff.html", context, status_code=status_code)


@router.get("/staff")
async def staff_page(request: Request, viewer: Admin, client: ApiDep, cursor: str | None = None) -> Response:
    """The staff directory, a page at a time, and the form that adds a member."""
    return await _list_page(request, client, cursor)


@router.post("/staff")
async def add_staff(request: Request, viewer: Admin, client: ApiDep) -> Response:
    """Add a staff member through intake; every problem is shown next to its field."""
    form = await request.form()
    access, ticked = access_values(form)
    values: dict[str, Any] = {name: form_text(form, name).strip() for name in ("sub", "display_name", "email", "role")}
    values.update(access=access, client_ids=ticked)
    body = {
        **{k: values[k] for k in ("sub", "display_name", "email", "role")},
        "client_ids": client_ids_of(access, ticked),
    }
    response = await client.post("intake", "/v1/staff", json=body)
    if response.status_code == 201:
        return RedirectResponse(f"{page_path(values['sub'])}?added=1", status_code=303)
    if response.status_code == 422:
        errors = field_errors(response)
    else:
        # 409: the sub (or a PSA member id) is taken; the API's words say which.
        errors = {"sub" if response.status_code == 409 else "form": message(response, "The member could not be added.")}
    return await _list_page(request, client, None, values=values, errors=errors, status_code=response.status_code)


async def _member_page(
    request: Request, client: ApiDep, member: dict[str, Any], *, status_code: int = 200, **context: Any
) -> Response:
    clients, clients_more = await all_clients(client)
    open_tasks, more = await count_open_tasks(client, assignee=member["sub"])
    ids = member.get("client_ids")
    values = {
        "display_name": member.get("display_name", ""),
        "email": member.get("email", ""),
        "role": member.get("role", "technician"),
        "access": EVERY_CLIENT if ids is None else "some",
        "client_ids": ids or [],
    }
    context = {
        "member": member,
        "clients": clients,
        "clients_more": clients_more,
        "client_names": {c["id"]: c.get("name", c["id"]) for c in clients},
        "roles": ROLES,
        "values": context.pop("values", values),
        "errors": {},
        "open_tasks": open_tasks,
        "open_tasks_more": more,
        "member_path": page_path(member["sub"]),
        **context,
    }
    return render(request, "admin/staff_member.html", context, status_code=status_code)


@router.get("/staff/{sub:path}")
async def member_page(request: Request, sub: str, viewer: Admin, client: ApiDep) -> Response:
    """One staff member: the edit form, and activate or deactivate."""
    member = found(await client.get("intake", staff_path(sub)))
    flags = {k: request.query_params.get(k) == "1" for k in ("added", "saved")}
    return await _member_page(request, client, member, **flags)


@router.post("/staff/{sub:path}/active")
async def set_active(request: Request, sub: str, viewer: Admin, client: ApiDep) -> Response:
    """Activate or deactivate a member (deactivating unassigns their open tasks, at intake)."""
    form = await request.form()
    active = form_text(form, "active")
    member = found(await client.get("intake", staff_path(sub)))
    if active not in ("true", "false"):
        return await _member_page(
            request, client, member, status_code=422, active_error="Choose activate or deactivate."
        )
    response = await client.patch("intake", staff_path(sub), json={"active": active == "true"})
    if response.status_code == 200:
        return RedirectResponse(f"{page_path(sub)}?saved=1", status_code=303)
    missing_is_404(response)
    return await _member_page(
        request,
        client,
        member,
        status_code=response.status_code,
        active_error=message(response, "The change could not be saved."),
    )


@router.post("/staff/{sub:path}")
async def edit_member(request: Request, sub: str, viewer: Admin, client: ApiDep) -> Response:
    """Save a member's name, address, role and clients."""
    form = await request.form()
    member = found(await client.get("intake", staff_path(sub)))
    access, ticked = access_values(form)
    values: dict[str, Any] = {name: form_text(form, name).strip() for name in ("display_name", "email", "role")}
    values.update(access=access, client_ids=ticked)
    body = {**{k: values[k] for k in ("display_name", "email", "role")}, "client_ids": client_ids_of(access, ticked)}
    response = await client.patch("intake", staff_path(sub), json=body)
    if response.status_code == 200:
        return RedirectResponse(f"{page_path(sub)}?saved=1", status_code=303)
    missing_is_404(response)
    errors = (
        field_errors(response)
        if response.status_code == 422
        else {"form": message(response, "The change could not be saved.")}
    )
    return await _member_page(request, client, member, status_code=response.status_code, values=values, errors=errors)
