"""Browser tests' fixtures: one real full dev stack for the module, and Debian's Chromium driven by Playwright.

The stack is exactly what `make up` starts (`mspctl up --detach`, every part, the demo seeded), in a
temporary devstack dir on free ports (`--ports auto`), with a clean environment: the test session's
own MSP_* settings (its private infra stack) must not leak into it. `mspctl down` stops it at the end.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# --import-mode=importlib puts no test dir on sys.path; the test modules import browser_helpers.
sys.path.insert(0, str(Path(__file__).parent))

from browser_helpers import CHROMIUM, CHROMIUM_ARGS, FullStack, fresh_stack, parse_people


@pytest.fixture(scope="module")
def full_stack() -> Iterator[FullStack]:
    """`mspctl up --detach --ports auto` in a fresh devstack dir, with its demo people; removed after."""
    with fresh_stack("msp-browser-") as stack:
        assert "portal" in stack.urls, stack.urls
        listed = stack.mspctl("people")
        assert listed.returncode == 0, listed.stderr
        stack.people = parse_people(listed.stdout)
        yield stack


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium (Playwright cannot download browsers here), headless."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
