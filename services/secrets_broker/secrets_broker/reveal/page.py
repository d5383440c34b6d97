"""GET /reveal: the static one-time page, with headers that keep the secret out of caches and frames."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

STATIC = Path(__file__).parent / "static"
# The page itself never holds a secret; these headers still keep the fetched one out of caches,
# Referer headers and other sites' frames.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
_TYPES = {"reveal.js": "text/javascript; charset=utf-8", "reveal.css": "text/css; charset=utf-8"}

router = APIRouter(include_in_schema=False)


@router.get("/reveal")
def reveal_page() -> Response:
    """The page: it reads the reveal code from the URL fragment (never a query string) or a paste."""
    return Response(
        (STATIC / "reveal.html").read_bytes(), media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS
    )


@router.get("/reveal/{asset}")
def reveal_asset(asset: str) -> Response:
    """The page's script and stylesheet (a fixed allowlist, no path from the request reaches the disk)."""
    media_type = _TYPES.get(asset)
    if media_type is None:
        return Response(status_code=404, headers=SECURITY_HEADERS)
    return Response((STATIC / asset).read_bytes(), media_type=media_type, headers=SECURITY_HEADERS)
