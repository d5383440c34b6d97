"""GET / : the home of whoever signed in; GET /favicon.ico: the site icon."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse

from portal.deps import CurrentViewer
from portal.templating import areas_of, render

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request, person: CurrentViewer) -> HTMLResponse:
    """Links to the areas of the viewer's role."""
    return render(request, "home.html", {"areas": areas_of(person.role)})


@router.get("/favicon.ico")
async def favicon() -> RedirectResponse:
    """The icon, for browsers and tools that ask for /favicon.ico without reading the page's link."""
    return RedirectResponse("/static/favicon.svg", status_code=301)
