"""GoDaddy adapter: recorded and documented responses replayed with respx, GoDaddy's errors, hostile answers."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

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
    VendorNotFound,
    VendorPermanentError,
    VendorResponseError,
    VendorTransientError,
)
from vendor_sync.adapters.godaddy import (
    GoDaddyAdapter,
    GoDaddyAuthError,
    GoDaddyConflict,
    GoDaddyError,
    GoDaddyErrorBody,
    GoDaddyFieldError,
    GoDaddyNotFound,
    GoDaddyPermanentError,
    GoDaddyRateLimited,
    lifecycle,
)
from vendor_sync.adapters.registrar_types import RegistrarAdapter, RegistrarContact, RegistrarDomain, RegistrarWriter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "godaddy"
API = "https://api.godaddy.com"
LIST = f"{API}/v1/domains"
KEY = "canaryKEY7f3aZ"
SECRET = "canarySECRET91bdQ"
JSON = {"Content-Type": "application/json"}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def adapter(**options: Any) -> GoDaddyAdapter:
    options.setdefault("retry", RetryPolicy(max_attempts=1))
    return GoDaddyAdapter(KEY, SECRET, **options)


def error_body(code: str, message: str, fields: list[dict[str, str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        body["fields"] = fields
    return body


def pages(*bodies: bytes) -> Callable[[httpx.Request], httpx.Response]:
    """A respx side effect answering successive list requests with the given bodies, in order."""
    queue = list(bodies)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=queue.pop(0), headers=JSON)

    return answer


def test_adapter_satisfies_the_registrar_protocol() -> None:
    godaddy = adapter()
    assert isinstance(godaddy, RegistrarAdapter)
    assert isinstance(godaddy, RegistrarWriter)
    assert godaddy.capabilities == frozenset({"domains.read", "nameservers.write", "contacts.write", "lock.write"})
    assert godaddy.vendor == "godaddy"


@respx.mock
def test_list_replays_fixture_and_maps_values() -> None:
    """Replays v1_domains.json (a full page of 5 with limit 5), then an empty second page."""
    route = respx.get(LIST).mock(side_effect=pages(fixture("v1_domains.json"), b"[]"))
    domains = adapter(page_limit=5).list_domains()
    assert [d.name for d in domains] == [
        "aperture-platform.com",
        "dd-innovation-days.com",
        "givesourcing.com",
        "service-layer.com",
        "sourcewise.org",
    ]
    first = domains[0]
    assert first == RegistrarDomain(
        name="aperture-platform.com",
        status="ACTIVE",
        lifecycle="active",
        vendor_id="177184419",
        expires_at=utc(2016, 9, 25, 19, 29, 32),
        renew_auto=True,
        locked=True,
        privacy=False,
        nameservers=None,  # the listing does not carry them
        contacts=None,
    )
    assert all(d.expires_at is not None and d.expires_at.tzinfo is not None for d in domains)
    assert domains[3].expires_at == utc(2018, 9, 30, 18, 22)
    assert {d.status for d in domains} == {"ACTIVE"}
    requests = [call.request for call in route.calls]
    assert [dict(r.url.params) for r in requests] == [{"limit": "5"}, {"limit": "5", "marker": "sourcewise.org"}]
    assert all(r.headers["Authorization"] == f"sso-key {KEY}:{SECRET}" for r in requests)
    assert all(r.headers["Accept"] == "application/json" for r in requests)


@respx.mock
def test_pagination_across_two_pages_stops_on_a_short_page() -> None:
    """The fixture's five domains split 3 + 2 with limit 3: two requests, the second after the last name."""
    items = json.loads(fixture("v1_domains.json"))
    route = respx.get(LIST).mock(side_effect=pages(json.dumps(items[:3]).encode(), json.dumps(items[3:]).encode()))
    domains = adapter(page_limit=3).list_domains()
    assert [d.name for d in domains] == [i["domain"] for i in items]
    assert [d.vendor_id for d in domains] == [str(i["domainId"]) for i in items]
    assert route.call_count == 2
    assert route.calls[1].request.url.params["marker"] == "givesourcing.com"
    assert route.calls[1].request.url.params["limit"] == "3"


