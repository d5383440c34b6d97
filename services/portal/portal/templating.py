"""Jinja2 rendering: every page gets `request`, `viewer`, `csrf_token` and the navigation of the viewer's role."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import HTMLResponse

from portal.credential_words import category_words, kind_words
from portal.dates import when

TEMPLATES_DIR = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
# Shared by every area, so a date or a credential code reads the same on every page.
templates.env.filters["when"] = when
templates.env.filters["credential_kind"] = kind_words
templates.env.filters["credential_category"] = category_words

# Each role's areas (path, label, what it is for), for the navigation and the home page.
AREAS: dict[str, list[tuple[str, str, str]]] = {
    "client_user": [("/requests", "Requests", "Your requests and how each task is going")],
    "client_admin": [
        ("/requests", "Requests", "Your requests and how each task is going"),
        ("/approvals", "Approvals", "What we ask your approval for, and your decisions"),
        ("/disclosures", "Disclosures", "Every disclosure of your information to a third party"),
        ("/access", "Access", "Every release of your credentials: who, when, why"),
    ],
    "technician": [("/tasks", "Tasks", "Your queue: filter by status, client, type, yours or unassigned")],
    "admin": [
        ("/tasks", "Tasks", "Every task: open one to assign it to a technician"),
        ("/clients", "Clients", "Create clients and change their status"),
        ("/staff", "Staff", "Technicians and admins"),
        ("/vendors", "Vendors", "Vendors, accounts, contacts and domains"),
        ("/audit", "Audit", "The audit log and its chain verification"),
        ("/disclosures", "Disclosures", "The disclosure ledger of every client"),
    ],
}


def areas_of(role: str | None) -> list[tuple[str, str, str]]:
    """The areas a role may open (none when signed out)."""
    return AREAS.get(role or "", [])


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """Render a template with `request`, `viewer`, `csrf_token`, `nav` and `flash` added to `context`."""
    person = getattr(request.state, "viewer", None)
    full = {
        "flash": [],
        **context,
        "request": request,
        "viewer": person,
        "csrf_token": person.csrf_token if person is not None else "",
        "nav": areas_of(person.role if person is not None else None),
    }
    return templates.TemplateResponse(request, name, full, status_code=status_code)
