"""mspkit.http VendorHTTP with respx: retries, caps, redirects and hostile bodies."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import respx

from mspkit.http import (
    FetchLimits,
    HostNotAllowed,
    RateLimited,
    RedirectRefused,
    RetryPolicy,
    VendorHTTP,
    VendorNotFound,
    VendorPermanentError,
    VendorResponseError,
    VendorTransientError,
)

API = "https://api.vendor.example"
VAULT = "http://127.0.0.1:8200"


class Sleeps(list[float]):
    """Records requested sleeps instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_http(sleeps: Sleeps | None = None, **kwargs: object) -> VendorHTTP:
    options: dict[str, object] = {
        "allowed_hosts": ["api.vendor.example:443", "mirror.vendor.example:443", "127.0.0.1:8200"],
        "denied_hosts": [VAULT],
        "retry": RetryPolicy(max_attempts=4, base_s=0.01, cap_s=0.05, max_wait_s=30),
        "sleep": sleeps if sleeps is not None else Sleeps(),
    }
    options.update(kwargs)
    return VendorHTTP("test", **options)  # type: ignore[arg-type]


@respx.mock
def test_get_json_ok_sends_user_agent_and_no_redirect_following() -> None:
    route = respx.get(f"{API}/x").respond(200, json={"ok": True})
    with make_http() as http:
        response = http.get_json(f"{API}/x?key=1")
    assert response.data == {"ok": True}
    assert response.url == f"{API}/x"  # redacted: no query string
    request = route.calls.last.request
    assert request.headers["user-agent"].startswith("mspkit-vendor-http/")
    assert request.headers["accept"] == "application/json"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
@respx.mock
def test_no_retry_on_4xx(status: int) -> None:
    route = respx.get(f"{API}/x").respond(status, json={"error": "no"})
    sleeps = Sleeps()
    with make_http(sleeps) as http, pytest.raises(VendorPermanentError) as info:
        http.get_json(f"{API}/x")
    assert info.value.status == status
    assert route.call_count == 1
    assert sleeps == []


@respx.mock
def test_retry_on_503_then_success() -> None:
    route = respx.get(f"{API}/x")
    route.side_effect = [httpx.Response(503), httpx.Response(503), httpx.Response(200, json=[1])]
    sleeps = Sleeps()
    with make_http(sleeps) as http:
        assert http.get_json(f"{API}/x").data == [1]
    assert route.call_count == 3
    assert len(sleeps) == 2 and all(0 <= s <= 0.05 for s in sleeps)


@respx.mock
def test_retries_are_capped_then_the_transient_error_is_raised() -> None:
    route = respx.get(f"{API}/x").respond(502)
    with make_http() as http, pytest.raises(VendorTransientError) as info:
        http.get_json(f"{API}/x")
    assert info.value.status == 502
    assert route.call_count == 4


@respx.mock
def test_timeouts_and_connection_errors_are_retried() -> None:
    route = respx.get(f"{API}/x")
    route.side_effect = [httpx.ConnectTimeout("slow"), httpx.ConnectError("refused"), httpx.Response(200, json={})]
    with make_http() as http:
        assert http.get_json(f"{API}/x").data == {}
    assert route.call_count == 3


@respx.mock
def test_429_sleeps_at_least_retry_after() -> None:
    route = respx.get(f"{API}/x")
    route.side_effect = [httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200, json={})]
    sleeps = Sleeps()
    with make_http(sleeps) as http:
        http.get_json(f"{API}/x")
    assert sleeps and sleeps[0] >= 2.0
    assert route.call_count == 2


@respx.mock
def test_long_retry_after_is_raised_to_the_caller() -> None:
    route = respx.get(f"{API}/x").respond(429, headers={"Retry-After": "120"})
    sleeps = Sleeps()
    with make_http(sleeps) as http, pytest.raises(RateLimited) as info:
        http.get_json(f"{API}/x")
    assert info.value.retry_after == 120.0
    assert route.call_count == 1
    assert sleeps == []


