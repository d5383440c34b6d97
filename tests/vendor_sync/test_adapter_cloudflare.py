"""Cloudflare adapter: recorded and documented responses replayed with respx, the error envelope, the kit's guards."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
import respx

from mspkit.http import (
    RateLimited,
    RedirectRefused,
    RetryPolicy,
    VendorAuthError,
    VendorConflict,
    VendorError,
    VendorHTTP,
    VendorNotFound,
    VendorPermanentError,
    VendorResponseError,
    VendorTransientError,
)
from vendor_sync.adapters.cloudflare import CloudflareAdapter
from vendor_sync.adapters.cloudflare_records import record_body
from vendor_sync.adapters.dns_types import DnsHostAdapter, DnsRecord, DnsWriter, Zone

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cloudflare"
BASE = "https://api.cloudflare.com/client/v4"
ZONES = f"{BASE}/zones"
RECORDS = f"{BASE}/zones/1234/dns_records"
TOKEN = "cf-canary-TOKEN-7f3a9c2e1b"
JSON = {"Content-Type": "application/json"}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def adapter(**kwargs: object) -> CloudflareAdapter:
    return CloudflareAdapter(TOKEN, retry=RetryPolicy(max_attempts=1), **kwargs)  # type: ignore[arg-type]


def envelope(code: int, message: str) -> bytes:
    """A hand-written error envelope in the shape of zone_GET_404.json (not a recorded response)."""
    body = {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None}
    return json.dumps(body).encode()


def serve(url: str, status: int, body: bytes, headers: dict[str, str] | None = None) -> respx.Route:
    return respx.get(url).respond(status, content=body, headers={**JSON, **(headers or {})})


def test_adapter_satisfies_the_dns_host_protocol() -> None:
    cf = adapter()
    assert isinstance(cf, DnsHostAdapter)
    assert isinstance(cf, DnsWriter)
    assert cf.vendor == "cloudflare"
    assert cf.capabilities == frozenset({"zones.read", "records.read", "records.write"})


@respx.mock
def test_list_zones() -> None:
    """Replays zones_GET.json: one zone, page 1 of 1, with the token sent as a Bearer header."""
    route = serve(ZONES, 200, fixture("zones_GET.json"))
    zones = adapter().list_zones()
    assert zones == [
        Zone(
            id="1234",
            name="example.com",
            status="active",
            name_servers=("anna.ns.cloudflare.com", "john.ns.cloudflare.com"),
        )
    ]
    assert route.call_count == 1
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Accept"] == "application/json"
    assert dict(request.url.params) == {"page": "1", "per_page": "50"}


@respx.mock
def test_list_records_over_two_pages() -> None:
    """Replays records_GET_1/2.json: all 11 records listed (despite result_info.count 5 and 4), in order."""
    page1 = respx.get(RECORDS, params={"page": "1"}).respond(200, content=fixture("records_GET_1.json"), headers=JSON)
    page2 = respx.get(RECORDS, params={"page": "2"}).respond(200, content=fixture("records_GET_2.json"), headers=JSON)
    records = adapter().list_records("1234")
    assert page1.call_count == 1 and page2.call_count == 1
    assert page2.calls.last.request.url.params["per_page"] == "100"
    assert [(r.type, r.name, r.content, r.ttl, r.priority) for r in records] == [
        ("A", "example.com", "192.30.252.153", 1, None),
        ("A", "example.com", "192.30.252.154", 1, None),
        ("CNAME", "email.example.com", "mailgun.org", 1, None),
        ("CNAME", "foo.example.com", "foo.com", 1, None),
        ("CNAME", "yesyes", "verify.bing.com", 1, None),
        ("MX", "foo.bar", "aspmx3.googlemail.com", 1, 30),
        ("MX", "example.com", "mxa.mailgun.org", 1, 1),
        ("MX", "example.com", "mxb.mailgun.org", 1, 2),
        ("TXT", "example.com", "v=spf1 include:mailgun.org ~all", 1, None),
        ("TXT", "pic._domainkey.example.com", "k=rsa; ...", 1, None),
        # CAA from its `data` object in presentation form, not the tab-joined `content`.
        ("CAA", "test1", '0 issue "test.example.com"', 1, None),
    ]
    assert records[0].id == "364797364" and records[-1].id == "r8"
    assert records[6] == DnsRecord(type="MX", name="example.com", content="mxa.mailgun.org", ttl=1, priority=1)


@respx.mock
def test_pagination_stops_on_an_empty_page() -> None:
    """total_pages says 3 but page 2 is empty: stop there, never ask for page 3."""
    page1 = json.loads(fixture("records_GET_1.json"))
    page1["result_info"]["total_pages"] = 3
    empty = {"result": [], "result_info": {"page": 2, "total_pages": 3}, "success": True, "errors": []}
    respx.get(RECORDS, params={"page": "1"}).respond(200, json=page1)
    respx.get(RECORDS, params={"page": "2"}).respond(200, json=empty)
    third = respx.get(RECORDS, params={"page": "3"}).respond(200, json=empty)
    records = adapter().list_records("1234")
    assert len(records) == 6
    assert third.call_count == 0


@respx.mock
def test_pagination_refuses_more_pages_than_the_cap() -> None:
    """A listing longer than max_pages is refused, not returned in part (a partial list would plan deletes)."""
    page1 = json.loads(fixture("records_GET_1.json"))
    page1["result_info"]["total_pages"] = 10_000
    route = respx.get(RECORDS).respond(200, json=page1)
    with pytest.raises(VendorResponseError, match="10000 pages, over the cap of 5"):
        adapter(max_pages=5).list_records("1234")
    assert route.call_count == 1


@respx.mock
def test_pagination_refuses_a_server_that_ignores_the_page() -> None:
    route = respx.get(RECORDS).respond(200, content=fixture("records_GET_1.json"), headers=JSON)
    with pytest.raises(VendorResponseError, match=r"asked .* page 2, got page 1"):
        adapter().list_records("1234")
    assert route.call_count == 2


@respx.mock
def test_404_envelope_maps_to_not_found_with_code_1001() -> None:
    """Replays zone_GET_404.json: VendorNotFound carrying Cloudflare's code and words."""
    serve(RECORDS, 404, fixture("zone_GET_404.json"))
    with pytest.raises(VendorNotFound) as caught:
        adapter().list_records("1234")
    assert caught.value.status == 404
    assert caught.value.vendor == "cloudflare"
    assert str(caught.value) == (
        "cloudflare: HTTP 404 from https://api.cloudflare.com/client/v4/zones/1234/dns_records"
        " (Cloudflare error 1001: Invalid zone identifier)"
    )


