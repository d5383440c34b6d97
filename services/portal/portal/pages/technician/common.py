"""What the technician pages share: who sees them, the 404 page, and reading API answers."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends

from portal.answers import json_object, not_found, parse_uuid, problems
from portal.deps import ApiDep, Viewer, require_roles

# The work forms are the technicians' own (the contract's page list); anyone else gets the 404 page.
TechViewer = Annotated[Viewer, Depends(require_roles("technician"))]
# Admins also open the queue and task pages (intake decides what they see) to assign tasks.
StaffViewer = Annotated[Viewer, Depends(require_roles("technician", "admin"))]
AdminViewer = Annotated[Viewer, Depends(require_roles("admin"))]
__all__ = ["ApiDep", "json_object", "not_found", "parse_uuid"]


def field_errors(response: httpx.Response) -> dict[str, str]:
    """A 422's problems keyed by the last part of each field's dotted path (the form field's name)."""
    out: dict[str, str] = {}
    for problem in problems(json_object(response)):
        name = str(problem.get("field") or "").rsplit(".", 1)[-1]
        out.setdefault(name, str(problem.get("detail") or "is not valid"))
    return out


def refusal_words(response: httpx.Response) -> str:
    """A refusal from an API in one plain sentence (its own `detail` words when it gave some)."""
    body = json_object(response)
    detail = str(body.get("detail") or "").strip()
    if response.status_code == 403:
        return f"You may not do this: {detail}." if detail else "You may not do this."
    if detail:
        return detail[0].upper() + detail[1:] + ("" if detail.endswith(".") else ".")
    return f"The service refused this (status {response.status_code})."