class CountingStream(httpx.SyncByteStream):
    """A 6 MB body served in 64 KiB chunks, counting how much was pulled."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.served = 0

    def __iter__(self) -> Iterator[bytes]:
        while self.served < self.total:
            chunk = b"a" * min(65536, self.total - self.served)
            self.served += len(chunk)
            yield chunk


@respx.mock
def test_body_over_5mb_is_refused_before_reading_it_all() -> None:
    stream = CountingStream(6 * 1024 * 1024)
    route = respx.get(f"{API}/big").mock(
        return_value=httpx.Response(200, headers={"Content-Type": "application/json"}, stream=stream)
    )
    with make_http() as http, pytest.raises(VendorResponseError, match="over"):
        http.get_json(f"{API}/big")
    assert route.call_count == 1  # hostile bodies are not retried
    assert 5 * 1024 * 1024 < stream.served < 6 * 1024 * 1024


@respx.mock
def test_declared_content_length_over_cap_is_refused_without_reading() -> None:
    stream = CountingStream(6 * 1024 * 1024)
    respx.get(f"{API}/big").mock(
        return_value=httpx.Response(
            200, headers={"Content-Type": "application/json", "Content-Length": str(6 * 1024 * 1024)}, stream=stream
        )
    )
    with make_http() as http, pytest.raises(VendorResponseError, match="declares"):
        http.get_json(f"{API}/big")
    assert stream.served == 0


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html; charset=utf-8", b"<html><body>Maintenance</body></html>"),
        ("application/json", b"<html><body>Maintenance</body></html>"),
        ("application/json", b'{"truncated": '),
        ("application/json", b'{"n": NaN}'),
        ("application/json", b"[" * 100_000),
        ("application/json", b"\xff\xfe not utf-8"),
    ],
)
@respx.mock
def test_hostile_bodies_raise_response_error(content_type: str, body: bytes) -> None:
    route = respx.get(f"{API}/x").respond(200, headers={"Content-Type": content_type}, content=body)
    with make_http() as http, pytest.raises(VendorResponseError):
        http.get_json(f"{API}/x")
    assert route.call_count == 1


@pytest.mark.parametrize(
    "location",
    [
        "https://evil.example/steal",
        "http://169.254.169.254/latest/meta-data/",
        f"{VAULT}/v1/sys/health",
        "http://[fe80::1]/",
        "http://127.0.0.1:6379/",
    ],
)
@respx.mock
def test_redirects_to_forbidden_hosts_are_refused_without_contacting_them(location: str) -> None:
    respx.get(f"{API}/x").respond(302, headers={"Location": location})
    target = respx.route(url__startswith=location.split("/", 3)[0] + "//" + location.split("/", 3)[2])
    with make_http() as http, pytest.raises(RedirectRefused):
        http.get_json(f"{API}/x")
    assert target.call_count == 0


@respx.mock
def test_allowlisted_redirect_is_followed() -> None:
    respx.get(f"{API}/x").respond(301, headers={"Location": "https://mirror.vendor.example/y"})
    mirror = respx.get("https://mirror.vendor.example/y").respond(200, json={"moved": True})
    with make_http() as http:
        response = http.get_json(f"{API}/x")
    assert response.data == {"moved": True}
    assert response.url == "https://mirror.vendor.example/y"
    assert mirror.call_count == 1


@respx.mock
def test_relative_redirect_and_redirect_limit() -> None:
    respx.get(f"{API}/a").respond(302, headers={"Location": "/b"})
    respx.get(f"{API}/b").respond(200, json={"b": 1})
    respx.get(f"{API}/loop").respond(302, headers={"Location": "/loop"})
    with make_http() as http:
        assert http.get_json(f"{API}/a").data == {"b": 1}
        with pytest.raises(RedirectRefused, match="redirects"):
            http.get_json(f"{API}/loop")


@respx.mock
def test_initial_url_must_pass_the_allowlist() -> None:
    evil = respx.get("https://evil.example/x").respond(200, json={})
    vault = respx.get(f"{VAULT}/v1/secret").respond(200, json={})
    with make_http() as http:
        with pytest.raises(HostNotAllowed):
            http.get_json("https://evil.example/x")
        with pytest.raises(HostNotAllowed):
            http.get_json(f"{VAULT}/v1/secret")
    assert evil.call_count == 0 and vault.call_count == 0


@respx.mock
def test_errors_never_carry_query_strings() -> None:
    respx.get(f"{API}/x").respond(404)
    with make_http() as http, pytest.raises(VendorNotFound) as info:
        http.get_json(f"{API}/x?api_key=CANARY123")
    assert "CANARY123" not in str(info.value)
    assert info.value.__cause__ is None


def test_deadline_fields_are_per_exchange() -> None:
    limits = FetchLimits()
    assert limits.max_bytes == 5 * 1024 * 1024
    assert limits.max_redirects == 5


@respx.mock
def test_body_with_a_false_content_encoding_is_a_response_error() -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    respx.get(f"{API}/x").mock(
        return_value=httpx.Response(200, headers=headers, stream=httpx.ByteStream(b"not gzip at all"))
    )
    with make_http() as http, pytest.raises(VendorResponseError, match="unreadable"):
        http.get_json(f"{API}/x")


@respx.mock
def test_httpx_logs_vendor_urls_without_their_query_even_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    from mspkit.http import VendorHTTP

    key = "query-key-5d1e9a"
    respx.get(f"{API}/xml.response").respond(200, json={})
    with caplog.at_level("DEBUG", logger="httpx"), VendorHTTP("test", allowed_hosts=[API]) as http:
        http.get_json(f"{API}/xml.response?ApiKey={key}&Command=x")
    logged = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    # httpx did log the request (so the filter, not silence, keeps the key out).
    assert any("api.vendor.example/xml.response" in line for line in logged), logged
    assert not any(key in line for line in logged), logged
