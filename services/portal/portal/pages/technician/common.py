"""What the technician pages share: who sees them, the 404 page, and reading API answers."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import httpx
from fastapi import Depends

from portal.api import ApiClient
from portal.deps import Viewer, api, require_roles
from portal.errors import PageNotFound

# The queue and task pages are the technicians' own (the contract's page list); anyone else gets the 404 page.
TechViewer = Annotated[Viewer, Depends(require_roles("technician"))]
ApiDep = Annotated[ApiClient, Depends(api)]


def not_found() -> Exception:
    """The core's 404 page, as an exception to raise."""
    return PageNotFound()


def parse_id(value: str) -> uuid.UUID:
    """A path id that is a UUID; anything else is the 404 page (the API would not know it either)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise not_found() from None


def body_of(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of an API answer, or {} when it has none."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def field_errors(response: httpx.Response) -> dict[str, str]:
    """A 422's problems keyed by the last part of each field's dotted path (the form field's name)."""
    body = body_of(response)
    problems = body.get("errors") or [{"field": body.get("field"), "detail": body.get("detail")}]
    out: dict[str, str] = {}
    for problem in problems:
        if not isinstance(problem, dict):
            continue
        name = str(problem.get("field") or "").rsplit(".", 1)[-1]
        out.setdefault(name, str(problem.get("detail") or "is not valid"))
    return out


def refusal_words(response: httpx.Response) -> str:
    """A refusal from an API in one plain sentence (its own `detail` words when it gave some)."""
    body = body_of(response)
    detail = str(body.get("detail") or "").strip()
    if response.status_code == 403:
        return f"You may not do this: {detail}." if detail else "You may not do this."
    if detail:
        return detail[0].upper() + detail[1:] + ("" if detail.endswith(".") else ".")
    return f"The service refused this (status {response.status_code})."