@respx.mock
def test_pagination_is_capped_and_never_truncates_silently() -> None:
    page = json.dumps([{"domain": f"d{n}.example.com", "status": "ACTIVE"} for n in range(2)]).encode()
    counter = iter(range(100))

    def full_page(request: httpx.Request) -> httpx.Response:
        n = next(counter)
        body = json.dumps([{"domain": f"p{n}-{i}.example.com", "status": "ACTIVE"} for i in range(2)])
        return httpx.Response(200, content=body.encode(), headers=JSON)

    route = respx.get(LIST).mock(side_effect=full_page)
    with pytest.raises(VendorResponseError, match="more than 3 pages"):
        adapter(page_limit=2, max_pages=3).list_domains()
    assert route.call_count == 3

    respx.get(LIST).mock(side_effect=lambda request: httpx.Response(200, content=page, headers=JSON))
    with pytest.raises(VendorResponseError, match="did not advance"):
        adapter(page_limit=2).list_domains()


@respx.mock
def test_get_domain_replays_libcloud_detail() -> None:
    """Replays v1_domains_aperture_platform_com.json: nameservers, contacts (numeric phone), no authCode."""
    route = respx.get(f"{LIST}/aperture-platform.com").respond(
        200, content=fixture("v1_domains_aperture_platform_com.json"), headers=JSON
    )
    domain = adapter().get_domain("Aperture-Platform.COM.")
    assert route.call_count == 1
    assert domain.name == "aperture-platform.com"
    assert domain.status == "ACTIVE" and domain.lifecycle == "active"
    assert domain.expires_at == utc(2016, 9, 25, 19, 29, 32)
    assert domain.created_at == utc(2014, 9, 25, 19, 29, 32)
    assert domain.renew_deadline == utc(2016, 11, 9, 19, 29, 32)
    assert domain.renew_auto is True and domain.locked is True and domain.privacy is False
    assert domain.nameservers == ("ns25.domaincontrol.com", "ns26.domaincontrol.com")
    assert domain.contacts is not None
    assert [c.role for c in domain.contacts] == ["registrant", "admin", "tech", "billing"]
    assert domain.contacts[0] == RegistrarContact(
        role="registrant",
        name_first="Alex",
        name_last="Example",
        organization="DIMENSION DATA Cloud Solutions Australia",
        email="registrant@example.com",
        phone="61.414529701",
    )
    # The transfer auth code is a secret of the domain: never mapped.
    assert "nowayamiputtingthishere" not in repr(domain)


@respx.mock
def test_get_domain_replays_lexicon_cassette_with_203() -> None:
    """Replays test_provider_authenticate.json: HTTP 203, millisecond timestamps, a trailing newline."""
    cassette = json.loads(fixture("test_provider_authenticate.json"))
    assert cassette["request"]["uri"] == f"{LIST}/fullm3tal.online"
    route = respx.get(cassette["request"]["uri"]).respond(
        cassette["status"],
        content=cassette["body"].encode(),
        headers={"Content-Type": cassette["headers"]["Content-Type"]},
    )
    domain = adapter().get_domain("fullm3tal.online")
    assert route.call_count == 1
    assert domain.name == "fullm3tal.online"
    assert domain.vendor_id == "320256437"
    assert domain.expires_at == utc(2021, 6, 13, 23, 59, 59)
    assert domain.created_at == utc(2020, 6, 13, 21, 43, 5)
    assert domain.renew_deadline == utc(2021, 7, 28, 14, 43, 2)
    assert domain.locked is True and domain.renew_auto is True and domain.privacy is False
    assert domain.nameservers == ("ns71.domaincontrol.com", "ns72.domaincontrol.com")
    assert domain.contacts is not None and {c.phone for c in domain.contacts} == {"+33.0100000000"}


@respx.mock
def test_get_domain_refuses_an_answer_for_another_domain_and_bad_names() -> None:
    respx.get(f"{LIST}/example.com").respond(200, json={"domain": "other.com", "status": "ACTIVE"})
    with pytest.raises(VendorResponseError, match="another domain"):
        adapter().get_domain("example.com")
    with pytest.raises(VendorPermanentError):
        adapter().get_domain("not a domain/../x")


