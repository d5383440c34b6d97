"""Namecheap adapter: recorded and documented XML replayed with respx, its error numbers, hostile answers."""

from __future__ import annotations

import json
import logging
import pickle
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from mspkit.http import (
    InsecureRedirect,
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
from vendor_sync.adapters.namecheap import (
    NAMECHEAP_API,
    NAMECHEAP_SANDBOX_API,
    NamecheapAdapter,
    lifecycle,
)
from vendor_sync.adapters.registrar_types import RegistrarAdapter, RegistrarContact, RegistrarDomain

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "namecheap"
API = NAMECHEAP_API
SANDBOX = NAMECHEAP_SANDBOX_API
USER = "mspops"
KEY = "canaryKEY7f3aZq81Lx0b"
CLIENT_IP = "203.0.113.10"
XML = {"Content-Type": "text/xml; charset=utf-8"}
NS = "http://api.namecheap.com/xml.response"
AUTH = {"ApiUser": USER, "ApiKey": KEY, "UserName": USER, "ClientIp": CLIENT_IP}
ROLE_TAGS = ("Registrant", "Tech", "Admin", "AuxBilling")
CONTACT_FIELDS = (
    "OrganizationName JobTitle FirstName LastName Address1 Address2 City StateProvince StateProvinceChoice "
    "PostalCode Country Phone PhoneExt Fax EmailAddress"
).split()


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def cassette(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text("utf-8"))
    return data


def doc(name: str, domain: str | None = None) -> str:
    """A fixture built from Namecheap's documented example, its `Domain=` attribute set to `domain`."""
    body: str = cassette(name)["body"]
    return re.sub(r'\bDomain="[^"]*"', f'Domain="{domain}"', body) if domain else body


def envelope(command: str, inner: str, status: str = "OK", namespace: str = NS) -> str:
    xmlns = f' xmlns="{namespace}"' if namespace else ""
    return (
        f'<?xml version="1.0" encoding="utf-8"?><ApiResponse Status="{status}"{xmlns}><Errors />'
        f'<CommandResponse Type="{command}">{inner}</CommandResponse></ApiResponse>'
    )


def error_xml(*errors: tuple[str, str]) -> str:
    items = "".join(f'<Error Number="{number}">{text}</Error>' for number, text in errors)
    head = '<?xml version="1.0" encoding="utf-8"?>'
    return f'{head}<ApiResponse Status="ERROR" xmlns="{NS}"><Errors>{items}</Errors></ApiResponse>'


def list_page(names: list[str], total: int | None) -> str:
    items = "".join(
        f'<Domain ID="{n + 1}" Name="{name}" User="owner" Created="01/02/2020" Expires="01/02/2030" IsExpired="false"'
        ' IsLocked="true" AutoRenew="true" WhoisGuard="ENABLED" IsPremium="false" IsOurDNS="true"/>'
        for n, name in enumerate(names)
    )
    paging = "" if total is None else f"<Paging><TotalItems>{total}</TotalItems></Paging>"
    return envelope("namecheap.domains.getList", f"<DomainGetListResult>{items}</DomainGetListResult>{paging}")


class Vendor:
    """A respx side effect answering each Namecheap Command with its body (or response), in call order."""

    def __init__(self, answers: Mapping[str, str | httpx.Response]) -> None:
        self.answers = answers
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[request.url.params["Command"]]
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, text=answer, headers=XML)

    @property
    def commands(self) -> list[str]:
        return [r.url.params["Command"] for r in self.requests]

    def params(self, index: int) -> dict[str, str]:
        return dict(self.requests[index].url.params)


def adapter(**options: Any) -> NamecheapAdapter:
    options.setdefault("retry", RetryPolicy(max_attempts=1))
    options.setdefault("client_ip", CLIENT_IP)
    return NamecheapAdapter(USER, KEY, **options)


def contact(role: str, **fields: str) -> RegistrarContact:
    return RegistrarContact(role=role, **fields)  # type: ignore[arg-type]


DOC_CONTACT = dict(
    name_first="John",
    name_last="Smith",
    organization="NameCheap.com",
    email="john@example.com",
    phone="+1.5555550100",
)


def test_adapter_satisfies_the_registrar_protocol() -> None:
    namecheap = adapter()
    assert isinstance(namecheap, RegistrarAdapter)
    assert namecheap.capabilities == frozenset({"domains.read", "nameservers.write", "contacts.write", "lock.write"})
    assert namecheap.vendor == "namecheap"


