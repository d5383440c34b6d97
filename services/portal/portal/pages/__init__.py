"""The pages of each role, written on top of `portal.deps`, `portal.api` and `portal.templating`.

Each area package (`admin`, `client`, `technician`) exposes one `router`; `include_pages` mounts them.
"""

from __future__ import annotations

import importlib

from fastapi import APIRouter, FastAPI

# Admin first: its ledger page is the shared `/disclosures` (all clients for admins, their own for client_admins).
AREAS = ("admin", "client", "technician")


def include_pages(app: FastAPI, areas: tuple[str, ...] = AREAS) -> None:
    """Mount each area's `router` (an area not written yet is skipped; any other import error is raised)."""
    for area in (a for a in AREAS if a in areas):
        name = f"portal.pages.{area}"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            app.include_router(router)