@respx.mock
def test_hostile_items_are_refused_or_ignored() -> None:
    respx.get(LIST).respond(200, json={"domains": []})
    with pytest.raises(VendorResponseError, match="not a JSON array"):
        adapter().list_domains()
    respx.get(LIST).respond(200, json=[{"status": "ACTIVE"}])
    with pytest.raises(VendorResponseError, match="no valid `domain`"):
        adapter().list_domains()
    odd = {"domain": "x.com", "status": 7, "expires": "yesterday", "locked": "yes", "nameServers": ["ns1.x.com", 3]}
    respx.get(LIST).respond(200, json=[odd])
    (domain,) = adapter().list_domains()
    assert domain.status == "7" and domain.lifecycle == "other"
    assert domain.expires_at is None and domain.locked is None
    assert domain.nameservers == ("ns1.x.com",)


@pytest.mark.parametrize(
    ("status", "lifecycle_state"),
    [
        ("ACTIVE", "active"),
        ("PENDING_DNS_ACTIVE", "pending"),
        ("AWAITING_PAYMENT", "pending"),
        ("EXPIRED_REASSIGNED", "expired"),
        ("CANCELLED_REDEEMABLE", "cancelled"),
        ("TRANSFERRED_OUT", "transferred_out"),
        ("LOCKED_REGISTRAR", "other"),
    ],
)
def test_lifecycle(status: str, lifecycle_state: str) -> None:
    assert lifecycle(status) == lifecycle_state


ERRORS: list[tuple[int, dict[str, Any], type[VendorError], type[GoDaddyError]]] = [
    (401, error_body("UNABLE_TO_AUTHENTICATE", "Unable to authenticate"), VendorAuthError, GoDaddyAuthError),
    (403, error_body("ACCESS_DENIED", "Authenticated user is not allowed access"), VendorAuthError, GoDaddyAuthError),
    (404, error_body("NOT_FOUND", "The domain was not found"), VendorNotFound, GoDaddyNotFound),
    (409, error_body("CONFLICT", "The domain is in a pending state"), VendorConflict, GoDaddyConflict),
]


@respx.mock
@pytest.mark.parametrize(("status", "body", "kit_class", "godaddy_class"), ERRORS)
def test_error_statuses_map_once_with_godaddys_body(
    status: int, body: dict[str, Any], kit_class: type[VendorError], godaddy_class: type[GoDaddyError]
) -> None:
    route = respx.get(f"{LIST}/example.com").respond(status, json=body)
    with pytest.raises(kit_class) as caught:
        adapter().get_domain("example.com")
    error = caught.value
    assert type(error) is godaddy_class
    assert not isinstance(error, VendorTransientError)
    assert error.status == status and error.vendor == "godaddy"
    assert error.details == GoDaddyErrorBody(code=body["code"], message=body["message"])
    assert str(error) == f"godaddy: HTTP {status} from {LIST}/example.com: {body['code']}: {body['message']}"
    assert route.call_count == 1  # 4xx is never retried


@respx.mock
def test_422_carries_godaddys_fields() -> None:
    body = error_body(
        "INVALID_BODY",
        "Request body doesn't fulfill schema, see details in `fields`",
        [{"code": "MISMATCH_FORMAT", "message": "limit must be <= 1000", "path": "limit", "pathRelated": "marker"}],
    )
    respx.get(LIST).respond(422, json=body)
    with pytest.raises(VendorPermanentError) as caught:
        adapter().list_domains()
    error = caught.value
    assert isinstance(error, GoDaddyPermanentError) and error.status == 422
    assert error.details is not None
    assert error.details.code == "INVALID_BODY"
    assert error.details.fields == (
        GoDaddyFieldError(path="limit", code="MISMATCH_FORMAT", message="limit must be <= 1000"),
    )
    assert str(error).endswith("(fields: limit MISMATCH_FORMAT)")