@respx.mock
def test_list_replays_documented_example_and_sends_the_global_parameters() -> None:
    """domains_getList.json: three domains, MM/DD/YYYY dates, WhoisGuard ENABLED/NOTPRESENT; TotalItems says 2."""
    route = respx.get(API).respond(200, text=doc("domains_getList.json"), headers=XML)
    domains = adapter().list_domains()
    assert [d.name for d in domains] == ["domain1.com", "domain2.com", "domain3.com"]
    assert domains[0] == RegistrarDomain(
        name="domain1.com",
        status="OK",
        lifecycle="active",
        vendor_id="127",
        expires_at=utc(2022, 2, 15),
        created_at=utc(2016, 2, 15),
        renew_auto=False,
        locked=False,
        privacy=True,
        nameservers=None,  # a listing does not carry them
        contacts=None,
    )
    assert (domains[1].renew_auto, domains[1].privacy, domains[1].expires_at) == (True, False, utc(2023, 4, 28))
    # The documented page lists three domains under TotalItems 2: more than promised is kept, not dropped.
    assert (domains[2].vendor_id, domains[2].privacy, domains[2].created_at) == ("385", True, utc(2016, 5, 22))
    (request,) = [call.request for call in route.calls]
    assert request.method == "GET"
    assert dict(request.url.params) == {**AUTH, "Command": "namecheap.domains.getList", "Page": "1", "PageSize": "100"}


@respx.mock
def test_pagination_follows_total_items_over_three_pages() -> None:
    names = [f"d{n:02}.example.com" for n in range(25)]
    pages = [list_page(names[i : i + 10], 25) for i in (0, 10, 20)]
    route = respx.get(API).mock(side_effect=[httpx.Response(200, text=p, headers=XML) for p in pages])
    domains = adapter(page_size=10).list_domains()
    assert [d.name for d in domains] == names
    assert [(c.request.url.params["Page"], c.request.url.params["PageSize"]) for c in route.calls] == [
        ("1", "10"),
        ("2", "10"),
        ("3", "10"),
    ]
    assert all(d.locked is True and d.expires_at == utc(2030, 1, 2) for d in domains)


@respx.mock
def test_pagination_refuses_rather_than_returning_a_partial_list() -> None:
    ten = [f"d{n}.example.com" for n in range(10)]
    route = respx.get(API).respond(200, text=list_page(ten, 5000), headers=XML)
    with pytest.raises(VendorResponseError, match="more than 3 pages"):
        adapter(page_size=10, max_pages=3).list_domains()
    assert route.call_count == 1  # refused as soon as TotalItems said so

    answers = [list_page(ten, 25), list_page([], 25)]
    respx.get(API).mock(side_effect=[httpx.Response(200, text=a, headers=XML) for a in answers])
    with pytest.raises(VendorResponseError, match="page 2 is empty, Paging says 25"):
        adapter(page_size=10).list_domains()

    # The last page came back short of what TotalItems promised.
    answers = [list_page(ten, 15), list_page([], 15)]
    respx.get(API).mock(side_effect=[httpx.Response(200, text=a, headers=XML) for a in answers])
    with pytest.raises(VendorResponseError, match="listed 10 of 15"):
        adapter(page_size=10).list_domains()

    # The list shifted while paging: page 2 repeats page 1, so only 10 distinct names of 20.
    respx.get(API).mock(side_effect=[httpx.Response(200, text=list_page(ten, 20), headers=XML)] * 2)
    with pytest.raises(VendorResponseError, match="listed 10 of 20"):
        adapter(page_size=10).list_domains()

    respx.get(API).respond(200, text=list_page(ten, None), headers=XML)
    with pytest.raises(VendorResponseError, match="TotalItems"):
        adapter(page_size=10).list_domains()
    with pytest.raises(ValueError, match="page_size"):
        adapter(page_size=101)


