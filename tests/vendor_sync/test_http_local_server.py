"""mspkit.http redirects against real local servers that record what they received (plain http and TLS)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mspkit.http import InsecureRedirect, RedirectRefused, VendorTransientError

sys.path.insert(0, str(Path(__file__).parent))
from test_http_servers import (
    API_KEY,
    CREDENTIALS,
    RecordingServer,
    Reply,
    fake_resolver,
    make_http,
    make_tls,
    serve,
)

__all__ = ["serve"]  # a fixture, used by name
Serve = Callable[..., RecordingServer]


def redirect(server: RecordingServer, location: str) -> None:
    server.replies["/x"] = Reply(302, headers={"Location": location}, body=b"")


def assert_got_no_credentials(server: RecordingServer) -> None:
    assert server.requests, "the redirect was not followed"
    for received in server.requests:
        for name in CREDENTIALS:
            assert name.lower() not in received.headers, name
        assert not any(API_KEY in value for value in received.headers.values())


def same_port_on_another_host(serve: Serve) -> tuple[RecordingServer, RecordingServer]:
    """Two servers that differ by host only: 127.0.0.1:P and 127.0.0.2:P."""
    for _ in range(20):
        first = serve("127.0.0.1")
        try:
            return first, serve("127.0.0.2", first.port)
        except OSError:
            continue  # P is taken on 127.0.0.2; try another one.
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")


def test_redirect_to_another_host_never_carries_credentials(serve: Serve) -> None:
    first, other = same_port_on_another_host(serve)
    redirect(first, f"{other.origin()}/y")
    other.replies["/y"] = Reply()
    with make_http([first.origin(), other.origin()]) as http:
        assert http.get_json(f"{first.origin()}/x", headers=CREDENTIALS).data == {"ok": True}
    assert first.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert [r.path for r in other.requests] == ["/y"]
    assert_got_no_credentials(other)


def test_redirect_to_another_port_is_refused_unless_listed_and_then_gets_no_credentials(serve: Serve) -> None:
    first, other = serve(), serve()
    redirect(first, f"{other.origin()}/y")
    other.replies["/y"] = Reply()
    with make_http([first.origin()]) as http, pytest.raises(RedirectRefused) as info:
        http.get_json(f"{first.origin()}/x", headers=CREDENTIALS)
    assert str(info.value) == f"redirect refused: loopback origin {other.origin()} is not allowlisted"
    assert other.connections == 0
    with make_http([first.origin(), other.origin()]) as http:
        http.get_json(f"{first.origin()}/x", headers=CREDENTIALS)
    assert_got_no_credentials(other)


def test_https_to_http_redirect_is_refused_before_the_http_server_is_contacted(serve: Serve, tmp_path: Path) -> None:
    tls = make_tls(tmp_path, ["secure.vendor.test"])
    secure, plain = serve(tls=tls.server), serve()
    redirect(secure, f"{plain.origin()}/y")
    origin = secure.origin("secure.vendor.test")
    allowed = [origin, secure.origin(), plain.origin()]
    resolver = fake_resolver({"secure.vendor.test": ["127.0.0.1"]})
    with make_http(allowed, resolver=resolver, ssl_context=tls.client) as http:
        with pytest.raises(InsecureRedirect) as info:
            http.get_json(f"{origin}/x", headers=CREDENTIALS)
    assert str(info.value) == f"redirect refused: {origin}/x redirected from https to http: {plain.origin()}/y"
    assert secure.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert plain.connections == 0


def test_tls_is_checked_against_the_name_although_the_socket_goes_to_the_checked_address(
    serve: Serve, tmp_path: Path
) -> None:
    tls = make_tls(tmp_path, ["secure.vendor.test"])
    server = serve(tls=tls.server)
    server.replies["/x"] = Reply()
    good, wrong = server.origin("secure.vendor.test"), server.origin("wrong.vendor.test")
    resolver = fake_resolver({"secure.vendor.test": ["127.0.0.1"], "wrong.vendor.test": ["127.0.0.1"]})
    with make_http([good, wrong, server.origin()], resolver=resolver, ssl_context=tls.client) as http:
        assert http.get_json(f"{good}/x").data == {"ok": True}
        with pytest.raises(VendorTransientError, match=r"transport error \(ConnectError\)"):
            http.get_json(f"{wrong}/x", headers=CREDENTIALS)
    # Only the request to the certificate's name got through the handshake.
    assert [r.headers["host"] for r in server.requests] == [f"secure.vendor.test:{server.port}"]
