"""The third party's side, in a real browser: the mailed link opens /reveal#code, one click shows the
secret once, the fragment leaves the address bar, a reload shows nothing, the link again says used; a
pasted link works too, and a code whose task closed shows nothing.

Playwright 1.64.1 drives Debian's /usr/bin/chromium (Playwright cannot download browsers here);
`make test-slow` installs the package when it is missing.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from broker_helpers import World

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def test_mailed_link_reveals_once_in_a_browser(e2e: Any, world: World) -> None:
    from playwright.sync_api import sync_playwright

    _, _, secret, _, _, code = world.third_party_token()
    link = f"{e2e.broker_url}/reveal#{code}"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            seen_urls: list[str] = []
            page.on("request", lambda request: seen_urls.append(request.url))

            page.goto(link)
            # The code leaves the address bar (and so the history) before anything is clicked.
            page.wait_for_function("() => window.location.hash === ''", timeout=5000)
            assert "#" not in page.url and code not in page.url
            assert page.locator("#result").is_hidden()
            page.click("#reveal-button")
            page.wait_for_selector("#result", state="visible", timeout=10000)
            assert page.text_content("#r-secret") == secret
            assert page.text_content("#r-name") == "ISP portal"
            assert code not in page.url

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
            # The code never went to the server in a URL (the fragment is browser-only).
            assert not any(code in url for url in seen_urls)
        finally:
            browser.close()


def test_a_pasted_link_reveals_and_a_closed_tasks_code_shows_nothing(e2e: Any, world: World) -> None:
    from playwright.sync_api import sync_playwright

    _, _, secret, _, _, code = world.third_party_token()
    client_id, credential_id, closed_secret, task_id, sub = world.ready()
    contact = f"isp-{uuid.uuid4().hex[:8]}@fibre.example.net"
    approval_id = world.request_approval(
        task_id, credential_ids=[credential_id], categories=["credentials"], contact_email=contact
    )
    world.decide_approval(approval_id, client_id, "approved")
    assert world.release(sub, task_id, credential_id, approval_id=approval_id).status_code == 201
    closed_code = world.mailed_token(contact)
    world.transition(task_id, "done", world.tech(sub))

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{e2e.broker_url}/reveal")
            # The whole link pasted from the mail: the page keeps only what follows "#".
            page.fill("#code", f"{e2e.broker_url}/reveal#{code}")
            page.click("#paste-form button[type=submit]")
            page.wait_for_selector("#result", state="visible", timeout=10000)
            assert page.text_content("#r-secret") == secret
            assert page.input_value("#code") == ""

            page.goto(f"{e2e.broker_url}/reveal#{closed_code}")
            page.wait_for_function("() => window.location.hash === ''", timeout=5000)
            page.click("#reveal-button")
            page.wait_for_selector("#error", state="visible", timeout=10000)
            assert "withdrawn" in (page.text_content("#error") or "")
            assert closed_secret not in page.content()
        finally:
            browser.close()
    assert len(world.mails_to(contact)) == 1