@respx.mock
@pytest.mark.parametrize(
    ("recording", "domain", "vendor_id", "created", "expires", "privacy"),
    [
        ("test_provider_authenticate.json", "unittest2.dev", "589667", utc(2020, 5, 20), utc(2021, 5, 20), True),
        (
            "test_provider_authenticate_2018.json",
            "example-aptise.com",
            "277432",
            utc(2018, 3, 25),
            utc(2019, 3, 25),
            False,
        ),
    ],
)
def test_get_domain_replays_recorded_getinfo(
    recording: str, domain: str, vendor_id: str, created: datetime, expires: datetime, privacy: bool
) -> None:
    """The recorded getInfo (sandbox) plus the documented dns.getList, getContacts and getRegistrarLock."""
    recorded = cassette(recording)
    vendor = Vendor(
        {
            "namecheap.domains.getInfo": recorded["body"],
            "namecheap.domains.dns.getList": doc("domains_dns_getList.json", domain),
            "namecheap.domains.getContacts": doc("domains_getContacts.json", domain),
            "namecheap.domains.getRegistrarLock": doc("domains_getRegistrarLock.json", domain),
        }
    )
    respx.get(SANDBOX).mock(side_effect=vendor)
    result = adapter(base_url=SANDBOX).get_domain(domain.upper() + ".")
    assert vendor.commands == [
        "namecheap.domains.getInfo",
        "namecheap.domains.dns.getList",
        "namecheap.domains.getContacts",
        "namecheap.domains.getRegistrarLock",
    ]
    # The request the recording answered: same host, path, Command and DomainName (ClientIP was redacted).
    uri = httpx.URL(recorded["request"]["uri"])
    sent = vendor.requests[0].url
    assert (sent.host, sent.path) == (uri.host, uri.path)
    assert vendor.params(0) == {**AUTH, "Command": uri.params["Command"], "DomainName": uri.params["DomainName"]}
    sld, tld = domain.split(".")
    assert vendor.params(1) == {**AUTH, "Command": "namecheap.domains.dns.getList", "SLD": sld, "TLD": tld}
    assert vendor.params(3) == {**AUTH, "Command": "namecheap.domains.getRegistrarLock", "DomainName": domain}
    assert all(r.method == "GET" for r in vendor.requests)
    assert result == RegistrarDomain(
        name=domain,
        status="OK",
        lifecycle="active",
        vendor_id=vendor_id,
        expires_at=expires,
        created_at=created,
        privacy=privacy,
        locked=False,
        # From dns.getList, not getInfo's DnsDetails (which list dns1/dns2.registrar-servers.com).
        nameservers=("dns1.name-servers.com", "dns2.name-servers.com"),
        contacts=tuple(contact(role, **DOC_CONTACT) for role in ("registrant", "admin", "tech", "billing")),
    )
    # WhoisGuardContact (the privacy service's own contacts) is not the domain's.
    assert "Withheld" not in repr(result)


@respx.mock
def test_privacy_service_contacts_are_never_taken_for_the_domains() -> None:
    """WhoisGuardContact moved ahead of the roles, and the domain's own Registrant removed."""
    body = doc("domains_getContacts.json", "example.com")
    privacy = re.search(r"\s*<WhoisGuardContact>.*</WhoisGuardContact>", body, flags=re.S)
    assert privacy is not None
    head = '<DomainContactsResult Domain="example.com" domainnameid="3152456">'
    body = body.replace(privacy.group(0), "").replace(head, head + privacy.group(0))
    body = re.sub(r'<Registrant ReadOnly="false">.*?</Registrant>', "", body, flags=re.S)
    vendor = Vendor(
        {
            "namecheap.domains.getInfo": cassette("test_provider_authenticate.json")["body"],
            "namecheap.domains.dns.getList": doc("domains_dns_getList.json", "unittest2.dev"),
            "namecheap.domains.getContacts": body.replace('Domain="example.com"', 'Domain="unittest2.dev"'),
            "namecheap.domains.getRegistrarLock": doc("domains_getRegistrarLock.json", "unittest2.dev"),
        }
    )
    respx.get(API).mock(side_effect=vendor)
    domain = adapter().get_domain("unittest2.dev")
    assert domain.contacts is not None
    assert [c.role for c in domain.contacts] == ["admin", "tech", "billing"]
    assert "Withheld" not in repr(domain)


