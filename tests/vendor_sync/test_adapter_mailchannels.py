"""MailChannels Inbound adapter: fixtures built from its API description, its errors, the kit's guards, the key."""

from __future__ import annotations

import copy
import json
import logging
import pickle
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import respx
from redis import Redis

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
from vendor_sync.adapters.mailchannels import (
    INBOUND_MX_HOSTS,
    MailChannelsAdapter,
    MailChannelsAuthError,
    MailChannelsConflict,
    MailChannelsDomainTaken,
    MailChannelsError,
    MailChannelsErrorBody,
    MailChannelsNotFound,
    MailChannelsPermanentError,
    MailChannelsRateLimited,
    MailChannelsTransientError,
)
from vendor_sync.adapters.spam_filter_types import (
    KNOWN_CAPABILITIES,
    DomainOwnedElsewhere,
    DownstreamAddress,
    ProvisionResult,
    SpamFilterAdapter,
    SpamFilterDomain,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mailchannels"
SPEC = json.loads((FIXTURES / "inbound-api-1.2.0.json").read_text())
API = "https://api.mailchannels.net/inbound/v1"
DOMAINS = f"{API}/domains"
DOWNSTREAM = f"{DOMAINS}/example.com/downstream-address"
KEY = "mcCanaryKEY9f2Xq7"
SUB = "inbound-msp-0001"
JSON = {"Content-Type": "application/json"}
MAIL1 = DownstreamAddress("mail1.example.com")
MAIL2 = DownstreamAddress("mail2.example.com", priority=20)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def adapter(**options: Any) -> MailChannelsAdapter:
    options.setdefault("retry", RetryPolicy(max_attempts=1))
    options.setdefault("subscription_handle", SUB)
    return MailChannelsAdapter(KEY, **options)


def quick_retries(**options: Any) -> MailChannelsAdapter:
    """Retries on (4 attempts) with no real sleeping, so call counts show what the kit retried."""
    return adapter(retry=RetryPolicy(max_attempts=4, base_s=0, cap_s=0), sleep=lambda _s: None, **options)


def answer(status: int, name: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=fixture(name) if name else b"", headers={**JSON, **(headers or {})})


# --- the fixtures against the API description -------------------------------------------------------------


def _closed(schema: Any) -> Any:
    """The schema with every object closed: a fixture field the document does not define is an error."""
    if isinstance(schema, dict):
        closed = {key: _closed(value) for key, value in schema.items()}
        if "properties" in closed and "allOf" not in closed:
            closed.setdefault("additionalProperties", False)
        return closed
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


def validator(schema: dict[str, Any]) -> jsonschema.Validator:
    """A draft-4 validator for a schema of the document, its "#/definitions/..." refs resolved in the document."""
    root = {"allOf": [_closed(schema)], "definitions": _closed(SPEC["definitions"])}
    return jsonschema.Draft4Validator(root)


def response_schema(path: str, method: str, status: str) -> dict[str, Any]:
    return SPEC["paths"][path][method]["responses"][status]["schema"]


def body_schema(path: str, method: str) -> dict[str, Any]:
    (body,) = [p for p in SPEC["paths"][path][method]["parameters"] if p["in"] == "body"]
    return body["schema"]


FIXTURE_SCHEMAS: dict[str, list[tuple[str, str, str]]] = {
    "domains_page_1.json": [("/domains", "get", "200")],
    "domains_page_2.json": [("/domains", "get", "200")],
    "domain_provisioned.json": [("/domains", "post", "201"), ("/domains", "post", "200")],
    "downstream_addresses.json": [
        ("/domains/{domain}/downstream-address", "get", "200"),
        ("/domains/{domain}/downstream-address", "put", "201"),
    ],
    "error_400.json": [("/domains", "post", "400")],
    "error_403.json": [("/domains", "post", "403")],
    "error_404.json": [("/domains/{domain}", "delete", "404")],
    "error_409.json": [("/domains", "post", "409")],
    "error_500.json": [("/domains", "post", "500")],
}


def test_the_api_description_is_the_shared_copy() -> None:
    assert SPEC["swagger"] == "2.0" and SPEC["info"]["version"] == "1.2.0"
    assert f"https://{SPEC['host']}{SPEC['basePath']}" == API
    assert SPEC["securityDefinitions"]["APIKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    # Every path the adapter calls is one the document defines, with the method used.
    assert {"get", "post"} <= SPEC["paths"]["/domains"].keys()
    assert "delete" in SPEC["paths"]["/domains/{domain}"]
    assert {"get", "put"} <= SPEC["paths"]["/domains/{domain}/downstream-address"].keys()


def test_every_fixture_is_listed_with_its_schema() -> None:
    on_disk = {p.name for p in FIXTURES.glob("*.json")} - {"inbound-api-1.2.0.json"}
    assert on_disk == set(FIXTURE_SCHEMAS)


@pytest.mark.parametrize("name", sorted(FIXTURE_SCHEMAS))
def test_every_fixture_follows_its_schema_in_the_api_description(name: str) -> None:
    data = json.loads(fixture(name))
    for path, method, status in FIXTURE_SCHEMAS[name]:
        errors = list(validator(response_schema(path, method, status)).iter_errors(data))
        assert errors == [], f"{name} vs {method.upper()} {path} {status}: {[e.message for e in errors]}"


def test_the_schema_check_is_not_vacuous() -> None:
    """A drifted fixture (unknown field, wrong type, missing required field) fails the same check."""
    check = validator(response_schema("/domains", "get", "200"))
    page = json.loads(fixture("domains_page_1.json"))
    assert check.is_valid(page)
    for drift in (
        lambda p: p.update(next_offset=3),
        lambda p: p.update(total="5"),
        lambda p: p["domains"][0].pop("subscriptionHandle"),
        lambda p: p["domains"][0]["downstreamAddresses"][0].update(host="x."),
        lambda p: p["domains"][0]["downstreamAddresses"][0].update(port=-1),
        lambda p: p["domains"][0]["settings"].update(abusePolicy="drop"),
    ):
        drifted = copy.deepcopy(page)
        drift(drifted)
        assert not check.is_valid(drifted)


# --- shape of the adapter ---------------------------------------------------------------------------------


def test_adapter_satisfies_the_spam_filter_protocol() -> None:
    mc = adapter()
    assert isinstance(mc, SpamFilterAdapter)
    assert mc.vendor == "mailchannels"
    assert mc.capabilities == frozenset(
        {"spam_domains.read", "spam_domains.write", "downstream_addresses.read", "downstream_addresses.write"}
    )
    assert mc.capabilities <= KNOWN_CAPABILITIES


def test_inbound_mx_hosts_are_mailchannels_published_ones() -> None:
    assert INBOUND_MX_HOSTS == ((10, "mx1.mailchannels.net"), (20, "mx2.mailchannels.net"))


def test_shared_rate_limit_defaults_to_100_per_second_only_with_redis() -> None:
    assert adapter().http.limiter is None
    limiter = adapter(redis=Redis()).http.limiter
    assert limiter is not None
    assert (limiter.item.amount, limiter.item.get_expiry()) == (100, 1)
    assert adapter(redis=Redis(), rate="10/second").http.limiter.item.amount == 10  # type: ignore[union-attr]


def test_downstream_addresses_are_kept_canonical_and_checked() -> None:
    assert DownstreamAddress("Mail1.Example.COM.") == MAIL1
    assert DownstreamAddress(" bücher.example ").target == "xn--bcher-kva.example"
    assert DownstreamAddress("192.0.2.10").target == "192.0.2.10"
    for bad in ("", "not a host", "a..b", "-x.example"):
        with pytest.raises(ValueError, match="host name or an IP address") as caught:
            DownstreamAddress(bad)
        assert not bad or bad not in str(caught.value)
    with pytest.raises(ValueError, match="port"):
        DownstreamAddress("mail.example.com", port=0)
    with pytest.raises(ValueError, match="weight"):
        DownstreamAddress("mail.example.com", weight=True)


# --- domains ----------------------------------------------------------------------------------------------


@respx.mock
def test_list_domains_over_two_pages() -> None:
    """domains_page_1/2.json with limit 3: offsets 0 and 3, all five domains, names as A-labels."""
    first = respx.get(DOMAINS, params={"offset": "0"}).mock(return_value=answer(200, "domains_page_1.json"))
    second = respx.get(DOMAINS, params={"offset": "3"}).mock(return_value=answer(200, "domains_page_2.json"))
    domains = adapter(page_limit=3).list_domains()
    assert [d.name for d in domains] == [
        "example.com",
        "example.net",
        "example.org",
        "xn--bcher-kva.example",
        "shop.example.co.uk",
    ]
    assert domains[0] == SpamFilterDomain(
        name="example.com",
        subscription_handle=SUB,
        downstream_addresses=(MAIL1, DownstreamAddress("mail2.example.com", weight=5)),
    )
    assert domains[1].downstream_addresses == (DownstreamAddress("mx.example.net", port=2525, priority=0, weight=1),)
    assert domains[2].downstream_addresses is None  # the answer did not say
    assert domains[4].downstream_addresses == ()
    assert first.call_count == 1 and second.call_count == 1
    requests = [first.calls.last.request, second.calls.last.request]
    assert [dict(r.url.params) for r in requests] == [{"limit": "3", "offset": "0"}, {"limit": "3", "offset": "3"}]
    assert all(r.headers["X-API-Key"] == KEY for r in requests)
    assert all(r.headers["Accept"] == "application/json" for r in requests)
    assert "postmaster@example.com" not in repr(domains)  # admins' addresses are not kept


@respx.mock
def test_list_domains_refuses_more_than_the_page_cap_before_reading_on() -> None:
    page = json.loads(fixture("domains_page_1.json"))
    page["total"] = 10_000
    route = respx.get(DOMAINS).respond(200, json=page)
    with pytest.raises(VendorResponseError, match="10000 domains is over the cap of 5 pages"):
        adapter(page_limit=3, max_pages=5).list_domains()
    assert route.call_count == 1


@respx.mock
def test_list_domains_refuses_a_list_that_changed_while_paging() -> None:
    """Page 2 comes back empty although `total` says 5: two domains would be missing, so nothing is returned."""
    respx.get(DOMAINS, params={"offset": "0"}).mock(return_value=answer(200, "domains_page_1.json"))
    respx.get(DOMAINS, params={"offset": "3"}).respond(200, json={"domains": [], "total": 5})
    with pytest.raises(VendorTransientError, match="listed 3 of 5 domains"):
        adapter(page_limit=3).list_domains()


@respx.mock
def test_list_domains_refuses_a_server_that_ignores_the_offset() -> None:
    route = respx.get(DOMAINS).mock(return_value=answer(200, "domains_page_1.json"))
    with pytest.raises(VendorResponseError, match="did not advance"):
        adapter(page_limit=3).list_domains()
    assert route.call_count == 2


@respx.mock
def test_list_domains_refuses_an_answer_of_the_wrong_shape() -> None:
    for body in ({"domains": {}, "total": 1}, {"domains": [], "total": -1}, {"domains": []}, [{"domain": "a.com"}]):
        respx.get(DOMAINS).respond(200, json=body)
        with pytest.raises(VendorResponseError, match=r"not \{domains"):
            adapter().list_domains()
    respx.get(DOMAINS).respond(200, json={"domains": [{"domain": "not a domain"}], "total": 1})
    with pytest.raises(VendorResponseError, match="no valid `domain`"):
        adapter().list_domains()
    bad_port = {"priority": 1, "weight": 1, "port": "25", "target": "mail.example.com."}
    respx.get(DOMAINS).respond(
        200, json={"domains": [{"domain": "a.example", "downstreamAddresses": [bad_port]}], "total": 1}
    )
    with pytest.raises(VendorResponseError, match="invalid downstream address"):
        adapter().list_domains()


@respx.mock
def test_get_domain_filters_the_list_by_name() -> None:
    route = respx.get(DOMAINS).mock(return_value=answer(200, "domains_page_1.json"))
    domain = adapter().get_domain("Example.NET.")
    assert domain.name == "example.net"
    assert dict(route.calls.last.request.url.params) == {"domains": "example.net", "limit": "10"}
    with pytest.raises(MailChannelsNotFound, match=r"example\.info is not provisioned"):
        adapter().get_domain("example.info")
    calls = route.call_count
    with pytest.raises(VendorPermanentError, match="mailchannels: "):
        adapter().get_domain("not a domain/../x")
    assert route.call_count == calls  # refused before any call


@respx.mock
def test_provision_a_new_domain() -> None:
    """201 (domain_provisioned.json): created; the body is the document's `Domain`, with no query string."""
    route = respx.post(DOMAINS).mock(return_value=answer(201, "domain_provisioned.json"))
    result = adapter().provision_domain("Example.COM", [MAIL1, MAIL2, DownstreamAddress("MAIL1.example.com.")])
    assert result == ProvisionResult(
        domain=SpamFilterDomain(name="example.com", subscription_handle=SUB, downstream_addresses=(MAIL1, MAIL2)),
        created=True,
    )
    assert route.call_count == 1
    sent = route.calls.last.request
    assert sent.url.query == b""  # neither `associate-key` nor `overwrite`
    assert sent.headers["Content-Type"] == "application/json" and sent.headers["X-API-Key"] == KEY
    body = json.loads(sent.content)
    assert body == {
        "domain": "example.com",
        "subscriptionHandle": SUB,
        "downstreamAddresses": [
            {"priority": 10, "weight": 10, "port": 25, "target": "mail1.example.com."},
            {"priority": 20, "weight": 10, "port": 25, "target": "mail2.example.com."},
        ],
    }
    assert validator(body_schema("/domains", "post")).is_valid(body)


@respx.mock
def test_provision_an_already_provisioned_domain_with_the_same_servers() -> None:
    """200: already ours, success flagged as existing; the downstream addresses match, so nothing is written."""
    post = respx.post(DOMAINS).mock(return_value=answer(200, "domain_provisioned.json"))
    listed = respx.get(DOWNSTREAM).mock(return_value=answer(200, "downstream_addresses.json"))
    put = respx.put(DOWNSTREAM)
    result = adapter().provision_domain("example.com", [MAIL2, MAIL1])
    assert result.created is False and result.replaced_downstream is None
    assert result.domain.downstream_addresses == (MAIL1, MAIL2)
    assert post.call_count == 1 and listed.call_count == 1 and put.call_count == 0


@respx.mock
def test_provision_an_already_provisioned_domain_replaces_other_servers() -> None:
    """200 with other downstream addresses: set to the requested ones, the replaced ones reported."""
    respx.post(DOMAINS).mock(return_value=answer(200, "domain_provisioned.json"))
    respx.get(DOWNSTREAM).mock(return_value=answer(200, "downstream_addresses.json"))
    wanted = DownstreamAddress("192.0.2.25", port=587)
    put = respx.put(DOWNSTREAM).respond(
        201, json={"records": [{"priority": 10, "weight": 10, "port": 587, "target": "192.0.2.25"}]}
    )
    result = adapter().provision_domain("example.com", [wanted])
    assert result.created is False
    assert result.replaced_downstream == (MAIL1, MAIL2)
    assert result.domain.downstream_addresses == (wanted,)
    body = json.loads(put.calls.last.request.content)
    assert body == {"records": [{"priority": 10, "weight": 10, "port": 587, "target": "192.0.2.25"}]}
    assert validator(body_schema("/domains/{domain}/downstream-address", "put")).is_valid(body)


@respx.mock
def test_provision_refuses_an_answer_for_another_domain() -> None:
    respx.post(DOMAINS).mock(return_value=answer(201, "domain_provisioned.json"))
    with pytest.raises(VendorResponseError, match="answer is for another domain"):
        adapter().provision_domain("example.net", [MAIL1])


def test_provision_needs_servers_and_a_subscription_before_any_call() -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(DOMAINS)
        with pytest.raises(ValueError, match="1-10 downstream addresses"):
            adapter().provision_domain("example.com", [])
        with pytest.raises(ValueError, match="1-10 downstream addresses"):
            adapter().provision_domain("example.com", [DownstreamAddress(f"mx{n}.example.com") for n in range(11)])
        with pytest.raises(ValueError, match="subscription handle"):
            adapter(subscription_handle=None).provision_domain("example.com", [MAIL1])
        with pytest.raises(TypeError, match="DownstreamAddress"):
            adapter().provision_domain("example.com", ["mail.example.com"])  # type: ignore[list-item]
        assert route.call_count == 0
        mock.post(DOMAINS).mock(return_value=answer(201, "domain_provisioned.json"))
        result = adapter(subscription_handle=None).provision_domain("example.com", [MAIL1], subscription_handle=SUB)
        assert json.loads(mock.calls.last.request.content)["subscriptionHandle"] == SUB
        assert result.created


@respx.mock
def test_409_owned_by_another_customer_is_a_clear_conflict() -> None:
    route = respx.post(DOMAINS).mock(return_value=answer(409, "error_409.json"))
    with pytest.raises(DomainOwnedElsewhere) as caught:
        quick_retries().provision_domain("example.com", [MAIL1])
    error = caught.value
    assert type(error) is MailChannelsDomainTaken
    assert isinstance(error, VendorConflict) and isinstance(error, MailChannelsConflict)
    assert error.status == 409 and error.vendor == "mailchannels" and error.vendor_code == "409"
    assert error.details == MailChannelsErrorBody(
        code=409, message="The domain is already provisioned, and is associated with a different customer."
    )
    assert str(error) == (
        f"mailchannels: HTTP 409 from {DOMAINS}: example.com is already provisioned for a different MailChannels"
        " customer (code 409; The domain is already provisioned, and is associated with a different customer.)"
    )
    assert error.body is None
    assert route.call_count == 1


@respx.mock
def test_a_409_elsewhere_is_a_plain_conflict() -> None:
    respx.put(DOWNSTREAM).mock(return_value=answer(409, "error_409.json"))
    with pytest.raises(MailChannelsConflict) as caught:
        adapter().set_downstream_addresses("example.com", [MAIL1])
    assert not isinstance(caught.value, DomainOwnedElsewhere)


@respx.mock
def test_post_is_not_retried_after_a_500() -> None:
    """MailChannels has no idempotency key: after a 500 the domain may exist, so the kit does not POST again."""
    route = respx.post(DOMAINS).mock(return_value=answer(500, "error_500.json"))
    with pytest.raises(MailChannelsTransientError) as caught:
        quick_retries().provision_domain("example.com", [MAIL1])
    assert route.call_count == 1
    assert caught.value.status == 500
    assert str(caught.value).endswith("(code 500; Internal Server Error)")


@respx.mock
def test_post_refused_with_503_is_retried_since_nothing_was_done() -> None:
    route = respx.post(DOMAINS)
    route.side_effect = [answer(503, headers={"Retry-After": "0"}), answer(201, "domain_provisioned.json")]
    assert quick_retries().provision_domain("example.com", [MAIL1]).created
    assert route.call_count == 2


@respx.mock
def test_delete_domain() -> None:
    gone = respx.delete(f"{DOMAINS}/example.com").respond(204)
    assert adapter().delete_domain("EXAMPLE.com.") is True
    assert gone.call_count == 1 and gone.calls.last.request.headers["X-API-Key"] == KEY
    respx.delete(f"{DOMAINS}/example.org").mock(return_value=answer(404, "error_404.json"))
    assert adapter().delete_domain("example.org") is False  # already gone: a retried job is done
    respx.delete(f"{DOMAINS}/example.net").mock(return_value=answer(403, "error_403.json"))
    with pytest.raises(MailChannelsAuthError):
        adapter().delete_domain("example.net")


@respx.mock
def test_delete_is_idempotent_so_a_500_is_retried() -> None:
    route = respx.delete(f"{DOMAINS}/example.com")
    route.side_effect = [answer(500, "error_500.json"), httpx.Response(204)]
    assert quick_retries().delete_domain("example.com") is True
    assert route.call_count == 2


# --- downstream addresses ---------------------------------------------------------------------------------


@respx.mock
def test_list_downstream_addresses() -> None:
    route = respx.get(DOWNSTREAM).mock(return_value=answer(200, "downstream_addresses.json"))
    assert adapter().list_downstream_addresses("example.com") == (MAIL1, MAIL2)
    assert route.call_count == 1
    assert dict(route.calls.last.request.url.params) == {"limit": "10", "offset": "0"}


@respx.mock
def test_list_downstream_addresses_follows_full_pages() -> None:
    def record(n: int) -> dict[str, Any]:
        return {"priority": n, "weight": 1, "port": 25, "target": f"mx{n}.example.com."}

    first = respx.get(DOWNSTREAM, params={"offset": "0"}).respond(200, json={"records": [record(n) for n in range(10)]})
    second = respx.get(DOWNSTREAM, params={"offset": "10"}).respond(200, json={"records": [record(10), record(11)]})
    found = adapter().list_downstream_addresses("example.com")
    assert [a.target for a in found] == [f"mx{n}.example.com" for n in range(12)]
    assert first.call_count == 1 and second.call_count == 1


@respx.mock
def test_list_downstream_addresses_refuses_a_server_that_ignores_the_offset_or_the_shape() -> None:
    full = [{"priority": n, "weight": 1, "port": 25, "target": f"mx{n}.example.com."} for n in range(10)]
    route = respx.get(DOWNSTREAM)
    route.side_effect = [httpx.Response(200, json={"records": full})] * 2 + [httpx.Response(200, json={"x": []})]
    with pytest.raises(VendorResponseError, match="did not advance"):
        adapter().list_downstream_addresses("example.com")
    assert route.call_count == 2
    with pytest.raises(VendorResponseError, match="no `records` list"):
        adapter().list_downstream_addresses("example.com")


@respx.mock
def test_set_downstream_addresses() -> None:
    route = respx.put(DOWNSTREAM).mock(return_value=answer(201, "downstream_addresses.json"))
    assert adapter().set_downstream_addresses("example.com", [MAIL1, MAIL2]) == (MAIL1, MAIL2)
    assert route.call_count == 1
    body = json.loads(route.calls.last.request.content)
    assert body["records"][1] == {"priority": 20, "weight": 10, "port": 25, "target": "mail2.example.com."}
    # An empty list is the API's way to remove them all.
    route.mock(return_value=httpx.Response(201, json={"records": []}))
    assert adapter().set_downstream_addresses("example.com", []) == ()
    assert json.loads(route.calls.last.request.content) == {"records": []}
    many = [DownstreamAddress(f"mx{n}.example.com") for n in range(11)]
    with pytest.raises(ValueError, match="at most 10"):
        adapter().set_downstream_addresses("example.com", many)
    assert route.call_count == 2


@respx.mock
def test_put_is_idempotent_so_a_500_is_retried() -> None:
    route = respx.put(DOWNSTREAM)
    route.side_effect = [answer(500, "error_500.json"), answer(201, "downstream_addresses.json")]
    assert quick_retries().set_downstream_addresses("example.com", [MAIL1, MAIL2]) == (MAIL1, MAIL2)
    assert route.call_count == 2


# --- errors -----------------------------------------------------------------------------------------------

ERRORS: list[tuple[int, str, type[VendorError], type[MailChannelsError]]] = [
    (400, "error_400.json", VendorPermanentError, MailChannelsPermanentError),
    (403, "error_403.json", VendorAuthError, MailChannelsAuthError),
    (404, "error_404.json", VendorNotFound, MailChannelsNotFound),
    (409, "error_409.json", VendorConflict, MailChannelsConflict),
]


@respx.mock
@pytest.mark.parametrize(("status", "name", "kit_class", "mc_class"), ERRORS)
def test_error_statuses_map_once_with_mailchannels_body(
    status: int, name: str, kit_class: type[VendorError], mc_class: type[MailChannelsError]
) -> None:
    route = respx.get(DOWNSTREAM).mock(return_value=answer(status, name))
    with pytest.raises(kit_class) as caught:
        quick_retries().list_downstream_addresses("example.com")
    error = caught.value
    assert type(error) is mc_class
    assert not isinstance(error, VendorTransientError)
    body = json.loads(fixture(name))
    assert error.details == MailChannelsErrorBody(
        code=body["code"], message=body["message"], errors=tuple(body.get("errors", ()))
    )
    assert error.vendor_code == str(status) and error.status == status and error.body is None
    words = f"code {status}; {body['message']}" + (f" [{body['errors'][0]}]" if body.get("errors") else "")
    assert str(error) == f"mailchannels: HTTP {status} from {DOWNSTREAM} ({words})"
    assert route.call_count == 1  # 4xx is never retried


@respx.mock
def test_401_without_a_json_body_still_maps_by_status() -> None:
    respx.get(DOMAINS).respond(401, content=b"<html>Unauthorized</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(MailChannelsAuthError) as caught:
        adapter().list_domains()
    assert caught.value.details is None and caught.value.status == 401
    assert str(caught.value) == f"mailchannels: HTTP 401 from {DOMAINS}"


@respx.mock
def test_500_is_transient_with_mailchannels_words() -> None:
    respx.get(DOMAINS).mock(return_value=answer(500, "error_500.json"))
    with pytest.raises(VendorTransientError) as caught:
        adapter().list_domains()
    assert type(caught.value) is MailChannelsTransientError
    assert caught.value.details == MailChannelsErrorBody(code=500, message="Internal Server Error")


@respx.mock
@pytest.mark.parametrize("status", [429, 503])
def test_rate_limited_with_retry_after_in_seconds(status: int) -> None:
    respx.get(DOMAINS).respond(status, json={"code": status, "message": "slow down"}, headers={"Retry-After": "42"})
    with pytest.raises(RateLimited) as caught:
        adapter().list_domains()
    error = caught.value
    assert type(error) is MailChannelsRateLimited
    assert error.status == status and error.retry_after == 42.0 and error.local is False
    assert error.details is not None and error.details.message == "slow down"


@respx.mock
@pytest.mark.parametrize("status", [429, 503])
def test_rate_limited_with_retry_after_as_an_http_date(status: int) -> None:
    when = format_datetime(datetime.fromtimestamp(time.time() + 120, tz=UTC), usegmt=True)
    respx.get(DOMAINS).respond(status, headers={"Retry-After": when})
    with pytest.raises(MailChannelsRateLimited) as caught:
        adapter().list_domains()
    assert caught.value.retry_after is not None
    assert 100 < caught.value.retry_after <= 120


@respx.mock
def test_503_is_retried_after_the_delay_it_asks_for() -> None:
    sleeps: list[float] = []
    route = respx.get(DOWNSTREAM)
    route.side_effect = [answer(503, headers={"Retry-After": "3"}), answer(200, "downstream_addresses.json")]
    found = adapter(retry=RetryPolicy(max_attempts=2), sleep=sleeps.append).list_downstream_addresses("example.com")
    assert found == (MAIL1, MAIL2)
    assert route.call_count == 2
    assert len(sleeps) == 1 and sleeps[0] >= 3.0


@respx.mock
def test_malformed_json_is_refused() -> None:
    respx.get(DOMAINS).respond(200, content=b'{"domains": [{"domain": "a.com",', headers=JSON)
    with pytest.raises(VendorResponseError, match="not valid JSON"):
        adapter().list_domains()


@respx.mock
def test_html_with_200_is_refused() -> None:
    html = b"<!DOCTYPE html><html><body>Maintenance</body></html>"
    respx.post(DOMAINS).respond(200, content=html, headers={"Content-Type": "text/html; charset=utf-8"})
    with pytest.raises(VendorResponseError, match=r"expected JSON .* got text/html"):
        adapter().provision_domain("example.com", [MAIL1])


@respx.mock
def test_redirect_to_a_host_not_allowlisted_is_refused_without_calling_it() -> None:
    elsewhere = respx.route(host="collector.example.net").respond(200, json={"domains": [], "total": 0})
    respx.get(DOMAINS).respond(302, headers={"Location": "https://collector.example.net/inbound/v1/domains"})
    with pytest.raises(RedirectRefused, match="not allowlisted"):
        adapter().list_domains()
    respx.post(DOMAINS).respond(307, headers={"Location": "https://collector.example.net/inbound/v1/domains"})
    with pytest.raises(RedirectRefused, match="not allowlisted"):
        adapter().provision_domain("example.com", [MAIL1])
    assert elsewhere.call_count == 0


@respx.mock
def test_six_megabyte_body_is_refused_by_the_size_cap() -> None:
    big = b'{"domains": [], "total": 0, "pad": "' + b"x" * (6 * 1024 * 1024) + b'"}'
    respx.get(DOMAINS).respond(200, content=big, headers=JSON)
    with pytest.raises(VendorResponseError, match=r"over the cap|over 5242880 bytes"):
        adapter().list_domains()


@respx.mock
def test_base_url_may_point_at_the_simulator_and_its_origin_only() -> None:
    sim = "http://127.0.0.1:8765/mailchannels/inbound/v1"
    route = respx.get(f"{sim}/domains").respond(200, json={"domains": [], "total": 0})
    assert adapter(base_url=sim).list_domains() == []
    assert route.call_count == 1
    with pytest.raises(VendorError):
        adapter(base_url=sim).http.get_json(DOMAINS)
    with pytest.raises(ValueError, match="https"):
        adapter(base_url="http://api.mailchannels.net/inbound/v1")


# --- the key ----------------------------------------------------------------------------------------------


def test_bad_keys_are_refused_without_echoing_them() -> None:
    for key in ("", "canary space", "canary\nbreak", "canary" * 50, "canary\ttab", "canaryé"):
        with pytest.raises(ValueError) as caught:
            MailChannelsAdapter(key)
        assert "MailChannels API key must be" in str(caught.value)
        assert "canary" not in str(caught.value)


def test_the_key_holder_and_the_adapter_are_never_pickled() -> None:
    mc = adapter()
    for thing in (mc, mc._auth):
        with pytest.raises(TypeError, match="never pickled"):
            pickle.dumps(thing)
    with pytest.raises(TypeError, match="never pickled"):
        copy.deepcopy(mc._auth)
    assert KEY not in repr(mc._auth)


@respx.mock
def test_key_never_in_errors_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Every failure path, with a vendor that echoes the key back (in either case) in its error body."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    echo = {"code": 401, "message": f"invalid key {KEY}", "errors": [KEY.upper(), f"X-API-Key: {KEY}"]}
    answers = [
        httpx.Response(401, json=echo),
        httpx.Response(403, json=echo),
        httpx.Response(404, json=echo),
        httpx.Response(409, json=echo),
        httpx.Response(400, json=echo),
        httpx.Response(503, json=echo, headers={"Retry-After": "1"}),
        httpx.Response(500, json=echo),
        httpx.Response(429, json=echo, headers={"Retry-After": "1"}),
        httpx.Response(429, json=echo, headers={"Retry-After": "1"}),
        httpx.Response(200, content=b"{", headers=JSON),
        httpx.Response(200, content=b"<html/>", headers={"Content-Type": "text/html"}),
        httpx.Response(302, headers={"Location": f"https://collector.example.net/?k={KEY}"}),
        httpx.Response(200, content=b"[" + b" " * (6 * 1024 * 1024) + b"]", headers=JSON),
    ]
    respx.post(DOMAINS).mock(side_effect=answers)
    mc = adapter(retry=RetryPolicy(max_attempts=2, base_s=0, cap_s=0), sleep=lambda _s: None)
    errors: list[VendorError] = []
    for _ in range(11):
        with pytest.raises(VendorError) as caught:
            mc.provision_domain("example.com", [MAIL1])
        errors.append(caught.value)
    # The 503 and the first 429 were retried once each (rate-limit refusals: nothing was done); the 500
    # met by the 503's retry was not retried (a POST).
    assert len(respx.calls) == len(answers)
    assert [type(e).__name__ for e in errors] == [
        "MailChannelsAuthError",
        "MailChannelsAuthError",
        "MailChannelsNotFound",
        "MailChannelsDomainTaken",
        "MailChannelsPermanentError",
        "MailChannelsTransientError",
        "MailChannelsRateLimited",
        "VendorResponseError",
        "VendorResponseError",
        "RedirectRefused",
        "VendorResponseError",
    ]
    assert "invalid key [redacted]" in str(errors[0])
    texts = [repr(mc), repr(vars(mc)), repr(mc._auth)]
    for error in errors:
        texts += [str(error), repr(error), repr(error.args), repr(vars(error)), repr(getattr(error, "details", None))]
    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(record.args) for record in caplog.records]
    joined = "\n".join(texts)
    assert "[redacted]" in joined
    assert caplog.records, "the retries and httpx request lines should have been logged"
    assert KEY.lower() not in joined.lower()
    assert KEY.lower() not in caplog.text.lower()
