"""Exception handlers: sign-in redirects, and the 403, 404, 503 and 500 pages (never a traceback)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from mspkit.logging import get_logger
from portal.deps import known_viewer
from portal.errors import ApiUnavailable, CsrfRejected, NotSignedIn, PageNotFound
from portal.pod.paths import is_pod_request, pod_page_of
from portal.templating import render

log = get_logger("portal.handlers")


def login_url(return_to: str) -> str:
    """The sign-in URL that comes back to `return_to`."""
    return "/login?" + urlencode({"return_to": return_to})


async def _not_signed_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotSignedIn)
    if is_pod_request(request):
        # The IdP refuses to be framed: the pod page itself offers the sign-in pop-up instead.
        if request.headers.get("HX-Request"):
            return Response(status_code=401, headers={"HX-Refresh": "true"})
        page = pod_page_of(request)
        if page is None:
            return Response(status_code=401)
        return RedirectResponse(page, status_code=303)
    target = login_url(exc.return_to)
    if request.headers.get("HX-Request"):
        # htmx would follow a 303 inside its XHR and swap the IdP's page into a fragment.
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def _unavailable(request: Request, exc: Exception) -> Response:
    return render(request, "errors/503.html", {}, status_code=503)


async def _with_viewer(request: Request) -> None:
    """Make the signed-in person (if any) known to the page, so it has the usual header and Sign out."""
    # A 404 for an unknown path or a 403 for a missing token comes before any page asked who is signed in.
    try:
        request.state.viewer = await known_viewer(request)
    except (SQLAlchemyError, OSError, ValueError) as exc:  # the error page must not fail: no header then
        log.warning("portal_error_page_viewer", error=type(exc).__name__)


async def _not_found(request: Request, exc: Exception) -> Response:
    await _with_viewer(request)
    return render(request, "errors/404.html", {}, status_code=404)


async def _csrf(request: Request, exc: Exception) -> Response:
    await _with_viewer(request)
    return render(request, "errors/403.html", {}, status_code=403)


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return await _not_found(request, exc)
    if exc.status_code == 403:
        return await _csrf(request, exc)
    context = {"status": exc.status_code, "message": "This request cannot be handled here."}
    return render(request, "errors/error.html", context, status_code=exc.status_code)


async def _invalid(request: Request, exc: Exception) -> Response:
    # A page's own form checks show errors inline; this is for a malformed URL or an unexpected body.
    context = {"status": 400, "message": "Some of what was sent is not valid; go back and try again."}
    return render(request, "errors/error.html", context, status_code=400)


async def _unhandled(request: Request, exc: Exception) -> Response:
    log.error("portal_unhandled_error", error=type(exc).__name__)
    context = {"status": 500, "message": "Something went wrong on our side; try again in a minute."}
    return render(request, "errors/error.html", context, status_code=500)


def install_handlers(app: FastAPI) -> None:
    """Replace the kit's JSON error handlers with the portal's pages."""
    app.add_exception_handler(NotSignedIn, _not_signed_in)
    app.add_exception_handler(ApiUnavailable, _unavailable)
    app.add_exception_handler(PageNotFound, _not_found)
    app.add_exception_handler(CsrfRejected, _csrf)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(Exception, _unhandled)