@respx.mock
def test_recorded_error_answer_is_not_found_with_namecheaps_number() -> None:
    """test_provider_authenticate_with_unmanaged_domain_should_fail.json: HTTP 200, Status="ERROR", 2030166."""
    recorded = cassette("test_provider_authenticate_with_unmanaged_domain_should_fail.json")
    route = respx.get(SANDBOX).respond(
        recorded["status"], text=recorded["body"], headers={"Content-Type": recorded["headers"]["Content-Type"]}
    )
    with pytest.raises(VendorNotFound) as caught:
        adapter(base_url=SANDBOX).get_domain("thisisadomainidonotown.com")
    error = caught.value
    assert type(error) is VendorNotFound
    assert (error.vendor, error.vendor_code, error.status) == ("namecheap", "2030166", 404)
    assert str(error) == "namecheap: namecheap.domains.getInfo error 2030166: Domain is invalid"
    assert route.call_count == 1  # nothing else asked about a domain the account lacks


@respx.mock
def test_get_domain_refuses_an_answer_for_another_domain_and_bad_names() -> None:
    vendor = Vendor(
        {
            "namecheap.domains.getInfo": cassette("test_provider_authenticate.json")["body"],
            "namecheap.domains.dns.getList": doc("domains_dns_getList.json", "other.com"),
        }
    )
    respx.get(API).mock(side_effect=vendor)
    with pytest.raises(VendorResponseError, match="another domain"):
        adapter().get_domain("example.com")  # getInfo answered for unittest2.dev
    with pytest.raises(VendorResponseError, match="another domain"):
        adapter().get_domain("unittest2.dev")  # dns.getList answered for other.com
    assert vendor.commands == ["namecheap.domains.getInfo"] * 2 + ["namecheap.domains.dns.getList"]
    with pytest.raises(VendorPermanentError):
        adapter().get_domain("not a domain/../x")
    assert len(vendor.requests) == 3


@respx.mock
def test_set_nameservers_sends_setcustom_with_sld_tld_and_a_comma_list() -> None:
    vendor = Vendor({"namecheap.domains.dns.setCustom": doc("domains_dns_setCustom.json", "example.co.uk")})
    respx.get(API).mock(side_effect=vendor)
    adapter().set_nameservers("Example.CO.UK.", ["NS1.Example.net.", "ns2.example.net", "ns1.example.net"])
    assert vendor.params(0) == {
        **AUTH,
        "Command": "namecheap.domains.dns.setCustom",
        "SLD": "example",
        "TLD": "co.uk",
        "Nameservers": "ns1.example.net,ns2.example.net",
    }
    assert vendor.requests[0].method == "GET"
    for bad in ([], ["not a host name"], [f"ns{n}.example.net" for n in range(14)]):
        with pytest.raises(VendorPermanentError):
            adapter().set_nameservers("example.co.uk", bad)
    assert len(vendor.requests) == 1  # refused before any call

    unconfirmed = doc("domains_dns_setCustom.json", "example.co.uk").replace('Updated="true"', 'Updated="false"')
    respx.get(API).respond(200, text=unconfirmed, headers=XML)
    with pytest.raises(VendorResponseError, match="not confirmed"):
        adapter().set_nameservers("example.co.uk", ["ns1.example.net"])


@respx.mock
@pytest.mark.parametrize(("locked", "action"), [(True, "LOCK"), (False, "UNLOCK")])
def test_set_lock_sends_the_lock_action(locked: bool, action: str) -> None:
    vendor = Vendor({"namecheap.domains.setRegistrarLock": doc("domains_setRegistrarLock.json", "example.com")})
    respx.get(API).mock(side_effect=vendor)
    adapter().set_lock("example.com", locked)
    assert vendor.params(0) == {
        **AUTH,
        "Command": "namecheap.domains.setRegistrarLock",
        "DomainName": "example.com",
        "LockAction": action,
    }
    failed = doc("domains_setRegistrarLock.json", "example.com").replace('IsSuccess="true"', 'IsSuccess="false"')
    respx.get(API).respond(200, text=failed, headers=XML)
    with pytest.raises(VendorResponseError, match="not confirmed"):
        adapter().set_lock("example.com", locked)


def _contacts_answer(body: str | None = None) -> Vendor:
    return Vendor(
        {
            "namecheap.domains.getContacts": body or doc("domains_getContacts.json", "example.com"),
            "namecheap.domains.setContacts": doc("domains_setContacts.json", "example.com"),
        }
    )


