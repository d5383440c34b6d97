"""RDAP bootstrap (RFC 9224): validation, longest-label match, trailing slashes and caching."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import respx

from mspkit.http import RetryPolicy, VendorHTTP, VendorTransientError
from vendor_sync.adapters.rdap import (
    BootstrapCache,
    DnsBootstrap,
    RdapBootstrapError,
    RdapClient,
    RdapNoService,
)
from vendor_sync.adapters.rdap_bootstrap import cache_ttl

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rdap"
BOOTSTRAP_URL = "https://data.iana.org/rdap/dns.json"


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _client(cache: BootstrapCache | None = None) -> RdapClient:
    http = VendorHTTP(
        "rdap",
        allowed_hosts=["data.iana.org:443", "rdap.nic.cz:443", "rdap.nic.ar:443", "rdap.registro.br:443"],
        retry=RetryPolicy(max_attempts=1),
    )
    return RdapClient(http, bootstrap_url=BOOTSTRAP_URL, cache=cache)


@respx.mock
def test_valid_bootstrap_and_trailing_slash() -> None:
    """Replays bootstrap_dns.json (ar, cz, br; the .br base URL ends with a slash, the others do not)."""
    respx.get(BOOTSTRAP_URL).respond(
        200, content=_fixture("bootstrap_dns.json"), headers={"Content-Type": "application/json"}
    )
    client = _client()
    assert client.domain_url("example.cz") == "https://rdap.nic.cz/domain/example.cz"
    assert client.domain_url("nic.ar") == "https://rdap.nic.ar/domain/nic.ar"
    assert client.domain_url("registro.br") == "https://rdap.registro.br/domain/registro.br"
    assert client.domain_url("a.b.EXAMPLE.cz") == "https://rdap.nic.cz/domain/a.b.EXAMPLE.cz"
    with pytest.raises(RdapNoService):
        client.domain_url("example.de")


def test_longest_label_match_wins() -> None:
    """A synthetic bootstrap with nested entries: "co.example" must beat "example"."""
    bootstrap = DnsBootstrap.parse(
        {
            "version": "1.0",
            "services": [
                [["example"], ["https://tld.example/rdap"]],
                [["co.example"], ["http://plain.co.example/", "https://co.example/rdap/"]],
            ],
        }
    )
    assert bootstrap.base_urls("shop.co.example") == ("https://co.example/rdap/", "http://plain.co.example/")
    assert bootstrap.base_urls("shop.example") == ("https://tld.example/rdap/",)
    assert bootstrap.base_urls("co.example") == ("https://co.example/rdap/", "http://plain.co.example/")


@respx.mock
def test_malformed_bootstrap_is_a_clear_error() -> None:
    """Replays bootstrap_malformed_dns_bad_services.json (an empty [] service entry)."""
    respx.get(BOOTSTRAP_URL).respond(
        200, content=_fixture("bootstrap_malformed_dns_bad_services.json"), headers={"Content-Type": "application/json"}
    )
    with pytest.raises(RdapBootstrapError, match=r"services\[3\]"):
        _client().lookup_domain("example.cz")


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"services": []},
        {"services": "com"},
        {"services": [[["com"], []]]},
        {"services": [[["com"], ["ftp://x.example/"]]]},
        {"services": [[["com"], ["https://x.example/?q=1"]]]},
        {"services": [[["bad label!"], ["https://x.example/"]]]},
        {"services": [[[7], ["https://x.example/"]]]},
        {"services": [[["com"], ["https://x.example/"], ["extra"]]]},
        {"version": 1, "services": [[["com"], ["https://x.example/"]]]},
    ],
)
def test_malformed_shapes_are_rejected(data: object) -> None:
    with pytest.raises(RdapBootstrapError):
        DnsBootstrap.parse(data)


@respx.mock
def test_404_html_bootstrap_is_a_clear_error() -> None:
    """Replays bootstrap_http_error_404.html served with HTTP 404, then the same page with a 200."""
    html = _fixture("bootstrap_http_error_404.html")
    route = respx.get(BOOTSTRAP_URL)
    route.side_effect = [
        httpx.Response(404, content=html, headers={"Content-Type": "text/html"}),
        httpx.Response(200, content=html, headers={"Content-Type": "text/html"}),
    ]
    with pytest.raises(RdapBootstrapError, match="404"):
        _client().lookup_domain("example.cz")
    with pytest.raises(RdapBootstrapError, match="text/html"):
        _client().lookup_domain("example.cz")


@respx.mock
def test_unreachable_bootstrap_stays_transient() -> None:
    respx.get(BOOTSTRAP_URL).respond(503)
    with pytest.raises(VendorTransientError):
        _client().bootstrap()


@respx.mock
def test_bootstrap_is_cached_per_cache_control() -> None:
    """Replays bootstrap_dns.json with max-age=60, checked against a fake clock."""
    now = [1000.0]
    route = respx.get(BOOTSTRAP_URL).respond(
        200,
        content=_fixture("bootstrap_dns.json"),
        headers={"Content-Type": "application/json", "Cache-Control": "public, max-age=60"},
    )
    client = _client(BootstrapCache(clock=lambda: now[0]))
    client.bootstrap()
    client.bootstrap()
    assert route.call_count == 1
    now[0] += 61
    client.bootstrap()
    assert route.call_count == 2


def test_cache_ttl_rules() -> None:
    assert cache_ttl(None) == 86_400
    assert cache_ttl("public") == 86_400
    assert cache_ttl("max-age=3600, public") == 3600
    assert cache_ttl("no-store") == 0
    assert cache_ttl("no-cache, max-age=10") == 0
    assert cache_ttl("max-age=999999999") == 7 * 86_400
    assert cache_ttl("max-age=abc") == 86_400


def test_bootstrap_fixture_is_valid_json() -> None:
    assert json.loads(_fixture("bootstrap_dns.json"))["version"] == "1.0"
