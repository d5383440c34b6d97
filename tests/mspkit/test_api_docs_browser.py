"""Swagger UI and ReDoc render in a real browser that may fetch nothing but the service itself.

Every request leaving the service's origin is aborted, as it would fail on a machine without internet
access, so a page that still needed a CDN would stay blank. Playwright drives Debian's chromium.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Route

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Set to a directory to keep the screenshots (e.g. to look at them after a change to the pages).
SHOTS_ENV = "MSP_DOCS_SCREENSHOTS"
CSP_WORDS = "Content Security Policy"
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture(scope="module")
def service_urls(intake_live: str, vendor_sync_live: str, secrets_broker_live: str) -> dict[str, str]:
    return {"intake": intake_live, "vendor_sync": vendor_sync_live, "secrets_broker": secrets_broker_live}


def _only_same_origin(origin: str, elsewhere: list[str]) -> Callable[[Route], None]:
    """A route handler letting through the service's own origin; anything else is recorded and aborted."""

    def _handle(route: Route) -> None:
        url = route.request.url
        if url.startswith("data:") or urlsplit(url).netloc == origin:
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort()

    return _handle


def test_swagger_ui_and_redoc_render_offline(service_urls: dict[str, str], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get(SHOTS_ENV) or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for service, base in service_urls.items():
                elsewhere: list[str] = []
                refused: list[str] = []
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.route("**/*", _only_same_origin(urlsplit(base).netloc, elsewhere))
                page.on("console", lambda m, refused=refused: refused.append(m.text) if CSP_WORDS in m.text else None)
                page.goto(f"{base}/docs")
                # Swagger UI renders the spec's title and one block per tag once it has the spec.
                page.wait_for_selector(".swagger-ui .info .title", timeout=20000)
                page.wait_for_selector(".opblock-tag", timeout=20000)
                assert service in (page.text_content(".swagger-ui .info .title") or "")
                page.screenshot(path=str(shots / f"{service}-docs.png"))

                page.goto(f"{base}/redoc")
                # ReDoc's rendered document carries the API's title in its first heading.
                page.wait_for_selector(".api-info h1", timeout=20000)
                assert service in (page.text_content(".api-info h1") or "")
                page.screenshot(path=str(shots / f"{service}-redoc.png"))
                page.close()
                assert elsewhere == [], f"{service}'s pages tried to fetch {elsewhere}"
                # The policy stops ReDoc's hard-coded CDN logo (which it then hides), and nothing else.
                assert [m for m in refused if REDOC_LOGO not in m] == [], refused
        finally:
            browser.close()
