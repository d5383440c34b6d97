"""What the full-stack tests share: the stack's handle, `mspctl` runs, polling, and where screenshots go."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

REPO = Path(__file__).resolve().parents[2]
# The README's pictures are refreshed only on purpose: `MSP_SCREENSHOTS_DIR=docs/screenshots`.
SCREENSHOTS_ENV = "MSP_SCREENSHOTS_DIR"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 800}
T = TypeVar("T")


@dataclass(frozen=True)
class Person:
    """One line of `mspctl people`: `SUB ROLE CLIENT_ID` (`-` for staff)."""

    sub: str
    role: str
    client_id: str | None


@dataclass
class FullStack:
    """A running full dev stack: its dir, its `NAME URL` lines and its demo people."""

    root: Path
    urls: dict[str, str]
    people: list[Person] = field(default_factory=list)

    @property
    def portal(self) -> str:
        return self.urls["portal"].rstrip("/")

    def mspctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run_mspctl(self.root, *args, timeout=timeout)

    def token(self, role: str, sub: str, client_id: str | None = None) -> str:
        """A JWT from `mspctl token` (the dev issuer's key), as the README tells people to get one."""
        minted = self.mspctl("token", "--role", role, "--sub", sub, *(("--client-id", client_id) if client_id else ()))
        assert minted.returncode == 0, minted.stderr
        return minted.stdout.strip()

    def person_token(self, person: Person) -> str:
        """A token for one of the demo people (a client's people carry their client)."""
        return self.token(person.role, person.sub, person.client_id)

    def client_people(self, client: str) -> tuple[Person, Person]:
        """A demo client's office user and owner (`<slug>-user`, `<slug>-admin`), from `mspctl people`."""
        from mspctl.people import client_slug

        if not self.people:
            listed = self.mspctl("people")
            assert listed.returncode == 0, listed.stderr
            self.people = parse_people(listed.stdout)
        by_sub = {p.sub: p for p in self.people}
        slug = client_slug(client)
        user, owner = by_sub[f"{slug}-user"], by_sub[f"{slug}-admin"]
        assert user.client_id and user.client_id == owner.client_id, (user, owner)
        return user, owner

    def env(self) -> dict[str, str]:
        """The stack's dotenv (`<devstack>/env`): database URL and the like."""
        from mspctl.envfile import read_env

        return read_env(self.root / "env")

    def api(self, name: str, token: str) -> httpx.Client:
        """An HTTP client for one of the stack's APIs, with a bearer token."""
        return httpx.Client(base_url=self.urls[name], headers={"Authorization": f"Bearer {token}"}, timeout=30)


def run_mspctl(root: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`mspctl ARGS` against the devstack dir `root`, with no MSP_/VAULT_/BAO_ variable of this session."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MSP_", "VAULT_", "BAO_"))}
    env["MSP_DEVSTACK_DIR"] = str(root)
    return subprocess.run(
        [sys.executable, "-m", "mspctl", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def parse_urls(stdout: str) -> dict[str, str]:
    """The `NAME URL` lines `mspctl up` prints on stdout."""
    urls: dict[str, str] = {}
    for line in stdout.splitlines():
        found = re.fullmatch(r"(\S+) ((?:https?|postgresql|redis|file)://\S+)", line.strip())
        if found:
            urls[found.group(1)] = found.group(2)
    return urls


def parse_people(stdout: str) -> list[Person]:
    """The `SUB ROLE CLIENT_ID` lines of `mspctl people`."""
    people = []
    for line in stdout.splitlines():
        sub, role, client_id = line.split()
        people.append(Person(sub, role, None if client_id == "-" else client_id))
    return people


def screenshots_dir(default: Path) -> Path:
    """`MSP_SCREENSHOTS_DIR` (relative to the repo when relative) if set, else `default` (a pytest tmp dir)."""
    chosen = os.environ.get(SCREENSHOTS_ENV, "").strip()
    if not chosen:
        return default
    path = Path(chosen)
    return path if path.is_absolute() else REPO / path


@contextlib.contextmanager
def fresh_stack(prefix: str) -> Iterator[FullStack]:
    """`mspctl up --detach --ports auto` in a fresh devstack dir; `mspctl down` and the dir removed after."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        # timeout= bounds the wait only; a first `up` creates the cluster, migrates and seeds the demo.
        started = run_mspctl(root, "up", "--detach", "--ports", "auto", timeout=240)
        assert started.returncode == 0, started.stderr[-3000:]
        yield FullStack(root, parse_urls(started.stdout))
    finally:
        run_mspctl(root, "down", timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def poll(what: str, probe: Callable[[], T], done: Callable[[T], bool], timeout: float = 30.0) -> T:
    """Call `probe` until `done` holds for its value; fail naming `what` and the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}; last seen: {value!r}")
        time.sleep(0.25)


class Shots:
    """Saves 1280x800 PNGs into one directory; `top` scrolls an element to the top, `mask` blanks elements."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __call__(self, page: Any, name: str, *, top: Any = None, mask: list[Any] | None = None) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        if top is not None:
            top.evaluate("e => e.scrollIntoView({block: 'start'})")
        else:
            page.evaluate("window.scrollTo(0, 0)")
        path = self.directory / name
        page.screenshot(path=str(path), animations="disabled", caret="hide", mask=mask or [], mask_color="#5b6770")
        return path


class Browser:
    """One person's browser (a fresh context) on the portal, with the console errors it saw."""

    def __init__(self, chromium: Any, portal: str, shots: Shots) -> None:
        self.portal = portal
        self.shots = shots
        self.context = chromium.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.console_errors: list[str] = []
        self.page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)

    def sign_in(self, sub: str, path: str = "/", shot: str | None = None) -> Any:
        """Open `path`, be sent to the issuer's page, press `Sign in as <sub>`, land back on `path`."""
        page = self.page
        page.goto(self.portal + path)
        button = page.get_by_role("button", name=f"Sign in as {sub}", exact=True)
        button.wait_for()
        if shot:
            self.shots(page, shot)
        button.click()
        page.wait_for_url(re.compile(re.escape(self.portal + path) + r"(\?.*)?$"))
        return page

    def csp_violations(self) -> list[str]:
        return [m for m in self.console_errors if "Content Security Policy" in m]

    def close(self) -> None:
        self.context.close()


def isp_setup_request() -> dict[str, Any]:
    """An ISP setup request for the demo's ISP (Example Fiber), as a client's office files it."""
    return {
        "type": "isp_account_setup",
        "isp_name": "Example Fiber",
        "isp_contact_email": "provisioning@fiber.example",
        "service_address": {
            "line1": "42 Harbour Road",
            "city": "Springfield",
            "region": "IL",
            "postal_code": "62701",
            "country": "US",
        },
        "service_tier": "business-500",
        "site_contact": {"name": "Reception Desk", "email": "desk@acme-dental.example", "phone": "+1 555 0100"},
    }