@respx.mock
def test_400_envelope_with_error_chain() -> None:
    """Replays error_with_error_chain.json (leading space and all): permanent, with the chain's words."""
    serve(ZONES, 400, fixture("error_with_error_chain.json"))
    with pytest.raises(VendorPermanentError) as caught:
        adapter().list_zones()
    assert type(caught.value) is VendorPermanentError
    assert caught.value.status == 400
    assert str(caught.value).endswith(
        "(Cloudflare error 1004: DNS Validation Error [9011: Length of content is invalid])"
    )


@pytest.mark.parametrize(
    ("status", "code", "message", "error"),
    [
        (401, 10000, "Authentication error", VendorAuthError),
        (403, 9109, "Unauthorized to access requested resource", VendorAuthError),
        (409, 81057, "Record already exists.", VendorConflict),
    ],
)
@respx.mock
def test_4xx_envelopes_map_once(status: int, code: int, message: str, error: type[VendorError]) -> None:
    serve(ZONES, status, envelope(code, message))
    with pytest.raises(error) as caught:
        adapter().list_zones()
    assert type(caught.value) is error
    assert caught.value.status == status
    assert str(caught.value).endswith(f"(Cloudflare error {code}: {message})")


@respx.mock
def test_429_retry_after_in_seconds() -> None:
    serve(ZONES, 429, envelope(971, "Please wait and consider throttling your request speed"), {"Retry-After": "42"})
    with pytest.raises(RateLimited) as caught:
        adapter().list_zones()
    assert caught.value.status == 429
    assert caught.value.retry_after == 42.0
    assert caught.value.local is False
    assert "Cloudflare error 971: Please wait" in str(caught.value)


