"""Drive the portal's real sign-in (portal → dev issuer's page → callback) with httpx, as a browser would.

httpx, unlike a browser on loopback, never sends a `Secure` cookie over plain http. A response hook
therefore re-sets each cookie the portal sets without the Secure flag on the client's jar (and drops
it again when the portal expires it), after recording the attributes the portal sent in
`client.set_cookies` so tests can assert them.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

SESSION_COOKIE = "__Host-msp_session"
LOGIN_COOKIE = "__Host-msp_login"


class _Forms(HTMLParser):
    """The issuer sign-in page's forms: action, hidden fields and the button's name/value/label."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._button: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}, "label": ""})
        elif tag == "input" and self.forms:
            self.forms[-1]["fields"][a.get("name", "")] = a.get("value", "")
        elif tag == "button" and self.forms:
            self._button = a
            self.forms[-1]["button"] = (a.get("name", ""), a.get("value", ""))

    def handle_data(self, data: str) -> None:
        if self._button is not None and self.forms:
            self.forms[-1]["label"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._button = None


def _cookie_hook(client: httpx.Client):
    def hook(response: httpx.Response) -> None:
        host = urlsplit(str(response.request.url)).hostname or "127.0.0.1"
        for header in response.headers.get_list("set-cookie"):
            parsed: SimpleCookie = SimpleCookie()
            parsed.load(header)
            for name, morsel in parsed.items():
                client.set_cookies[name] = {"raw": header, "value": morsel.value, **dict(morsel.items())}
                client.cookies.delete(name)
                if morsel["max-age"] not in ("", None) and int(morsel["max-age"]) <= 0:
                    continue
                client.cookies.set(name, morsel.value, domain=host, path="/")

    return hook


def new_browser(portal_url: str) -> httpx.Client:
    """An httpx client playing a browser at the portal (cookies set by the portal are sent back over http)."""
    client = httpx.Client(base_url=portal_url, timeout=30)
    client.set_cookies = {}  # type: ignore[attr-defined]
    client.event_hooks["response"].append(_cookie_hook(client))
    return client


def assert_host_cookie(attrs: dict[str, Any]) -> None:
    """The attributes every portal cookie must carry (`__Host-` prefix rules, HttpOnly, SameSite=Lax)."""
    raw = attrs["raw"].lower()
    assert "secure" in raw and "httponly" in raw, attrs["raw"]
    assert "samesite=lax" in raw, attrs["raw"]
    assert attrs["path"] == "/", attrs["raw"]
    assert "domain=" not in raw, attrs["raw"]


def start_sign_in(client: httpx.Client, *, return_to: str | None = "/", prompt: str | None = None) -> str:
    """GET /login; returns the issuer's /authorize URL it redirects to."""
    params = {k: v for k, v in {"return_to": return_to, "prompt": prompt}.items() if v is not None}
    started = client.get("/login", params=params)
    assert started.status_code == 303, started.text
    assert_host_cookie(client.set_cookies[LOGIN_COOKIE])  # type: ignore[attr-defined]
    return started.headers["location"]


def press_sign_in_as(authorize_url: str, sub: str) -> str:
    """At the issuer: open the sign-in page, press `Sign in as <sub>`; returns the callback URL it redirects to."""
    with httpx.Client(timeout=30) as idp:
        page = idp.get(authorize_url)
        assert page.status_code == 200, page.text
        parser = _Forms()
        parser.feed(page.text)
        form = next((f for f in parser.forms if f["label"].strip() == f"Sign in as {sub}"), None)
        assert form is not None, f"no 'Sign in as {sub}' button on the issuer's page"
        name, value = form["button"]
        pressed = idp.post(urljoin(authorize_url, form["action"]), data={**form["fields"], name: value})
        assert pressed.status_code == 303, pressed.text
        return pressed.headers["location"]


def finish_sign_in(client: httpx.Client, callback_url: str) -> httpx.Response:
    """Deliver the issuer's redirect to the portal's callback (in this browser)."""
    return client.get(callback_url)


def sign_in(
    portal_url: str,
    sub: str,
    *,
    return_to: str = "/",
    prompt: str | None = None,
    client: httpx.Client | None = None,
) -> httpx.Client:
    """Sign in as a demo person through the real flow; returns a client holding the session cookie."""
    client = client or new_browser(portal_url)
    callback = press_sign_in_as(start_sign_in(client, return_to=return_to, prompt=prompt), sub)
    done = finish_sign_in(client, callback)
    assert done.status_code == 303, done.text
    client.landed_on = done.headers["location"]  # type: ignore[attr-defined]
    assert_host_cookie(client.set_cookies[SESSION_COOKIE])  # type: ignore[attr-defined]
    return client


def session_id(client: httpx.Client) -> str:
    """The session cookie's value this client holds."""
    return str(client.set_cookies[SESSION_COOKIE]["value"])  # type: ignore[attr-defined]


def callback_query(callback_url: str) -> dict[str, str]:
    """The query of a callback URL (code, state, iss)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(callback_url).query).items()}


def ensure_people(devstack_dir: Path) -> dict[str, Any]:
    """The demo people of the test stack, recording the clients' people (fresh client ids) if not yet seeded."""
    from mspctl import people
    from mspctl.demo import CLIENTS
    from mspctl.layout import Layout

    layout = Layout(devstack_dir)
    path = layout.root / people.PEOPLE_FILE
    if not path.exists() or not json.loads(path.read_text()).get("people"):
        people.record(layout, {spec["name"]: str(uuid.uuid4()) for spec in CLIENTS})
    return {p.sub: p for p in people.load(layout)}


def add_person(devstack_dir: Path, role: str, *, client_id: Any = None, sub: str | None = None) -> str:
    """Offer one more person on the issuer's sign-in page (it reads people.json on every request); their sub."""
    from mspctl.files import read_json, write_json_private
    from mspctl.people import PEOPLE_FILE

    ensure_people(devstack_dir)
    sub = sub or f"{role.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
    path = devstack_dir / PEOPLE_FILE
    data = read_json(path)
    person = {
        "sub": sub,
        "role": role,
        "client_id": None if client_id is None else str(client_id),
        "name": f"Person {sub}",
        "email": f"{sub}@{'msp' if client_id is None else 'client'}.example",
    }
    data.setdefault("people", []).append(person)
    write_json_private(path, data)
    return sub


def add_technician(world: Any, devstack_dir: Path, client_ids: list[Any]) -> str:
    """A fresh technician: a staff row at intake for `client_ids`, and a person on the issuer's page; their sub."""
    sub = f"tech-{uuid.uuid4().hex[:8]}"
    staff = world.intake.post(
        "/v1/staff",
        headers=world.admin,
        json={
            "sub": sub,
            "display_name": f"Person {sub}",
            "email": f"{sub}@msp.example",
            "role": "technician",
            "client_ids": [str(c) for c in client_ids],
        },
    )
    assert staff.status_code == 201, staff.text
    return add_person(devstack_dir, "technician", sub=sub)


def hidden(html: str, name: str) -> str:
    """The value of a page's hidden field `name` (the CSRF token, an Idempotency-Key)."""
    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert found, f"no hidden {name} on the page"
    return found.group(1)


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    return hidden(html, "csrf_token")


def submit(
    browser: httpx.Client, page_path: str, fields: dict[str, Any], *, action: str | None = None
) -> httpx.Response:
    """Open the page at `page_path` and send its form (to `action`, else back to the page) with its CSRF token."""
    page = browser.get(page_path)
    assert page.status_code == 200, page.text
    return browser.post(action or page_path, data={"csrf_token": csrf_of(page.text), **fields})


@contextmanager
def open_world(
    urls: dict[str, str], auth: Callable[..., dict[str, str]], devstack_dir: Path, *, timeout: float = 30
) -> Iterator[Any]:
    """A broker `World` (tests/secrets_broker) on the served APIs (`broker`, `intake`, `vendor_sync`), closed after."""
    from broker_helpers import World  # on sys.path once a test module has added tests/secrets_broker

    broker = httpx.Client(base_url=urls["broker"], timeout=timeout)
    world = World(broker, urls["intake"], auth, devstack_dir, vendor_sync_url=urls["vendor_sync"])
    try:
        yield world
    finally:
        broker.close()
        world.intake.close()
        if world.registry is not None:
            world.registry.close()