@respx.mock
def test_set_contacts_overlays_the_changes_on_the_current_contacts() -> None:
    # The documented roles are identical; give Tech its own city to show each role keeps its own address.
    current = re.sub(
        r"(<Tech .*?)<City>california</City>",
        r"\1<City>Phoenix</City>",
        doc("domains_getContacts.json", "example.com"),
        flags=re.S,
    )
    vendor = _contacts_answer(current)
    respx.get(API).mock(side_effect=vendor)
    adapter().set_contacts(
        "example.com",
        [contact("registrant", name_first="Jane", email="jane@example.org"), contact("tech", phone="+44.2071234567")],
    )
    assert vendor.commands == ["namecheap.domains.getContacts", "namecheap.domains.setContacts"]
    sent = vendor.params(1)
    # Every field of every role goes back (setContacts replaces all four), so nothing is wiped.
    assert set(sent) == {*AUTH, "Command", "DomainName"} | {
        tag + field for tag in ROLE_TAGS for field in CONTACT_FIELDS
    }
    assert sent["DomainName"] == "example.com"
    assert (sent["RegistrantFirstName"], sent["RegistrantEmailAddress"]) == ("Jane", "jane@example.org")
    assert sent["TechPhone"] == "+44.2071234567"
    assert (sent["RegistrantLastName"], sent["RegistrantPhone"], sent["TechFirstName"]) == (
        "Smith",
        "+1.5555550100",
        "John",
    )
    assert (sent["AdminEmailAddress"], sent["AuxBillingEmailAddress"]) == ("john@example.com", "john@example.com")
    assert (sent["TechCity"], sent["RegistrantCity"], sent["AuxBillingCity"]) == ("Phoenix", "california", "california")
    for tag in ROLE_TAGS:
        assert (sent[f"{tag}Address1"], sent[f"{tag}Address2"], sent[f"{tag}PostalCode"]) == (
            "8939 S. cross Blvd",
            "ca 110-708",
            "90045",
        )
        assert (sent[f"{tag}StateProvince"], sent[f"{tag}Country"], sent[f"{tag}JobTitle"]) == (
            "ca",
            "US",
            "Software Developer",
        )
    assert not any("Withheld" in value or "Kalkofnsvegur" in value for value in sent.values())


@respx.mock
def test_set_contacts_refuses_to_send_a_set_that_would_wipe_a_role() -> None:
    without_address = re.sub(
        r"(<Tech .*?)<Address1>[^<]*</Address1>", r"\1", doc("domains_getContacts.json", "example.com"), flags=re.S
    )
    vendor = _contacts_answer(without_address)
    respx.get(API).mock(side_effect=vendor)
    with pytest.raises(VendorPermanentError, match="tech contact lacks Address1; nothing sent"):
        adapter().set_contacts("example.com", [contact("registrant", name_first="Jane")])
    assert vendor.commands == ["namecheap.domains.getContacts"]

    read_only = doc("domains_getContacts.json", "example.com").replace(
        '<Registrant ReadOnly="false">', '<Registrant ReadOnly="true">'
    )
    vendor = _contacts_answer(read_only)
    respx.get(API).mock(side_effect=vendor)
    with pytest.raises(VendorPermanentError, match="registrant contact is read-only"):
        adapter().set_contacts("example.com", [contact("registrant", name_first="Jane")])
    assert vendor.commands == ["namecheap.domains.getContacts"]


@respx.mock
@pytest.mark.parametrize(
    "contacts",
    [
        [],
        [contact("tech", phone="12345")],
        [contact("tech", email="not-an-address")],
        [contact("admin", name_first="Jane\r\nBcc: x")],
        [contact("admin", name_last="   ")],
        [contact("admin", name_first="A"), contact("admin", name_last="B")],
        [contact("owner", name_first="A")],
    ],
)
def test_set_contacts_checks_the_changes_before_any_call(contacts: list[RegistrarContact]) -> None:
    route = respx.get(API).respond(200, text=doc("domains_getContacts.json", "example.com"), headers=XML)
    with pytest.raises(VendorPermanentError):
        adapter().set_contacts("example.com", contacts)
    assert route.call_count == 0


NAMECHEAP_ERRORS: list[tuple[str, str, type[VendorError], int]] = [
    ("1011102", "API Key is invalid or API access has not been enabled", VendorAuthError, 401),
    ("1011150", f"Invalid request IP: {CLIENT_IP}", VendorAuthError, 401),
    ("1016103", "Parameter UserName is unauthorized", VendorAuthError, 401),
    ("2019166", "Domain not found", VendorNotFound, 404),
    ("2016166", "Domain is not associated with your account", VendorNotFound, 404),
    ("500000", "Too many requests", RateLimited, 429),
    ("3050900", "Unknown error from Enom", VendorTransientError, 503),
    ("2015278", "Invalid data specified for LockAction", VendorPermanentError, 400),
]