@respx.mock
def test_429_retry_after_as_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    serve(ZONES, 429, envelope(971, "Please wait"), {"Retry-After": when})
    with pytest.raises(RateLimited) as caught:
        adapter().list_zones()
    assert caught.value.retry_after is not None
    assert 110 <= caught.value.retry_after <= 120


@respx.mock
def test_429_is_retried_by_the_kit_after_retry_after() -> None:
    """With retries on, the kit waits Retry-After and the second answer wins."""
    waits: list[float] = []
    respx.get(ZONES).mock(
        side_effect=[
            httpx.Response(429, content=envelope(971, "Please wait"), headers={**JSON, "Retry-After": "3"}),
            httpx.Response(200, content=fixture("zones_GET.json"), headers=JSON),
        ]
    )
    http = VendorHTTP("cloudflare", allowed_hosts=[BASE.rsplit("/client", 1)[0]], sleep=waits.append)
    zones = CloudflareAdapter(TOKEN, http=http).list_zones()
    assert [z.id for z in zones] == ["1234"]
    assert len(waits) == 1 and waits[0] >= 3.0


@respx.mock
def test_200_with_success_false_is_an_error() -> None:
    serve(ZONES, 200, envelope(1001, "Invalid zone identifier"))
    with pytest.raises(VendorPermanentError, match=r"success false \(Cloudflare error 1001: Invalid zone identifier\)"):
        adapter().list_zones()


@respx.mock
def test_malformed_json() -> None:
    serve(ZONES, 200, b'{"result": [{"id": "1234",')
    with pytest.raises(VendorResponseError, match="not valid JSON"):
        adapter().list_zones()


@respx.mock
def test_html_with_200_is_refused() -> None:
    respx.get(ZONES).respond(200, content=b"<html><body>Sign in</body></html>", headers={"Content-Type": "text/html"})
    with pytest.raises(VendorResponseError, match=r"expected JSON .* got text/html"):
        adapter().list_zones()


