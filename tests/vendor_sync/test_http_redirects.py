"""mspkit.http redirects with respx: no downgrade to http, credentials never leave the first origin."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
import respx

from mspkit.http import InsecureRedirect, RedirectRefused

sys.path.insert(0, str(Path(__file__).parent))
from test_http_servers import ADAPTER_KEY_HEADER, API_KEY, CREDENTIALS, make_http

API = "https://api.vendor.example"
MIRROR = "https://mirror.vendor.example"


def assert_no_credentials(request: httpx.Request) -> None:
    for name in CREDENTIALS:
        assert name not in request.headers, name
    assert not any(API_KEY in value for value in request.headers.values())


@pytest.mark.parametrize("location", ["http://api.vendor.example/y", "http://mirror.vendor.example/y"])
@respx.mock
def test_https_to_http_redirect_is_refused_even_when_http_is_allowlisted(location: str) -> None:
    respx.get(f"{API}/x").respond(302, headers={"Location": location})
    plain = respx.route(scheme="http")
    allowed = [API, MIRROR, "http://api.vendor.example:80", "http://mirror.vendor.example:80"]
    with make_http(allowed) as http, pytest.raises(InsecureRedirect) as info:
        http.get_json(f"{API}/x", headers=CREDENTIALS)
    assert "redirected from https to http" in str(info.value)
    assert info.value.vendor == "test"
    assert plain.call_count == 0


@respx.mock
def test_redirect_to_another_host_carries_no_credentials() -> None:
    first = respx.get(f"{API}/x").respond(302, headers={"Location": f"{MIRROR}/y"})
    mirror = respx.get(f"{MIRROR}/y").respond(200, json={"moved": True})
    with make_http([API, MIRROR]) as http:
        assert http.get_json(f"{API}/x", headers=CREDENTIALS).data == {"moved": True}
    # The first origin did get them, so the absence below is the kit's doing.
    assert first.calls.last.request.headers["authorization"] == f"Bearer {API_KEY}"
    sent = mirror.calls.last.request
    assert_no_credentials(sent)
    assert sent.headers["user-agent"].startswith("mspkit-vendor-http/")


@respx.mock
def test_credentials_set_on_the_client_itself_are_stripped_too() -> None:
    respx.get(f"{API}/x").respond(302, headers={"Location": f"{MIRROR}/y"})
    mirror = respx.get(f"{MIRROR}/y").respond(200, json={})
    client = httpx.Client(headers={"X-API-Key": API_KEY}, cookies={"session": API_KEY})
    with client, make_http([API, MIRROR], client=client) as http:
        http.get_json(f"{API}/x")
    assert_no_credentials(mirror.calls.last.request)


@respx.mock
def test_same_origin_redirect_keeps_credentials() -> None:
    respx.get(f"{API}/x").respond(301, headers={"Location": "/y"})
    target = respx.get(f"{API}/y").respond(200, json={})
    with make_http([API]) as http:
        http.get_json(f"{API}/x", headers=CREDENTIALS)
    assert target.calls.last.request.headers[ADAPTER_KEY_HEADER] == API_KEY
    assert target.calls.last.request.headers["authorization"] == f"Bearer {API_KEY}"


@respx.mock
def test_credentials_stay_off_when_the_chain_comes_back_to_the_first_origin() -> None:
    respx.get(f"{API}/x").respond(302, headers={"Location": f"{MIRROR}/bounce"})
    respx.get(f"{MIRROR}/bounce").respond(302, headers={"Location": f"{API}/back"})
    back = respx.get(f"{API}/back").respond(200, json={})
    with make_http([API, MIRROR]) as http:
        http.get_json(f"{API}/x", headers=CREDENTIALS)
    assert_no_credentials(back.calls.last.request)


@respx.mock
def test_redirect_to_the_same_host_on_another_scheme_is_refused() -> None:
    plain = "http://api.vendor.example:8080"
    respx.get(f"{plain}/x").respond(302, headers={"Location": "https://api.vendor.example:8080/y"})
    target = respx.route(scheme="https")
    with make_http([plain]) as http, pytest.raises(RedirectRefused) as info:
        http.get_json(f"{plain}/x", headers=CREDENTIALS)
    assert str(info.value) == "redirect refused: origin https://api.vendor.example:8080 is not allowlisted"
    assert target.call_count == 0


@respx.mock
def test_redirect_to_the_same_host_on_another_port_is_refused_unless_listed() -> None:
    respx.get(f"{API}/x").respond(302, headers={"Location": "https://api.vendor.example:8443/y"})
    other_port = respx.get("https://api.vendor.example:8443/y").respond(200, json={"port": 8443})
    with make_http([API]) as http, pytest.raises(RedirectRefused) as info:
        http.get_json(f"{API}/x", headers=CREDENTIALS)
    assert str(info.value) == "redirect refused: origin https://api.vendor.example:8443 is not allowlisted"
    assert other_port.call_count == 0
    # Listed, it is followed; but another port is another origin, so the key stays behind.
    with make_http([API, "https://api.vendor.example:8443"]) as http:
        assert http.get_json(f"{API}/x", headers=CREDENTIALS).data == {"port": 8443}
    assert_no_credentials(other_port.calls.last.request)