@respx.mock
def test_error_without_a_json_body_still_maps_by_status() -> None:
    respx.get(LIST).respond(403, content=b"<html>denied</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(GoDaddyAuthError) as caught:
        adapter().list_domains()
    assert caught.value.details is None
    assert str(caught.value) == f"godaddy: HTTP 403 from {LIST}"


@respx.mock
def test_429_with_retry_after_seconds() -> None:
    body = error_body("TOO_MANY_REQUESTS", "Too many requests received within interval")
    respx.get(LIST).respond(429, json=body, headers={"Retry-After": "30"})
    with pytest.raises(RateLimited) as caught:
        adapter().list_domains()
    error = caught.value
    assert isinstance(error, GoDaddyRateLimited)
    assert error.retry_after == 30.0 and error.local is False
    assert error.details is not None and error.details.code == "TOO_MANY_REQUESTS"


@respx.mock
def test_429_with_retry_after_http_date() -> None:
    when = format_datetime(datetime.fromtimestamp(time.time() + 120, tz=UTC), usegmt=True)
    respx.get(LIST).respond(429, json=error_body("TOO_MANY_REQUESTS", "slow down"), headers={"Retry-After": when})
    with pytest.raises(RateLimited) as caught:
        adapter().list_domains()
    assert caught.value.retry_after is not None
    assert 100 < caught.value.retry_after <= 120


@respx.mock
def test_429_is_retried_after_the_delay_it_asks_for() -> None:
    sleeps: list[float] = []
    route = respx.get(LIST)
    route.side_effect = [
        httpx.Response(429, json=error_body("TOO_MANY_REQUESTS", "slow down"), headers={"Retry-After": "3"}),
        httpx.Response(200, json=[{"domain": "a.com", "status": "ACTIVE"}]),
    ]
    domains = adapter(retry=RetryPolicy(max_attempts=2), sleep=sleeps.append).list_domains()
    assert [d.name for d in domains] == ["a.com"]
    assert route.call_count == 2
    assert len(sleeps) == 1 and sleeps[0] >= 3.0


@respx.mock
def test_malformed_json_is_refused() -> None:
    respx.get(LIST).respond(200, content=b'[{"domain": "a.com",', headers=JSON)
    with pytest.raises(VendorResponseError, match="not valid JSON"):
        adapter().list_domains()


@respx.mock
def test_html_with_200_is_refused() -> None:
    html = b"<!DOCTYPE html><html><body>Maintenance</body></html>"
    respx.get(LIST).respond(200, content=html, headers={"Content-Type": "text/html; charset=utf-8"})
    with pytest.raises(VendorResponseError, match=r"expected JSON .* got text/html"):
        adapter().list_domains()


@respx.mock
def test_redirect_to_a_host_not_allowlisted_is_refused_and_gets_no_key() -> None:
    elsewhere = respx.get("https://collector.example.net/v1/domains").respond(200, json=[])
    respx.get(LIST).respond(302, headers={"Location": "https://collector.example.net/v1/domains"})
    with pytest.raises(RedirectRefused, match="not allowlisted"):
        adapter().list_domains()
    assert elsewhere.call_count == 0
    for call in respx.calls:
        if call.request.url.host != "api.godaddy.com":
            assert "authorization" not in call.request.headers


@respx.mock
def test_six_megabyte_body_is_refused_by_the_size_cap() -> None:
    big = b"[" + b" " * (6 * 1024 * 1024) + b"]"
    respx.get(LIST).respond(200, content=big, headers=JSON)
    with pytest.raises(VendorResponseError, match=r"over the cap|over 5242880 bytes"):
        adapter().list_domains()


@respx.mock
def test_base_url_points_at_the_simulator_and_its_origin_only() -> None:
    sim = "http://127.0.0.1:8765/godaddy"
    route = respx.get(f"{sim}/v1/domains").respond(200, json=[])
    assert adapter(base_url=sim).list_domains() == []
    assert route.call_count == 1
    with pytest.raises(VendorError):
        adapter(base_url=sim).http.get_json("https://api.godaddy.com/v1/domains")


def test_bad_credentials_are_refused_without_echoing_them() -> None:
    for key, secret in (("", SECRET), (KEY, ""), ("has space", SECRET), (KEY, "line\nbreak"), ("a:b", SECRET)):
        with pytest.raises(ValueError) as caught:
            GoDaddyAdapter(key, secret)
        assert SECRET not in str(caught.value) and KEY not in str(caught.value)
        for part in (key, secret):
            if part:
                assert part not in str(caught.value)


@respx.mock
def test_key_and_secret_never_in_errors_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Every failure path above, with a vendor that echoes the credential back in its error body."""
    caplog.set_level(logging.DEBUG)
    echo = error_body(
        "UNABLE_TO_AUTHENTICATE",
        f"bad sso-key {KEY}:{SECRET}",
        [{"path": KEY, "code": SECRET, "message": f"{KEY}:{SECRET}"}],
    )
    answers = [
        httpx.Response(401, json=echo),
        httpx.Response(403, json=echo),
        httpx.Response(404, json=echo),
        httpx.Response(409, json=echo),
        httpx.Response(422, json=echo),
        httpx.Response(429, json=echo, headers={"Retry-After": "1"}),
        httpx.Response(500, json=echo),
        httpx.Response(200, content=b"{", headers=JSON),
        httpx.Response(200, content=b"<html/>", headers={"Content-Type": "text/html"}),
        httpx.Response(302, headers={"Location": "https://collector.example.net/"}),
        httpx.Response(200, content=b"[" + b" " * (6 * 1024 * 1024) + b"]", headers=JSON),
    ]
    respx.get(LIST).mock(side_effect=answers)
    godaddy = adapter(retry=RetryPolicy(max_attempts=2, base_s=0, cap_s=0), sleep=lambda _s: None)
    errors: list[VendorError] = []
    for _ in range(10):
        with pytest.raises(VendorError) as caught:
            godaddy.list_domains()
        errors.append(caught.value)
    assert len(respx.calls) == len(answers)  # the 429 was retried once (and met the 500)
    texts = [repr(godaddy), repr(godaddy.__dict__)]
    for error in errors:
        texts += [str(error), repr(error), repr(error.args), repr(getattr(error, "body", None))]
    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(record.args) for record in caplog.records]
    joined = "\n".join(texts)
    assert "[redacted]" in joined  # the echoed credential was there, and was scrubbed
    assert KEY not in joined and SECRET not in joined
    assert KEY.lower() not in joined.lower()


@respx.mock
def test_shopper_id_is_sent_when_given() -> None:
    route = respx.get(LIST).respond(200, json=[])
    adapter(shopper_id="123456").list_domains()
    assert route.calls.last.request.headers["X-Shopper-Id"] == "123456"
    with pytest.raises(ValueError, match="shopper_id"):
        adapter(shopper_id="12\r\nX: y")


# --- Writes. GoDaddy documents an empty 200 (or 204) for both PATCHes, so success answers are empty;
# error bodies are v1_domains_PATCH_409.json (documented 409 wording) or written inline like those above.

DOMAIN = f"{LIST}/example.com"
# respx hands back the same route for the same pattern; a second domain keeps each call count separate.
OTHER = f"{LIST}/example.org"
APERTURE = f"{LIST}/aperture-platform.com"
NS = ["ns1.example.net", "ns2.example.net"]


def sent_json(route: respx.Route) -> Any:
    return json.loads(route.calls.last.request.content)


@respx.mock
def test_set_nameservers_patches_the_domain_with_normalised_hosts() -> None:
    route = respx.patch(f"{LIST}/xn--bcher-kva.example").respond(200)
    adapter(shopper_id="123456").set_nameservers(
        "Bücher.Example.", ["NS1.Example.net.", "ns2.example.net", "ns1.example.net"]
    )
    assert route.call_count == 1
    request = route.calls.last.request
    assert request.method == "PATCH"
    assert sent_json(route) == {"nameServers": NS}
    assert request.headers["Authorization"] == f"sso-key {KEY}:{SECRET}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Shopper-Id"] == "123456"


@pytest.mark.parametrize("locked", [True, False])
@respx.mock
def test_set_lock_patches_only_the_lock(locked: bool) -> None:
    route = respx.patch(DOMAIN).respond(204)
    adapter().set_lock("example.com", locked)
    assert sent_json(route) == {"locked": locked}


@respx.mock
def test_set_contacts_lays_the_change_over_the_current_contacts_and_sends_all_four() -> None:
    """Reads v1_domains_aperture_platform_com.json, then PATCHes /contacts: the admin change, everything else kept."""
    read = respx.get(APERTURE).respond(200, content=fixture("v1_domains_aperture_platform_com.json"), headers=JSON)
    write = respx.patch(f"{APERTURE}/contacts").respond(204)
    change = RegistrarContact(role="admin", name_last="Nouveau", email=" admin@new.example ", phone="+61.299999999")
    adapter().set_contacts("aperture-platform.com", [change])
    assert read.call_count == 1 and write.call_count == 1
    assert respx.calls[0].request.method == "GET" and respx.calls[1].request.method == "PATCH"
    body = sent_json(write)
    kept = {
        "nameFirst": "Alex",
        "nameLast": "Example",
        "organization": "DIMENSION DATA Cloud Solutions Australia",
        "email": "registrant@example.com",
        "phone": "61.414529701",  # GoDaddy sent a JSON number: sent back as its text
        "addressMailing": {
            "address1": "1 Example Street",
            "city": "North Ryde",
            "state": "New South Wales",
            "postalCode": "2113",
            "country": "AU",
        },
    }
    admin = {**kept, "nameLast": "Nouveau", "email": "admin@new.example", "phone": "+61.299999999"}
    assert body == {"contactRegistrant": kept, "contactAdmin": admin, "contactTech": kept, "contactBilling": kept}
    assert "authCode" not in write.calls.last.request.content.decode()


@respx.mock
def test_set_contacts_replays_the_lexicon_cassette_and_can_clear_the_organization() -> None:
    cassette = json.loads(fixture("test_provider_authenticate.json"))
    respx.get(cassette["request"]["uri"]).respond(203, content=cassette["body"].encode(), headers=JSON)
    write = respx.patch(f"{cassette['request']['uri']}/contacts").respond(200)
    adapter().set_contacts(
        "fullm3tal.online", [RegistrarContact(role="registrant", name_first="Dominique", organization="")]
    )
    body = sent_json(write)
    assert body["contactRegistrant"]["nameFirst"] == "Dominique"
    assert body["contactRegistrant"]["organization"] == ""
    assert body["contactRegistrant"]["addressMailing"]["postalCode"] == "92150"
    assert body["contactTech"]["nameFirst"] == "Camille" and body["contactTech"]["phone"] == "+33.0100000000"
    assert "organization" not in body["contactTech"]  # empty at GoDaddy: nothing to keep


@pytest.mark.parametrize(
    ("contacts", "words"),
    [
        ([], "no contact changes"),
        ([RegistrarContact(role="tech")], "no contact changes"),
        (
            [RegistrarContact(role="admin", email="a@b.example"), RegistrarContact(role="admin", phone="+1.5555555")],
            "twice",
        ),
        ([RegistrarContact(role="admin", phone="555-1234")], "invalid admin phone"),
        ([RegistrarContact(role="admin", email="not an email")], "invalid admin email"),
        ([RegistrarContact(role="tech", name_first="  ")], "invalid tech nameFirst"),
        ([RegistrarContact(role="tech", name_last="x\r\nBcc: y")], "invalid tech nameLast"),
        ([RegistrarContact(role="owner", email="a@b.example")], "known role"),  # type: ignore[arg-type]
        ("registrant", "a list"),
    ],
)
@respx.mock
def test_set_contacts_refuses_bad_changes_before_any_call(contacts: Any, words: str) -> None:
    anything = respx.route()
    with pytest.raises(VendorPermanentError, match=words):
        adapter().set_contacts("example.com", contacts)
    assert anything.call_count == 0


@pytest.mark.parametrize(
    ("drop", "change", "words"),
    [
        (("contactAdmin",), "admin", "no admin contact to change"),
        (("contactRegistrant",), "tech", "no registrant contact"),
        (("contactTech", "addressMailing"), "tech", "tech contact lacks addressMailing.address1"),
        (("contactBilling", "phone"), "admin", "billing contact lacks phone"),
    ],
)
@respx.mock
def test_set_contacts_sends_nothing_rather_than_a_partial_contact(
    drop: tuple[str, ...], change: str, words: str
) -> None:
    domain = json.loads(fixture("v1_domains_aperture_platform_com.json"))
    if len(drop) == 1:
        del domain[drop[0]]
    else:
        del domain[drop[0]][drop[1]]
    respx.get(APERTURE).respond(200, json=domain)
    write = respx.patch(f"{APERTURE}/contacts").respond(204)
    with pytest.raises(VendorError, match=words):
        adapter().set_contacts("aperture-platform.com", [RegistrarContact(role=change, email="x@y.example")])  # type: ignore[arg-type]
    assert write.call_count == 0


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda g: g.set_nameservers("example.com", ["ns1.example.net"]), "2-13 distinct"),
        (lambda g: g.set_nameservers("example.com", ["ns1.example.net", "NS1.example.net."]), "2-13 distinct"),
        (lambda g: g.set_nameservers("example.com", [f"ns{n}.example.net" for n in range(14)]), "2-13 distinct"),
        (lambda g: g.set_nameservers("example.com", "ns1.example.net"), "a list"),
        (lambda g: g.set_nameservers("example.com", ["ns1.example.net", "bad host/../x"]), "nameserver"),
        (lambda g: g.set_nameservers("../v2/customers", NS), "domain name"),
        (lambda g: g.set_lock("example.com", "yes"), "true or false"),
        (lambda g: g.set_lock("example.com/contacts", True), "domain name"),
    ],
)
@respx.mock
def test_bad_write_input_is_refused_before_any_call(call: Callable[[GoDaddyAdapter], None], words: str) -> None:
    anything = respx.route()
    with pytest.raises(VendorPermanentError, match=words):
        call(adapter())
    assert anything.call_count == 0


WRITE_ERRORS: list[tuple[int, dict[str, Any], type[VendorError], type[GoDaddyError]]] = [
    *ERRORS[:3],
    (409, json.loads(fixture("v1_domains_PATCH_409.json")), VendorConflict, GoDaddyConflict),
]


@respx.mock
@pytest.mark.parametrize(("status", "body", "kit_class", "godaddy_class"), WRITE_ERRORS)
def test_write_errors_map_once_with_godaddys_words_and_code(
    status: int, body: dict[str, Any], kit_class: type[VendorError], godaddy_class: type[GoDaddyError]
) -> None:
    route = respx.patch(DOMAIN).respond(status, json=body)
    with pytest.raises(kit_class) as caught:
        adapter(retry=RetryPolicy(max_attempts=3, base_s=0, cap_s=0)).set_nameservers("example.com", NS)
    error = caught.value
    assert type(error) is godaddy_class and error.status == status
    assert error.vendor_code == body["code"]
    assert str(error) == f"godaddy: HTTP {status} from {DOMAIN}: {body['code']}: {body['message']}"
    assert error.body is None
    assert route.call_count == 1


@respx.mock
def test_write_429_hands_back_retry_after_in_seconds_or_as_a_date() -> None:
    body = error_body("TOO_MANY_REQUESTS", "Too many requests received within interval")
    respx.patch(DOMAIN).respond(429, json=body, headers={"Retry-After": "30"})
    with pytest.raises(GoDaddyRateLimited) as caught:
        adapter().set_lock("example.com", True)
    assert caught.value.retry_after == 30.0 and caught.value.vendor_code == "TOO_MANY_REQUESTS"
    when = format_datetime(datetime.fromtimestamp(time.time() + 120, tz=UTC), usegmt=True)
    route = respx.patch(OTHER).respond(429, json=body, headers={"Retry-After": when})
    with pytest.raises(RateLimited) as caught:
        adapter(retry=RetryPolicy(max_attempts=3)).set_lock("example.org", True)
    assert route.call_count == 1  # longer than the in-process wait: handed back to the job
    assert caught.value.retry_after is not None and 100 < caught.value.retry_after <= 120


@respx.mock
def test_patch_is_retried_after_a_rate_limit_refusal_but_never_after_a_server_error() -> None:
    """GoDaddy has no idempotency key: a PATCH that failed with a 5xx may have been applied."""
    options: dict[str, Any] = {"retry": RetryPolicy(max_attempts=3, base_s=0, cap_s=0), "sleep": lambda _s: None}
    refused = respx.patch(DOMAIN)
    refused.side_effect = [httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(200)]
    adapter(**options).set_lock("example.com", False)
    assert refused.call_count == 2
    failed = respx.patch(OTHER).respond(500, json=error_body("INTERNAL", "oops"))
    with pytest.raises(VendorTransientError):
        adapter(**options).set_nameservers("example.org", NS)
    assert failed.call_count == 1
    # set_contacts: its GET is a read and is retried; its PATCH is not.
    read = respx.get(APERTURE)
    read.side_effect = [
        httpx.Response(502),
        httpx.Response(200, content=fixture("v1_domains_aperture_platform_com.json"), headers=JSON),
    ]
    write = respx.patch(f"{APERTURE}/contacts").respond(503)
    with pytest.raises(VendorTransientError):
        adapter(**options).set_contacts("aperture-platform.com", [RegistrarContact(role="tech", email="t@x.example")])
    assert read.call_count == 2 and write.call_count == 1


@respx.mock
def test_hostile_answers_to_writes_are_refused() -> None:
    respx.patch(DOMAIN).respond(200, content=b'{"ok": ', headers=JSON)
    with pytest.raises(VendorResponseError, match="not valid JSON"):
        adapter().set_lock("example.com", True)
    respx.patch(DOMAIN).respond(200, content=b"<html>Maintenance</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(VendorResponseError, match=r"expected JSON .* got text/html"):
        adapter().set_nameservers("example.com", NS)
    route = respx.patch(OTHER).respond(200, content=b"[" + b" " * (6 * 1024 * 1024) + b"]", headers=JSON)
    with pytest.raises(VendorResponseError, match=r"over the cap|over 5242880 bytes"):
        adapter(retry=RetryPolicy(max_attempts=3)).set_lock("example.org", True)
    assert route.call_count == 1


@pytest.mark.parametrize("status", [302, 307, 308])
@respx.mock
def test_a_write_redirected_off_the_allowlist_is_refused_without_a_call(status: int) -> None:
    respx.patch(DOMAIN).respond(status, headers={"Location": "https://collector.example.net/v1/domains/example.com"})
    elsewhere = respx.route(host="collector.example.net").respond(200)
    with pytest.raises(RedirectRefused):
        adapter().set_nameservers("example.com", NS)
    assert elsewhere.call_count == 0


@respx.mock
def test_key_and_secret_never_in_write_errors_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Write failures (a retried one included) from a vendor that echoes the credential: scrubbed everywhere."""
    caplog.set_level(logging.DEBUG)
    echo = error_body("UNABLE_TO_AUTHENTICATE", f"bad sso-key {KEY}:{SECRET}", [{"path": KEY, "code": SECRET}])
    answers = [
        httpx.Response(401, json=echo),
        httpx.Response(403, json=echo),
        httpx.Response(404, json=echo),
        httpx.Response(409, json=echo),
        httpx.Response(422, json=echo),
        httpx.Response(429, json=echo, headers={"Retry-After": "0"}),
        httpx.Response(500, json=echo),
        httpx.Response(200, content=b"{", headers=JSON),
        httpx.Response(307, headers={"Location": f"https://collector.example.net/?k={KEY}"}),
    ]
    respx.patch(DOMAIN).mock(side_effect=answers)
    godaddy = adapter(retry=RetryPolicy(max_attempts=2, base_s=0, cap_s=0), sleep=lambda _s: None)
    errors: list[VendorError] = []
    for _ in range(8):
        with pytest.raises(VendorError) as caught:
            godaddy.set_nameservers("example.com", NS)
        errors.append(caught.value)
    assert len(respx.calls) == len(answers)  # only the 429 was retried (and met the 500)
    assert any("retrying" in record.getMessage() for record in caplog.records)
    texts = [repr(godaddy), repr(godaddy.__dict__)]
    for error in errors:
        texts += [str(error), repr(error), repr(error.args), repr(vars(error))]
    texts += [record.getMessage() for record in caplog.records] + [repr(record.args) for record in caplog.records]
    joined = "\n".join(texts)
    assert "[redacted]" in joined
    assert KEY not in joined and SECRET not in joined