@respx.mock
@pytest.mark.parametrize(("number", "text", "kit_class", "status"), NAMECHEAP_ERRORS)
def test_namecheap_error_numbers_map_once_to_the_kits_errors(
    number: str, text: str, kit_class: type[VendorError], status: int
) -> None:
    route = respx.get(API).respond(200, text=error_xml((number, text)), headers=XML)
    with pytest.raises(VendorError) as caught:
        adapter().set_lock("example.com", True)
    error = caught.value
    assert type(error) is kit_class
    assert (error.vendor_code, error.status, error.vendor) == (number, status, "namecheap")
    assert str(error) == f"namecheap: namecheap.domains.setRegistrarLock error {number}: {text}"
    assert route.call_count == 1  # the kit's retry policy is one attempt here


@respx.mock
def test_too_many_requests_words_win_and_extra_errors_are_counted() -> None:
    respx.get(API).respond(200, text=error_xml(("9999999", "Too Many Requests"), ("1", "x")), headers=XML)
    with pytest.raises(RateLimited) as caught:
        adapter().list_domains()
    assert caught.value.vendor_code == "9999999"
    assert str(caught.value).endswith("Too Many Requests (and 1 more)")
    respx.get(API).respond(200, text=error_xml(("9999999", "Something new")), headers=XML)
    with pytest.raises(VendorPermanentError) as unknown:
        adapter().list_domains()
    assert type(unknown.value) is VendorPermanentError


HTTP_ERRORS: list[tuple[int, type[VendorError]]] = [
    (401, VendorAuthError),
    (403, VendorAuthError),
    (404, VendorNotFound),
    (409, VendorConflict),
]


@respx.mock
@pytest.mark.parametrize(("status", "kit_class"), HTTP_ERRORS)
def test_http_error_statuses_map_through_the_kit_without_the_raw_body(
    status: int, kit_class: type[VendorError]
) -> None:
    echo = {"error": f"bad key {KEY}"}
    route = respx.get(API).respond(status, json=echo)
    with pytest.raises(VendorError) as caught:
        adapter().get_domain("example.com")
    error = caught.value
    assert type(error) is kit_class
    assert error.status == status and error.vendor == "namecheap"
    assert error.body is None  # the kit read the JSON body; it may echo the key, so it is dropped
    assert str(error) == f"namecheap: HTTP {status} from {API}"
    assert route.call_count == 1  # 4xx is never retried


@respx.mock
def test_405_is_namecheaps_rate_limit_and_is_retried() -> None:
    route = respx.get(API)
    route.side_effect = [
        httpx.Response(405, text="<html>Method Not Allowed</html>", headers={"Content-Type": "text/html"}),
        httpx.Response(200, text=list_page(["a.com"], 1), headers=XML),
    ]
    assert [d.name for d in adapter(retry=RetryPolicy(max_attempts=2, base_s=0, cap_s=0)).list_domains()] == ["a.com"]
    assert route.call_count == 2
    respx.get(API).respond(405, text="<html>Method Not Allowed</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(RateLimited) as caught:
        adapter().list_domains()
    assert caught.value.status == 405 and caught.value.local is False


@respx.mock
def test_429_with_retry_after_seconds() -> None:
    respx.get(API).respond(429, text="slow down", headers={"Retry-After": "30"})
    with pytest.raises(RateLimited) as caught:
        adapter().list_domains()
    assert caught.value.retry_after == 30.0 and caught.value.status == 429 and caught.value.local is False


@respx.mock
def test_429_with_retry_after_http_date() -> None:
    when = format_datetime(datetime.fromtimestamp(time.time() + 120, tz=UTC), usegmt=True)
    respx.get(API).respond(429, text="slow down", headers={"Retry-After": when})
    with pytest.raises(RateLimited) as caught:
        adapter().list_domains()
    assert caught.value.retry_after is not None and 100 < caught.value.retry_after <= 120


@respx.mock
def test_429_is_retried_after_the_delay_it_asks_for() -> None:
    sleeps: list[float] = []
    route = respx.get(API)
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(200, text=list_page(["a.com"], 1), headers=XML),
    ]
    domains = adapter(retry=RetryPolicy(max_attempts=2), sleep=sleeps.append).list_domains()
    assert [d.name for d in domains] == ["a.com"] and route.call_count == 2
    assert len(sleeps) == 1 and sleeps[0] >= 3.0


