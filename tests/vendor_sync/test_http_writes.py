"""mspkit.http writes with respx: bodies, retries only when safe, the vendor's own rate-limit signal, redirects."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx

from mspkit.http import (
    RateLimited,
    RedirectRefused,
    RetryPolicy,
    VendorConflict,
    VendorHTTP,
    VendorResponseError,
    VendorTransientError,
)

API = "https://api.vendor.example"
ELSEWHERE = "https://evil.example"
KEY = "write-test-key-7f3a"


def make_http(**kwargs: Any) -> VendorHTTP:
    """The kit with retries that never sleep, so each test counts exactly the calls made."""
    options: dict[str, Any] = {
        "allowed_hosts": [API],
        "retry": RetryPolicy(max_attempts=3, base_s=0, cap_s=0),
        "sleep": lambda _s: None,
    }
    return VendorHTTP("test", **{**options, **kwargs})


@respx.mock
def test_post_sends_a_json_body_and_returns_the_parsed_answer() -> None:
    route = respx.post(f"{API}/domains").respond(201, json={"id": "d1"})
    with make_http() as http:
        answer = http.send_json("POST", f"{API}/domains", json_body={"domain": "ex.com", "hosts": ["a"]})
    assert answer is not None and answer.status == 201 and answer.data == {"id": "d1"}
    sent = route.calls.last.request
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.content) == {"domain": "ex.com", "hosts": ["a"]}
    assert sent.headers["accept"] == "application/json"


@respx.mock
def test_delete_with_no_content_answers_none() -> None:
    respx.delete(f"{API}/domains/ex.com").respond(204)
    with make_http() as http:
        assert http.send_json("DELETE", f"{API}/domains/ex.com") is None


def test_send_refuses_a_read_method() -> None:
    with make_http() as http, pytest.raises(ValueError, match="not GET"):
        http.send("GET", f"{API}/x")


@respx.mock
def test_put_is_idempotent_so_a_transient_error_is_retried() -> None:
    route = respx.put(f"{API}/records/1")
    route.side_effect = [httpx.Response(502), httpx.Response(200, json={"ok": True})]
    with make_http() as http:
        answer = http.send_json("PUT", f"{API}/records/1", json_body={"content": "1.2.3.4"})
    assert answer is not None and answer.data == {"ok": True}
    assert route.call_count == 2


@respx.mock
def test_post_without_an_idempotency_key_is_not_retried_after_a_server_error() -> None:
    # The vendor may have created the object before failing: a retry could create it twice.
    route = respx.post(f"{API}/domains").respond(502)
    with make_http() as http, pytest.raises(VendorTransientError) as info:
        http.send("POST", f"{API}/domains", json_body={"domain": "ex.com"})
    assert info.value.status == 502
    assert route.call_count == 1


@respx.mock
def test_post_with_a_key_the_vendor_dedupes_on_is_retried_with_the_same_key() -> None:
    route = respx.post(f"{API}/domains")
    route.side_effect = [httpx.Response(500), httpx.Response(201, json={"id": "d1"})]
    with make_http(idempotency_header="Idempotency-Key") as http:
        http.send("POST", f"{API}/domains", json_body={"domain": "ex.com"}, idempotency_key="job-1:step-2")
    assert route.call_count == 2
    assert [call.request.headers["idempotency-key"] for call in route.calls] == ["job-1:step-2"] * 2


@respx.mock
def test_a_key_is_not_sent_to_a_vendor_without_idempotency_support_and_gives_no_retry() -> None:
    route = respx.post(f"{API}/domains").respond(500)
    with make_http() as http, pytest.raises(VendorTransientError):
        http.send("POST", f"{API}/domains", json_body={}, idempotency_key="job-1")
    assert route.call_count == 1
    assert "idempotency-key" not in route.calls.last.request.headers


@respx.mock
def test_post_refused_for_the_rate_limit_is_retried_since_nothing_was_done() -> None:
    route = respx.post(f"{API}/domains")
    route.side_effect = [httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(201, json={})]
    with make_http() as http:
        http.send("POST", f"{API}/domains", json_body={"domain": "ex.com"})
    assert route.call_count == 2


@respx.mock
def test_a_vendor_that_says_slow_down_with_503_is_rate_limited_with_its_retry_after() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    route = respx.post(f"{API}/domains").respond(503, headers={"Retry-After": when})
    with make_http(rate_limit_statuses=[503]) as http, pytest.raises(RateLimited) as info:
        http.send("POST", f"{API}/domains", json_body={})
    # 120 s is past the policy's in-process wait, so it is handed back to the caller after one call.
    assert route.call_count == 1
    assert info.value.retry_after is not None and 100 < info.value.retry_after <= 120
    assert not info.value.local


@respx.mock
def test_503_without_the_vendor_saying_so_is_a_plain_transient_error() -> None:
    respx.post(f"{API}/domains").respond(503, headers={"Retry-After": "5"})
    with make_http() as http, pytest.raises(VendorTransientError) as info:
        http.send("POST", f"{API}/domains", json_body={})
    assert not isinstance(info.value, RateLimited)


@respx.mock
def test_409_is_a_conflict_with_the_vendor_body_kept_out_of_the_message() -> None:
    body = {"errors": [f"domain owned by another customer; key {KEY}"]}
    respx.post(f"{API}/domains").respond(409, json=body)
    with make_http() as http, pytest.raises(VendorConflict) as info:
        http.send("POST", f"{API}/domains", json_body={})
    assert info.value.status == 409
    assert info.value.body is not None and json.loads(info.value.body) == body
    assert KEY not in str(info.value) and KEY not in repr(info.value)


@respx.mock
def test_307_replays_the_method_and_body_on_the_same_origin() -> None:
    respx.post(f"{API}/v1/domains").respond(307, headers={"Location": f"{API}/v2/domains"})
    moved = respx.post(f"{API}/v2/domains").respond(201, json={"id": "d1"})
    with make_http() as http:
        http.send("POST", f"{API}/v1/domains", json_body={"domain": "ex.com"}, headers={"X-API-Key": KEY})
    sent = moved.calls.last.request
    assert json.loads(sent.content) == {"domain": "ex.com"}
    assert sent.headers["x-api-key"] == KEY


@pytest.mark.parametrize("status", [301, 302, 303])
@respx.mock
def test_a_write_is_never_turned_into_a_get_by_a_redirect(status: int) -> None:
    respx.post(f"{API}/domains").respond(status, headers={"Location": f"{API}/elsewhere"})
    followed = respx.route(path="/elsewhere")
    with make_http() as http, pytest.raises(RedirectRefused, match="not replayed as a GET"):
        http.send("POST", f"{API}/domains", json_body={})
    assert followed.call_count == 0


@respx.mock
def test_a_write_redirected_off_the_allowlist_is_refused_without_a_call() -> None:
    respx.put(f"{API}/records/1").respond(308, headers={"Location": f"{ELSEWHERE}/steal"})
    evil = respx.route(host="evil.example")
    with make_http() as http, pytest.raises(RedirectRefused):
        http.send("PUT", f"{API}/records/1", json_body={"content": "x"}, headers={"Authorization": f"Bearer {KEY}"})
    assert evil.call_count == 0


@respx.mock
def test_an_oversized_answer_to_a_write_is_refused() -> None:
    respx.post(f"{API}/domains").respond(200, content=b"[" + b"0," * (3 * 1024 * 1024) + b"0]")
    with make_http() as http, pytest.raises(VendorResponseError):
        http.send_json("POST", f"{API}/domains", json_body={})


@respx.mock
def test_html_with_200_to_a_write_is_refused() -> None:
    respx.post(f"{API}/domains").respond(200, html="<html>maintenance</html>")
    with make_http() as http, pytest.raises(VendorResponseError, match="expected JSON"):
        http.send_json("POST", f"{API}/domains", json_body={})
