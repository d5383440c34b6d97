"""The third party's side, in a real browser: the mailed link opens /reveal#token, one click shows the
secret once, the fragment leaves the address bar, a reload shows nothing, the link again says used.

Playwright 1.64.1 drives Debian's /usr/bin/chromium (Playwright cannot download browsers here);
`make test-slow` installs the package when it is missing.
"""

from __future__ import annotations

from typing import Any

import pytest
from broker_helpers import World

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def test_mailed_link_reveals_once_in_a_browser(e2e: Any, world: World) -> None:
    from playwright.sync_api import sync_playwright

    _, _, secret, _, _, token = world.third_party_token()
    link = f"{e2e.broker_url}/reveal#{token}"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            seen_urls: list[str] = []
            page.on("request", lambda request: seen_urls.append(request.url))

            page.goto(link)
            # The token leaves the address bar (and so the history) before anything is clicked.
            page.wait_for_function("() => window.location.hash === ''", timeout=5000)
            assert "#" not in page.url and token not in page.url
            assert page.locator("#result").is_hidden()
            page.click("#reveal-button")
            page.wait_for_selector("#result", state="visible", timeout=10000)
            assert page.text_content("#r-secret") == secret
            assert page.text_content("#r-name") == "ISP portal"
            assert token not in page.url

            page.reload()
            page.wait_for_load_state("load")
            assert page.locator("#result").is_hidden()
            assert secret not in page.content()
            assert page.locator("#paste-form").is_visible()

            # The same link again: in this tab (only the fragment changes) and in a fresh tab.
            second = browser.new_page()
            second.on("request", lambda request: seen_urls.append(request.url))
            for again in (page, second):
                again.goto(link)
                # In the same tab this is a fragment change: the page's hashchange handler takes it.
                again.wait_for_function("() => window.location.hash === ''", timeout=5000)
                assert "#" not in again.url
                again.click("#reveal-button")
                again.wait_for_selector("#error", state="visible", timeout=10000)
                assert "already used" in (again.text_content("#error") or "")
                assert secret not in again.content()
            # The token never went to the server in a URL (the fragment is browser-only).
            assert not any(token in url for url in seen_urls)
        finally:
            browser.close()