BOMB = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10 if n > 1 else "&lol;" * 10}">' for n in range(1, 10))
    + f']><ApiResponse Status="OK" xmlns="{NS}"><Errors>&lol9;</Errors></ApiResponse>'
)
# A valid answer but for its DTD: a parser that accepted DTDs would return domain1.com.
SMALL_ENTITY = list_page(["&n;"], 1).replace("?>", '?><!DOCTYPE ApiResponse [<!ENTITY n "domain1.com">]>', 1)
XXE = list_page(["&x;"], 1).replace("?>", '?><!DOCTYPE ApiResponse [<!ENTITY x SYSTEM "file:///etc/passwd">]>', 1)
HOSTILE: list[tuple[str, str, str]] = [
    ("malformed", f'<ApiResponse Status="OK" xmlns="{NS}"><Errors>', "malformed XML"),
    ("billion laughs", BOMB, "DTDForbidden"),
    ("internal entity", SMALL_ENTITY, "DTDForbidden"),
    ("external entity", XXE, "DTDForbidden"),
    ("html as text/xml", "<!doctype html><html><body>Maintenance</body></html>", "DTDForbidden|malformed"),
    (
        "other namespace",
        envelope("namecheap.domains.getList", "", namespace="http://evil.example/ns"),
        "not a Namecheap",
    ),
    ("no namespace", envelope("namecheap.domains.getList", "", namespace=""), "not a Namecheap"),
    ("odd status", envelope("namecheap.domains.getList", "", status="MAYBE"), "no OK CommandResponse"),
    ("no CommandResponse", f'<ApiResponse Status="OK" xmlns="{NS}"><Errors /></ApiResponse>', "no OK CommandResponse"),
    ("another command", envelope("namecheap.domains.getInfo", ""), "another command"),
    ("error without number", f'<ApiResponse Status="ERROR" xmlns="{NS}"><Errors /></ApiResponse>', "without an Error"),
]