@respx.mock
def test_non_json_error_body_keeps_the_kit_error() -> None:
    respx.get(ZONES).respond(403, content=b"<html>denied</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(VendorAuthError) as caught:
        adapter().list_zones()
    assert str(caught.value) == "cloudflare: HTTP 403 from https://api.cloudflare.com/client/v4/zones"


@respx.mock
def test_redirect_to_a_host_not_allowlisted_is_refused() -> None:
    respx.get(ZONES).respond(302, headers={"Location": "https://evil.example/steal"})
    evil = respx.get("https://evil.example/steal").respond(200, json={"success": True, "result": []})
    with pytest.raises(RedirectRefused):
        adapter().list_zones()
    assert evil.call_count == 0


@respx.mock
def test_redirect_to_another_allowlisted_origin_drops_the_token() -> None:
    """Even where a redirect may go, the Authorization header stays on the first origin."""
    respx.get(ZONES).respond(307, headers={"Location": "https://mirror.example/zones?page=1&per_page=50"})
    mirror = respx.get("https://mirror.example/zones").respond(200, content=fixture("zones_GET.json"), headers=JSON)
    http = VendorHTTP(
        "cloudflare",
        allowed_hosts=["https://api.cloudflare.com", "https://mirror.example"],
        retry=RetryPolicy(max_attempts=1),
    )
    assert [z.name for z in CloudflareAdapter(TOKEN, http=http).list_zones()] == ["example.com"]
    assert mirror.call_count == 1
    assert "authorization" not in mirror.calls.last.request.headers


@respx.mock
def test_six_megabyte_body_is_refused() -> None:
    big = b'{"success": true, "result": [], "pad": "' + b"x" * (6 * 1024 * 1024) + b'"}'
    serve(ZONES, 200, big)
    with pytest.raises(VendorResponseError, match="over the cap"):
        adapter().list_zones()


@respx.mock
def test_six_megabyte_body_without_length_is_refused() -> None:
    chunks = [b'{"success": true, "result": [], "pad": "'] + [b"x" * 65536] * 96
    respx.get(ZONES).mock(return_value=httpx.Response(200, headers=JSON, stream=httpx.ByteStream(b"".join(chunks))))
    with pytest.raises(VendorResponseError, match="is over 5242880 bytes"):
        adapter().list_zones()


def test_refuses_a_bad_token_or_zone_id_without_echoing_it() -> None:
    with pytest.raises(ValueError) as caught:
        CloudflareAdapter("abc def\nInjected: 1")
    assert "abc" not in str(caught.value)
    with pytest.raises(ValueError, match="https"):
        CloudflareAdapter(TOKEN, base_url="http://api.cloudflare.com/client/v4")
    with pytest.raises(ValueError, match="zone id"):
        adapter().list_records("../accounts")


@respx.mock
def test_token_never_in_errors_repr_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Every failure path: the token is in no error's str/repr/args, no log line, nor the adapter's repr."""
    caplog.set_level(logging.DEBUG)
    # Importing vendor_sync.api (other test modules do) runs configure_logging, which quiets httpx to WARNING.
    caplog.set_level(logging.DEBUG, logger="httpx")
    echo = envelope(10000, f"Authentication error for token {TOKEN}")
    answers = [
        httpx.Response(401, content=echo, headers=JSON),
        httpx.Response(403, content=envelope(9109, "Unauthorized"), headers=JSON),
        httpx.Response(404, content=fixture("zone_GET_404.json"), headers=JSON),
        httpx.Response(409, content=envelope(81057, "Record already exists."), headers=JSON),
        httpx.Response(429, content=envelope(971, "Please wait"), headers={**JSON, "Retry-After": "1"}),
        httpx.Response(500, content=echo, headers=JSON),
        httpx.Response(200, content=b"{not json", headers=JSON),
        httpx.Response(200, content=b"<html></html>", headers={"Content-Type": "text/html"}),
        httpx.Response(200, content=echo, headers=JSON),
        httpx.Response(302, headers={"Location": f"https://evil.example/?t={TOKEN}"}),
    ]
    respx.get(ZONES).mock(side_effect=answers)
    cf = adapter()
    errors: list[BaseException] = []
    for _ in answers:
        with pytest.raises(VendorError) as caught:
            cf.list_zones()
        errors.append(caught.value)
    assert respx.calls.call_count == len(answers)
    assert [type(e).__name__ for e in errors] == [
        "VendorAuthError",
        "VendorAuthError",
        "VendorNotFound",
        "VendorConflict",
        "RateLimited",
        "VendorTransientError",
        "VendorResponseError",
        "VendorResponseError",
        "VendorPermanentError",
        "RedirectRefused",
    ]
    # A server echoing the token gets it redacted from the vendor's words.
    assert "Authentication error for token [redacted]" in str(errors[0])
    for error in errors:
        for text in (str(error), repr(error), repr(error.args), repr(vars(error))):
            assert TOKEN not in text
    assert caplog.records, "httpx's request log lines should have been captured"
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(cf)


# --- Writes. Answers from tests/fixtures/cloudflare/dns_records_*.json: built from Cloudflare's API
# reference (success bodies) or copied from public issue threads (error bodies); see PROVENANCE.md.

RID = "023e105f4ecef8ad9ca31a8372d0c353"
RECORD = f"{RECORDS}/{RID}"
MX = DnsRecord(type="MX", name="example.com", content="mx1.example.net", ttl=3600, priority=10)
A = DnsRecord(type="A", name="example.com", content="198.51.100.4", ttl=3600, proxied=True)


def writer(attempts: int = 1) -> CloudflareAdapter:
    """The adapter with `attempts` tries per call and retries that never wait."""
    return CloudflareAdapter(TOKEN, retry=RetryPolicy(max_attempts=attempts, base_s=0, cap_s=0))


@respx.mock
def test_create_record_posts_the_record_and_returns_it_with_its_id() -> None:
    """Replays dns_records_POST.json (documented shape): one POST with exactly the record's fields."""
    route = respx.post(RECORDS).respond(200, content=fixture("dns_records_POST.json"), headers=JSON)
    created = adapter().create_record("1234", MX)
    assert created == MX
    assert created.id == "372e67954025e0ba6aaa6d586b9e0b59" and created.proxied is False
    assert route.call_count == 1
    sent = route.calls.last.request
    assert sent.method == "POST" and sent.url.path == "/client/v4/zones/1234/dns_records"
    assert json.loads(sent.content) == {
        "type": "MX",
        "name": "example.com",
        "content": "mx1.example.net",
        "ttl": 3600,
        "priority": 10,
    }
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["Content-Type"] == "application/json"


@respx.mock
def test_update_record_puts_the_whole_record_with_its_proxy_flag() -> None:
    """Replays dns_records_PUT.json: PUT to the record's own path; the answer is parsed, proxied included."""
    route = respx.put(RECORD).respond(200, content=fixture("dns_records_PUT.json"), headers=JSON)
    updated = adapter().update_record("1234", RID, A)
    assert (updated.type, updated.content, updated.ttl, updated.id, updated.proxied) == (
        "A",
        "198.51.100.4",
        3600,
        RID,
        True,
    )
    sent = route.calls.last.request
    assert sent.method == "PUT"
    body = {"type": "A", "name": "example.com", "content": "198.51.100.4", "ttl": 3600, "proxied": True}
    assert json.loads(sent.content) == body


@respx.mock
def test_update_refuses_an_answer_for_another_record() -> None:
    answer = json.loads(fixture("dns_records_PUT.json"))
    answer["result"]["id"] = "ffffffffffffffffffffffffffffffff"
    respx.put(RECORD).respond(200, json=answer)
    with pytest.raises(VendorResponseError, match="another record"):
        adapter().update_record("1234", RID, A)


@respx.mock
def test_delete_record_sends_a_bodyless_delete_and_checks_the_id() -> None:
    """Replays dns_records_DELETE.json, the documented `{"result": {"id"}}` without the rest of the envelope."""
    route = respx.delete(RECORD).respond(200, content=fixture("dns_records_DELETE.json"), headers=JSON)
    assert adapter().delete_record("1234", RID) is None
    sent = route.calls.last.request
    assert sent.method == "DELETE" and sent.content == b""
    respx.delete(RECORD).respond(200, json={"result": {"id": "ffffffffffffffffffffffffffffffff"}})
    with pytest.raises(VendorResponseError, match="did not confirm"):
        adapter().delete_record("1234", RID)
    respx.delete(RECORD).respond(200, json={"success": True, "result": None})
    with pytest.raises(VendorResponseError, match="did not confirm"):
        adapter().delete_record("1234", RID)


@respx.mock
def test_delete_of_a_record_already_gone_counts_as_done_but_a_missing_zone_does_not() -> None:
    """A DELETE retried after a 502 finds the record gone (81044): done. Zone 1001 is still an error."""
    route = respx.delete(RECORD)
    route.side_effect = [
        httpx.Response(502),
        httpx.Response(404, content=fixture("dns_records_DELETE_81044.json"), headers=JSON),
    ]
    assert writer(attempts=2).delete_record("1234", RID) is None
    assert route.call_count == 2
    respx.delete(RECORD).respond(404, content=fixture("zone_GET_404.json"), headers=JSON)
    with pytest.raises(VendorNotFound, match="1001: Invalid zone identifier"):
        adapter().delete_record("1234", RID)


@pytest.mark.parametrize("status", [400, 409])
@respx.mock
def test_record_already_exists_is_a_conflict_with_cloudflares_words(status: int) -> None:
    """Replays dns_records_POST_81057.json: Cloudflare sends it with a 400, which is a conflict all the same."""
    respx.post(RECORDS).respond(status, content=fixture("dns_records_POST_81057.json"), headers=JSON)
    with pytest.raises(VendorConflict) as caught:
        adapter().create_record("1234", MX)
    assert caught.value.status == status and caught.value.vendor_code == "81057"
    assert str(caught.value).endswith("(Cloudflare error 81057: Record already exists.)")
    assert caught.value.body is None


@respx.mock
def test_a_conflict_inside_a_200_envelope_is_a_conflict_too() -> None:
    respx.post(RECORDS).respond(200, content=fixture("dns_records_POST_81057.json"), headers=JSON)
    with pytest.raises(VendorConflict, match="success false") as caught:
        adapter().create_record("1234", MX)
    assert caught.value.vendor_code == "81057"


@respx.mock
def test_validation_errors_are_permanent_not_conflicts() -> None:
    """dns_records_PUT_9005.json and error_with_error_chain.json (1004 > 9011): permanent, with the codes."""
    respx.put(RECORD).respond(400, content=fixture("dns_records_PUT_9005.json"), headers=JSON)
    with pytest.raises(VendorPermanentError) as caught:
        adapter().update_record("1234", RID, A)
    assert type(caught.value) is VendorPermanentError and caught.value.vendor_code == "9005"
    assert "Content for A record must be a valid IPv4 address." in str(caught.value)
    respx.post(RECORDS).respond(400, content=fixture("error_with_error_chain.json"), headers=JSON)
    with pytest.raises(VendorPermanentError) as caught:
        adapter().create_record("1234", MX)
    assert type(caught.value) is VendorPermanentError and caught.value.vendor_code == "1004"
    assert str(caught.value).endswith("[9011: Length of content is invalid])")


WRITES = [
    ("POST", RECORDS, lambda cf: cf.create_record("1234", MX)),
    ("PUT", RECORD, lambda cf: cf.update_record("1234", RID, A)),
    ("DELETE", RECORD, lambda cf: cf.delete_record("1234", RID)),
]


@pytest.mark.parametrize(("method", "url", "call"), WRITES)
@pytest.mark.parametrize(
    ("status", "code", "error"),
    [(401, 10000, VendorAuthError), (403, 9109, VendorAuthError), (404, 7003, VendorNotFound)],
)
@respx.mock
def test_write_errors_map_once_and_are_not_retried(
    method: str, url: str, call: object, status: int, code: int, error: type[VendorError]
) -> None:
    route = respx.route(method=method, url=url).respond(status, content=envelope(code, "refused"), headers=JSON)
    with pytest.raises(error) as caught:
        call(writer(attempts=3))  # type: ignore[operator]
    assert type(caught.value) is error and caught.value.status == status
    assert caught.value.vendor_code == str(code)
    assert str(caught.value).endswith(f"(Cloudflare error {code}: refused)")
    assert route.call_count == 1


@respx.mock
def test_write_429_hands_back_retry_after_in_seconds_or_as_a_date() -> None:
    respx.post(RECORDS).respond(429, content=envelope(971, "Please wait"), headers={**JSON, "Retry-After": "42"})
    with pytest.raises(RateLimited) as caught:
        adapter().create_record("1234", MX)
    assert caught.value.retry_after == 42.0 and "Cloudflare error 971" in str(caught.value)
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    route = respx.put(RECORD).respond(429, content=envelope(971, "Please wait"), headers={**JSON, "Retry-After": when})
    with pytest.raises(RateLimited) as caught:
        writer(attempts=3).update_record("1234", RID, A)
    # Past the policy's in-process wait: handed back after one call, for the job to reschedule.
    assert route.call_count == 1
    assert caught.value.retry_after is not None and 110 <= caught.value.retry_after <= 120


@respx.mock
def test_post_is_retried_only_when_refused_for_the_rate_limit() -> None:
    route = respx.post(RECORDS)
    route.side_effect = [
        httpx.Response(429, content=envelope(971, "Please wait"), headers={**JSON, "Retry-After": "0"}),
        httpx.Response(200, content=fixture("dns_records_POST.json"), headers=JSON),
    ]
    assert writer(attempts=3).create_record("1234", MX).id == "372e67954025e0ba6aaa6d586b9e0b59"
    assert route.call_count == 2


@respx.mock
def test_post_is_not_retried_after_a_server_error_while_put_and_delete_are() -> None:
    """The POST may have created the record before failing; PUT and DELETE are idempotent."""
    post = respx.post(RECORDS).respond(500, content=envelope(10001, "Internal error"), headers=JSON)
    with pytest.raises(VendorTransientError) as caught:
        writer(attempts=3).create_record("1234", MX)
    assert caught.value.status == 500
    assert post.call_count == 1
    put = respx.put(RECORD)
    put.side_effect = [httpx.Response(500), httpx.Response(200, content=fixture("dns_records_PUT.json"), headers=JSON)]
    assert writer(attempts=3).update_record("1234", RID, A).id == RID
    assert put.call_count == 2
    delete = respx.delete(RECORD)
    delete.side_effect = [httpx.Response(503), httpx.Response(200, content=fixture("dns_records_DELETE.json"))]
    writer(attempts=3).delete_record("1234", RID)
    assert delete.call_count == 2


@respx.mock
def test_hostile_answers_to_writes_are_refused() -> None:
    respx.post(RECORDS).respond(200, content=b'{"success": true, "result": {"id": ', headers=JSON)
    with pytest.raises(VendorResponseError, match="not valid JSON"):
        adapter().create_record("1234", MX)
    respx.put(RECORD).respond(200, content=b"<html>Sign in</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(VendorResponseError, match=r"expected JSON .* got text/html"):
        adapter().update_record("1234", RID, A)
    respx.post(RECORDS).respond(200, content=b"", headers=JSON)
    with pytest.raises(VendorResponseError, match="empty body"):
        adapter().create_record("1234", MX)
    respx.post(RECORDS).respond(200, json={"success": True, "result": {"type": "MX", "name": "x", "ttl": 1}})
    with pytest.raises(VendorResponseError, match="without content"):
        adapter().create_record("1234", MX)
    big = b'{"success": true, "result": {}, "pad": "' + b"x" * (6 * 1024 * 1024) + b'"}'
    route = respx.delete(RECORD).respond(200, content=big, headers=JSON)
    with pytest.raises(VendorResponseError, match="over the cap"):
        writer(attempts=3).delete_record("1234", RID)
    assert route.call_count == 1


@pytest.mark.parametrize(("method", "url", "call"), WRITES)
@pytest.mark.parametrize("status", [302, 307, 308])
@respx.mock
def test_a_write_redirected_off_the_allowlist_is_refused_without_a_call(
    method: str, url: str, call: object, status: int
) -> None:
    respx.route(method=method, url=url).respond(status, headers={"Location": "https://evil.example/steal"})
    evil = respx.route(host="evil.example").respond(200, content=fixture("dns_records_POST.json"), headers=JSON)
    with pytest.raises(RedirectRefused):
        call(adapter())  # type: ignore[operator]
    assert evil.call_count == 0


@pytest.mark.parametrize(
    ("zone", "rid", "words"),
    [
        ("../accounts", RID, "zone id"),
        ("", RID, "zone id"),
        ("z" * 65, RID, "zone id"),
        ("1234", "a/b", "record id"),
        ("1234", "x?y=1", "record id"),
        ("1234", "%2e%2e", "record id"),
    ],
)
@respx.mock
def test_bad_ids_never_reach_a_path(zone: str, rid: str, words: str) -> None:
    anything = respx.route()
    cf = adapter()
    with pytest.raises(ValueError, match=words):
        cf.update_record(zone, rid, A)
    with pytest.raises(ValueError, match=words):
        cf.delete_record(zone, rid)
    if words == "zone id":
        with pytest.raises(ValueError, match=words):
            cf.create_record(zone, MX)
    assert anything.call_count == 0


@pytest.mark.parametrize(
    ("record", "words"),
    [
        (DnsRecord(type="MX", name="example.com", content="mx.example.net", ttl=1), "MX .* priority"),
        (DnsRecord(type="MX", name="example.com", content="mx.example.net", ttl=1, priority=-1), "MX .* priority"),
        (DnsRecord(type="MX", name="example.com", content="mx.example.net", ttl=1, priority=True), "MX .* priority"),
        (
            DnsRecord(type="MX", name="example.com", content="mx.example.net", ttl=1, priority=1, proxied=True),
            "proxied",
        ),
        (DnsRecord(type="A", name="example.com", content="not-an-ip", ttl=1, proxied=False), "IP address"),
        (DnsRecord(type="AAAA", name="example.com", content="192.0.2.1", ttl=1, proxied=False), "IPv6"),
        (DnsRecord(type="A", name="example.com", content="192.0.2.1", ttl=5, proxied=False), "ttl"),
        (DnsRecord(type="A", name="a/b.example.com", content="192.0.2.1", ttl=1, proxied=False), "name"),
        (DnsRecord(type="A", name="a.*.example.com", content="192.0.2.1", ttl=1, proxied=False), "name"),
        (DnsRecord(type="CNAME", name="www.example.com", content="bad host/x", ttl=1, proxied=False), "host name"),
        (DnsRecord(type="SRV", name="_sip._tcp.example.com", content="1 5060 sip.example.com", ttl=1), "type"),
        (DnsRecord(type="TXT", name="example.com", content="a\r\nX-Injected: 1", ttl=1), "control"),
        (DnsRecord(type="TXT", name="example.com", content="", ttl=1), "content"),
        (DnsRecord(type="TXT", name="example.com", content="v=spf1 -all", ttl=1, priority=5), "priority"),
        (DnsRecord(type="CAA", name="example.com", content="0 issue letsencrypt.org", ttl=1), "CAA"),
    ],
)
@respx.mock
def test_bad_records_are_refused_before_any_call(record: DnsRecord, words: str) -> None:
    anything = respx.route()
    cf = adapter()
    with pytest.raises(ValueError, match=words):
        cf.create_record("1234", record)
    with pytest.raises(ValueError, match=words):
        cf.update_record("1234", RID, record)
    assert anything.call_count == 0


@respx.mock
def test_overwriting_an_a_record_needs_its_proxy_flag() -> None:
    """PUT replaces every field: without `proxied` it would silently turn Cloudflare's proxy off."""
    anything = respx.route()
    bare = DnsRecord(type="A", name="example.com", content="198.51.100.4", ttl=1)
    with pytest.raises(ValueError, match="proxied"):
        adapter().update_record("1234", RID, bare)
    assert anything.call_count == 0


@pytest.mark.parametrize(
    ("record", "body"),
    [
        (
            DnsRecord(type="caa", name="Example.COM.", content='0 issue "ca.example.net; x=\\"y\\""', ttl=1),
            {
                "type": "CAA",
                "name": "example.com",
                "ttl": 1,
                "data": {"flags": 0, "tag": "issue", "value": 'ca.example.net; x="y"'},
            },
        ),
        (
            DnsRecord(type="TXT", name="_dmarc.example.com", content='"v=DMARC1; p=none"', ttl=300),
            {"type": "TXT", "name": "_dmarc.example.com", "ttl": 300, "content": '"v=DMARC1; p=none"'},
        ),
        (
            DnsRecord(type="CNAME", name="*.example.com", content="Target.Example.NET.", ttl=1, proxied=False),
            {"type": "CNAME", "name": "*.example.com", "ttl": 1, "content": "target.example.net", "proxied": False},
        ),
        (
            DnsRecord(type="AAAA", name="@", content="2001:DB8:0:0::1", ttl=60),
            {"type": "AAAA", "name": "@", "ttl": 60, "content": "2001:db8::1"},
        ),
    ],
)
def test_record_body_shapes(record: DnsRecord, body: dict[str, object]) -> None:
    """CAA goes as `data` (read back by list_records in the same presentation form); names and hosts normalised."""
    assert record_body(record) == body


@respx.mock
def test_token_never_in_write_errors_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Write failures, retried ones included, with a server echoing the token: it shows nowhere."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    echo = envelope(81057, f"Record already exists for token {TOKEN}")
    answers = [
        httpx.Response(400, content=echo, headers=JSON),
        httpx.Response(401, content=echo, headers=JSON),
        httpx.Response(409, content=echo, headers=JSON),
        httpx.Response(429, content=echo, headers={**JSON, "Retry-After": "0"}),
        httpx.Response(500, content=echo, headers=JSON),
        httpx.Response(200, content=echo, headers=JSON),
        httpx.Response(200, content=b"{not json", headers=JSON),
        httpx.Response(307, headers={"Location": f"https://evil.example/?t={TOKEN}"}),
    ]
    respx.post(RECORDS).mock(side_effect=answers)
    put = respx.put(RECORD).mock(side_effect=[httpx.Response(502, content=echo, headers=JSON)] * 2)
    cf = writer(attempts=2)
    errors: list[BaseException] = []
    for _ in range(7):
        with pytest.raises(VendorError) as caught:
            cf.create_record("1234", MX)
        errors.append(caught.value)
    with pytest.raises(VendorError) as caught:
        cf.update_record("1234", RID, A)
    errors.append(caught.value)
    assert respx.calls.call_count == len(answers) + 2 and put.call_count == 2
    assert "Record already exists for token [redacted]" in str(errors[0])
    assert isinstance(errors[0], VendorConflict)
    for error in errors:
        for text in (str(error), repr(error), repr(error.args), repr(vars(error))):
            assert TOKEN not in text
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert TOKEN not in caplog.text