@respx.mock
@pytest.mark.parametrize(("label", "body", "message"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_xml_is_refused(label: str, body: str, message: str) -> None:
    respx.get(API).respond(200, text=body, headers=XML)
    with pytest.raises(VendorResponseError, match=message):
        adapter().list_domains()


@respx.mock
def test_html_with_a_200_is_refused() -> None:
    html = "<!DOCTYPE html><html><body>Maintenance</body></html>"
    respx.get(API).respond(200, text=html, headers={"Content-Type": "text/html; charset=utf-8"})
    with pytest.raises(
        VendorResponseError, match=r"expected XML from https://api\.namecheap\.com/xml\.response, got text/html"
    ):
        adapter().list_domains()


@respx.mock
def test_redirect_to_a_host_not_allowlisted_is_refused_and_not_followed() -> None:
    elsewhere = respx.get("https://collector.example.net/xml.response").respond(200, text=list_page([], 0))
    respx.get(API).respond(302, headers={"Location": "https://collector.example.net/xml.response"})
    with pytest.raises(RedirectRefused, match="not allowlisted"):
        adapter().list_domains()
    assert elsewhere.call_count == 0


@respx.mock
def test_six_megabyte_body_is_refused_by_the_size_cap() -> None:
    big = list_page([], 0).replace("<Errors />", "<Errors>" + " " * (6 * 1024 * 1024) + "</Errors>")
    respx.get(API).respond(200, text=big, headers=XML)
    with pytest.raises(VendorResponseError, match=r"over the cap|over 5242880 bytes"):
        adapter().list_domains()


def test_bad_settings_are_refused_without_echoing_the_key() -> None:
    bad = [
        dict(api_user="", api_key=KEY, client_ip=CLIENT_IP),
        dict(api_user="has space", api_key=KEY, client_ip=CLIENT_IP),
        dict(api_user=USER, api_key="short", client_ip=CLIENT_IP),
        dict(api_user=USER, api_key=KEY + "&Command=x", client_ip=CLIENT_IP),
        dict(api_user=USER, api_key=KEY, client_ip="2001:db8::1"),
        dict(api_user=USER, api_key=KEY, client_ip="203.0.113.10", username="a\nb"),
        dict(api_user=USER, api_key=KEY, client_ip=CLIENT_IP, base_url="http://api.namecheap.com/xml.response"),
        dict(api_user=USER, api_key=KEY, client_ip=CLIENT_IP, base_url=f"{API}?ApiKey={KEY}"),
    ]
    for settings in bad:
        with pytest.raises(ValueError) as caught:
            NamecheapAdapter(**settings)  # type: ignore[arg-type]
        assert KEY not in str(caught.value)
    # The simulator runs on loopback over plain http.
    assert adapter(base_url="http://127.0.0.1:8765/namecheap/xml.response").base_url.startswith("http://127.0.0.1")


@respx.mock
def test_api_key_never_in_errors_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Every failure path, with a vendor that echoes the key back; httpx itself logs at DEBUG here."""
    caplog.set_level(logging.DEBUG)
    # Importing vendor_sync.api (other test modules do) quiets httpx to WARNING; here it logs every URL.
    caplog.set_level(logging.DEBUG, logger="httpx")
    answers = [
        httpx.Response(200, text=error_xml(("1011102", f"API Key {KEY} is invalid")), headers=XML),
        httpx.Response(200, text=error_xml(("2019166", f"Domain not found ({KEY.lower()})")), headers=XML),
        httpx.Response(200, text=error_xml(("500000", "Too many requests")), headers=XML),
        httpx.Response(401, json={"error": KEY}),
        httpx.Response(403, json={"error": KEY}),
        httpx.Response(404, json={"error": KEY}),
        httpx.Response(409, json={"error": KEY}),
        httpx.Response(429, json={"error": KEY}, headers={"Retry-After": "1"}),
        httpx.Response(500, json={"error": KEY}),
        httpx.Response(200, text="<ApiResponse", headers=XML),
        httpx.Response(200, text=BOMB, headers=XML),
        httpx.Response(200, text="<html/>", headers={"Content-Type": "text/html"}),
        httpx.Response(302, headers={"Location": f"https://collector.example.net/?ApiKey={KEY}"}),
        httpx.Response(302, headers={"Location": f"http://api.namecheap.com/xml.response?ApiKey={KEY}"}),
        httpx.Response(200, text=list_page([], 0).replace("<Errors />", " " * (6 * 1024 * 1024)), headers=XML),
    ]
    route = respx.get(API).mock(side_effect=answers)
    namecheap = adapter(retry=RetryPolicy(max_attempts=2, base_s=0, cap_s=0), sleep=lambda _s: None)
    errors: list[VendorError] = []
    for _ in range(len(answers) - 1):
        with pytest.raises(VendorError) as caught:
            namecheap.list_domains()
        errors.append(caught.value)
    assert route.call_count == len(answers)  # the 429 was retried once (and met the 500)
    assert isinstance(errors[12], InsecureRedirect)
    assert all(KEY in str(call.request.url) for call in route.calls)  # it was in every URL sent
    texts = [repr(namecheap), repr(namecheap.__dict__), repr(namecheap._auth)]
    for error in errors:
        texts += [str(error), repr(error), repr(error.args), repr(error.body), repr(error.__dict__)]
    texts += [record.getMessage() for record in caplog.records] + [repr(record.args) for record in caplog.records]
    joined = "\n".join(texts)
    assert "[redacted]" in joined  # the echoed key was there, and was scrubbed
    assert KEY.lower() not in joined.lower()
    httpx_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert httpx_lines and all(f"GET {API} " in line for line in httpx_lines)
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(namecheap._auth)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("OK", "active"),
        ("Ok", "active"),
        ("EXPIRED", "expired"),
        ("Expired", "expired"),
        ("Locked", "other"),
        ("", "other"),
    ],
)
def test_lifecycle(status: str, state: str) -> None:
    assert lifecycle(status) == state


@respx.mock
def test_listing_maps_expired_domains_and_odd_values() -> None:
    odd = list_page(["gone.example.com"], 1).replace('IsExpired="false"', 'IsExpired="true"')
    odd = odd.replace('Expires="01/02/2030"', 'Expires="13/45/2030"').replace('IsLocked="true"', 'IsLocked="yes"')
    respx.get(API).respond(200, text=odd, headers=XML)
    (domain,) = adapter().list_domains()
    assert (domain.status, domain.lifecycle) == ("EXPIRED", "expired")
    assert domain.expires_at is None and domain.locked is None and domain.created_at == utc(2020, 1, 2)
