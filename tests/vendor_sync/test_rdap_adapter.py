"""RDAP adapter: each recorded response replayed with respx and parsed into a DomainRecord."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from mspkit.http import RetryPolicy, VendorHTTP, VendorNotFound, VendorPermanentError, VendorResponseError
from vendor_sync.adapters.base import AbuseContact, DomainRecord, DomainRegistryAdapter
from vendor_sync.adapters.rdap import InvalidDomainName, RdapClient, to_a_label
from vendor_sync.adapters.rdap_parse import parse_domain, parse_rdap_datetime

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rdap"
BOOTSTRAP_URL = "https://data.iana.org/rdap/dns.json"
RDAP = "application/rdap+json"
# Where each TLD's registry lives in these tests (a synthetic bootstrap; the fixtures carry their own URLs).
REGISTRIES = {
    "com": "https://rdap.verisign.com/com/v1/",
    "no": "https://rdap.norid.no/",
    "cz": "https://rdap.nic.cz/",
    "fr": "https://rdap.nic.fr/",
    "click": "https://rdap.uniregistry.net/rdap/",
    "example": "https://rdap.example.net/",
}
ALLOWED = [f"{httpx.URL(u).host}:443" for u in REGISTRIES.values()] + ["data.iana.org:443"]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def serve_bootstrap() -> None:
    services = [[[tld], [url]] for tld, url in REGISTRIES.items()]
    respx.get(BOOTSTRAP_URL).respond(200, json={"version": "1.0", "services": services})


def client(*, allowed: list[str] | None = None) -> RdapClient:
    http = VendorHTTP("rdap", allowed_hosts=allowed or ALLOWED, retry=RetryPolicy(max_attempts=1))
    return RdapClient(http, bootstrap_url=BOOTSTRAP_URL)


def serve_domain(url: str, body: bytes, status: int = 200) -> respx.Route:
    return respx.get(url).respond(status, content=body, headers={"Content-Type": RDAP})


def test_rdap_client_satisfies_the_adapter_protocol() -> None:
    assert isinstance(client(), DomainRegistryAdapter)


@respx.mock
def test_redaction() -> None:
    """Replays lookup_with_redaction.json: RFC 9537 removals/empty values never crash the parser."""
    serve_bootstrap()
    route = serve_domain("https://rdap.verisign.com/com/v1/domain/example.com", fixture("lookup_with_redaction.json"))
    record = client().lookup_domain("Example.COM.")
    assert route.call_count == 1
    assert record.name == "example.com" and record.unicode_name == "example.com"
    assert record.registrar == "Example Registrar Inc."
    assert record.registrar_iana_id == 1
    assert record.created_at == utc(1997, 6, 3)
    assert record.expires_at == utc(2021, 6, 3, 4)
    assert record.last_changed_at == utc(2020, 5, 28, 1, 35)
    assert record.statuses == (
        "client transfer prohibited",
        "server delete prohibited",
        "server transfer prohibited",
        "server update prohibited",
    )
    assert record.nameservers == ("ns1.example.com", "ns2.example.com")
    assert record.dnssec is False
    assert record.abuse_contact == AbuseContact(email="abuse@organization.example", phone="+1.7035555555")


@respx.mock
def test_idn_queried_by_unicode_name() -> None:
    """Replays xn--fo-5ja_example.json, asked for by its Unicode name fóo.example."""
    serve_bootstrap()
    route = serve_domain("https://rdap.example.net/domain/xn--fo-5ja.example", fixture("xn--fo-5ja_example.json"))
    record = client().lookup_domain("fóo.example")
    assert route.call_count == 1
    assert record.name == "xn--fo-5ja.example"
    assert record.unicode_name == "fóo.example"
    assert record.expires_at == utc(2016, 12, 31, 23, 59, 59)
    assert record.last_changed_at == utc(1991, 12, 31, 23, 59, 59)
    assert record.statuses == ("locked", "transfer prohibited")
    assert record.nameservers == ("ns1.example.com", "ns2.example.com")
    assert record.dnssec is True
    assert record.registrar is None and record.registrar_iana_id is None  # only a registrant entity
    assert record.abuse_contact is None


@respx.mock
def test_missing_expiration() -> None:
    """Replays data_rdap_response_domain2.json (norway.no): no expiration event, non-IANA publicIds."""
    serve_bootstrap()
    serve_domain("https://rdap.norid.no/domain/norway.no", fixture("data_rdap_response_domain2.json"))
    record = client().lookup_domain("norway.no")
    assert record.expires_at is None
    assert record.created_at == utc(2017, 1, 24, 12, 9, 23)
    assert record.last_changed_at == utc(2021, 1, 14, 5, 16, 59)
    assert record.registrar == "Domeneshop AS"
    assert record.registrar_iana_id is None
    assert record.nameservers == (
        "ns1-09.azure-dns.com",
        "ns2-09.azure-dns.net",
        "ns3-09.azure-dns.org",
        "ns4-09.azure-dns.info",
    )
    assert record.dnssec is None
    assert record.abuse_contact is None


REGISTRAR_URL = "https://rdap.markmonitor.com/rdap/domain/GOOGLE.COM"


def registrar_answer() -> dict[str, Any]:
    """A registrar answer for google.com (synthetic: no registrar response was recorded)."""
    return {
        "objectClassName": "domain",
        "ldhName": "google.com",
        "events": [
            {"eventAction": "registration", "eventDate": "1997-09-15T07:00:00+0000"},
            {"eventAction": "last changed", "eventDate": "2019-09-09T15:39:04Z"},
        ],
        "entities": [
            {
                "objectClassName": "entity",
                "roles": ["registrar"],
                "publicIds": [{"type": "IANA Registrar ID", "identifier": "292"}],
                "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", "MarkMonitor Inc."]]],
            }
        ],
        "secureDNS": {"delegationSigned": False},
    }


@respx.mock
def test_thin_registry_follows_related_link() -> None:
    """Replays data_rdap_response_domain1.json (GOOGLE.COM, thin .com) plus a registrar answer via `related`."""
    serve_bootstrap()
    serve_domain("https://rdap.verisign.com/com/v1/domain/google.com", fixture("data_rdap_response_domain1.json"))
    registrar = respx.get(REGISTRAR_URL).respond(200, json=registrar_answer())
    record = client(allowed=[*ALLOWED, "rdap.markmonitor.com:443"]).lookup_domain("google.com")
    assert registrar.call_count == 1
    assert record.registrar_data == "followed"
    assert record.name == "google.com"  # the registry's upper-case ldhName is normalised
    assert record.registrar == "MarkMonitor Inc." and record.registrar_iana_id == 292
    assert record.created_at == utc(1997, 9, 15, 4)  # the registry stays authoritative
    assert record.expires_at == utc(2028, 9, 14, 4)
    assert record.last_changed_at == utc(2019, 9, 9, 15, 39, 4)  # only the registrar has it
    assert record.nameservers == ("ns1.google.com", "ns2.google.com", "ns3.google.com", "ns4.google.com")
    assert len(record.statuses) == 6
    # The registry's secureDNS appears twice (false, then true): ambiguous, so the registrar's answer is used.
    assert record.dnssec is False
    assert record.abuse_contact == AbuseContact(email="abusecomplaints@markmonitor.com", phone="+1.2083895740")
    assert len(record.sources) == 2


@respx.mock
def test_related_link_not_allowlisted_keeps_registry_data() -> None:
    """Replays data_rdap_response_domain1.json with the registrar host outside the allowlist."""
    serve_bootstrap()
    serve_domain("https://rdap.verisign.com/com/v1/domain/google.com", fixture("data_rdap_response_domain1.json"))
    registrar = respx.get(REGISTRAR_URL).respond(200, json=registrar_answer())
    record = client().lookup_domain("google.com")
    assert registrar.call_count == 0
    assert record.registrar_data == "not_allowed"
    assert record.registrar == "MarkMonitor Inc."
    assert record.last_changed_at is None  # "last update of RDAP database" is not "last changed"
    assert record.dnssec is None  # conflicting duplicate secureDNS members


@respx.mock
def test_failing_registrar_keeps_registry_data() -> None:
    """Replays data_rdap_response_domain1.json with a registrar that answers 500 (or HTML)."""
    serve_bootstrap()
    serve_domain("https://rdap.verisign.com/com/v1/domain/google.com", fixture("data_rdap_response_domain1.json"))
    registrar = respx.get(REGISTRAR_URL)
    registrar.side_effect = [httpx.Response(500), httpx.Response(200, html="<html></html>")]
    rdap = client(allowed=[*ALLOWED, "rdap.markmonitor.com:443"])
    assert rdap.lookup_domain("google.com").registrar_data == "failed"
    assert rdap.lookup_domain("google.com").registrar_data == "failed"


@respx.mock
def test_cz_with_offset_timestamps() -> None:
    """Replays domain-example.cz.json: +00:00 offsets, fred_nsset, a registrar entity without vCard."""
    serve_bootstrap()
    serve_domain("https://rdap.nic.cz/domain/example.cz", fixture("domain-example.cz.json"))
    record = client().lookup_domain("example.cz")
    assert record.created_at == utc(2004, 8, 30, 22, 55)
    assert record.expires_at == utc(2019, 8, 30, 12)
    assert record.last_changed_at is None
    assert record.statuses == ("active",)
    assert record.nameservers == ("ns.pipni.cz", "ns2.pipni.cz", "ns3.pipni.cz")
    assert record.registrar == "REG-INTERNET-CZ"  # no vCard: the handle is all there is
    assert record.registrar_iana_id is None


@respx.mock
def test_error_object() -> None:
    """Replays error_ripe_net.json (errorCode 501): with HTTP 501, and inside an HTTP 200."""
    serve_bootstrap()
    route = respx.get("https://rdap.nic.cz/domain/example.cz")
    body = fixture("error_ripe_net.json")
    route.side_effect = [
        httpx.Response(501, content=body, headers={"Content-Type": RDAP}),
        httpx.Response(200, content=body, headers={"Content-Type": RDAP}),
    ]
    rdap = client()
    with pytest.raises(VendorPermanentError) as first:
        rdap.lookup_domain("example.cz")
    assert first.value.status == 501 and not isinstance(first.value, VendorNotFound)
    with pytest.raises(VendorPermanentError, match="501 Not Implemented") as second:
        rdap.lookup_domain("example.cz")
    assert second.value.status == 501
    assert route.call_count == 2  # not retried


@respx.mock
def test_unknown_domain_is_not_found() -> None:
    """An RDAP 404 error object (as the simulator and real registries send) maps to VendorNotFound."""
    serve_bootstrap()
    error = {"errorCode": 404, "title": "Not Found", "description": ["no such domain"]}
    route = respx.get("https://rdap.nic.cz/domain/nope.cz").respond(404, json=error)
    with pytest.raises(VendorNotFound):
        client().lookup_domain("nope.cz")
    assert route.call_count == 1
    respx.get("https://rdap.nic.cz/domain/also-nope.cz").respond(200, json=error)
    with pytest.raises(VendorNotFound):
        client().lookup_domain("also-nope.cz")


@respx.mock
def test_lemonde_fr_details() -> None:
    """Replays lemonde.fr.json: microsecond timestamps, sponsor+registrar roles, no abuse entity."""
    serve_bootstrap()
    serve_domain("https://rdap.nic.fr/domain/lemonde.fr", fixture("lemonde.fr.json"))
    record = client().lookup_domain("lemonde.fr")
    assert record.registrar == "NAMESHIELD" and record.registrar_iana_id == 1251
    assert record.created_at == utc(2005, 8, 2, 14, 16, 36)
    assert record.expires_at == utc(2025, 6, 9, 22, 8, 9)
    assert record.last_changed_at == datetime(2024, 6, 12, 22, 9, 39, 881923, tzinfo=UTC)
    assert "server recover prohibited" in record.statuses
    assert record.nameservers == tuple(f"ns-cloud-b{i}.googledomains.com" for i in range(1, 5))
    assert record.abuse_contact is None  # the registrar's own e-mail is not an abuse contact
    assert record.dnssec is None


@respx.mock
def test_microsoft_click_details() -> None:
    """Replays microsoft.click.json: millisecond timestamps, abuse contact from the registrar's nested entity."""
    serve_bootstrap()
    serve_domain("https://rdap.uniregistry.net/rdap/domain/microsoft.click", fixture("microsoft.click.json"))
    record = client().lookup_domain("microsoft.click")
    assert record.registrar == "MarkMonitor Inc."
    assert record.registrar_iana_id is None  # the registrar entity has a handle but no publicIds
    assert record.created_at == datetime(2014, 11, 12, 19, 15, 55, 283000, tzinfo=UTC)
    assert record.expires_at == datetime(2024, 11, 12, 19, 15, 55, 283000, tzinfo=UTC)
    assert record.last_changed_at == datetime(2023, 10, 17, 10, 47, 21, 733000, tzinfo=UTC)
    assert record.statuses == ("client delete prohibited", "client transfer prohibited", "client update prohibited")
    assert record.nameservers == (
        "ns1-08.azure-dns.com",
        "ns2-08.azure-dns.net",
        "ns3-08.azure-dns.org",
        "ns4-08.azure-dns.info",
    )
    assert record.dnssec is False
    assert record.abuse_contact == AbuseContact(email="abusecomplaints@markmonitor.com", phone="+1.2083895740")
    data = record.as_dict()
    assert data["expires_at"] == "2024-11-12T19:15:55.283000Z"
    assert json.dumps(data)


def _hostile_variants(base: dict[str, Any]) -> list[dict[str, Any]]:
    variants = []
    for key, junk in [
        ("events", {"eventAction": "registration"}),
        ("events", [1, "x", None, {"eventAction": 5, "eventDate": []}, {"eventAction": "expiration", "eventDate": 7}]),
        ("status", "active"),
        ("status", [1, None, {"a": 1}, "x" * 10_000]),
        ("nameservers", [{"ldhName": 5}, "ns", None, {"ldhName": "bad host!"}, {"ldhName": "x" * 300}]),
        ("entities", [{"roles": "registrar", "vcardArray": "nope"}, {"roles": ["registrar"], "vcardArray": ["vcard"]}]),
        (
            "entities",
            [
                {
                    "roles": ["registrar"],
                    "publicIds": [{"type": "IANA Registrar ID", "identifier": True}],
                    "entities": [
                        {
                            "roles": ["abuse"],
                            "vcardArray": ["vcard", [["email", {}, "text", 5], ["tel", {}, "uri", "tel:call me"]]],
                        }
                    ],
                }
            ],
        ),
        ("secureDNS", [True]),
        ("secureDNS", {"delegationSigned": "yes"}),
        ("links", [{"rel": "related", "href": 5}]),
        ("ldhName", 42),
    ]:
        variant = copy.deepcopy(base)
        variant[key] = junk
        variants.append(variant)
    variants.append({k: v for k, v in base.items() if k not in ("events", "entities", "status", "nameservers")})
    return variants


def test_hostile_field_types_are_ignored() -> None:
    """Mutates microsoft.click.json field by field: wrong types become None/empty, never an exception."""
    base = json.loads(fixture("microsoft.click.json"))
    for variant in _hostile_variants(base):
        record = parse_domain(variant, a_label="microsoft.click", unicode_name="microsoft.click", source="t")
        assert isinstance(record, DomainRecord)
        assert record.name == "microsoft.click"


def test_lists_are_capped() -> None:
    data = {
        "objectClassName": "domain",
        "nameservers": [{"ldhName": f"ns{i}.example.net"} for i in range(10_000)],
        "status": [f"s{i}" for i in range(10_000)],
    }
    record = parse_domain(data, a_label="x.example", unicode_name="x.example", source="t")
    assert len(record.nameservers) <= 20 and len(record.statuses) <= 50


def test_response_for_another_domain_or_object_is_refused() -> None:
    with pytest.raises(VendorResponseError):
        parse_domain({"ldhName": "other.example"}, a_label="x.example", unicode_name="x.example", source="t")
    with pytest.raises(VendorResponseError):
        parse_domain({"objectClassName": "entity"}, a_label="x.example", unicode_name="x.example", source="t")
    with pytest.raises(VendorResponseError):
        parse_domain([1, 2], a_label="x.example", unicode_name="x.example", source="t")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-06-12T22:09:39Z", utc(2024, 6, 12, 22, 9, 39)),
        ("2024-06-12T22:09:39+00:00", utc(2024, 6, 12, 22, 9, 39)),
        ("2024-06-12T23:09:39+01:00", utc(2024, 6, 12, 22, 9, 39)),
        ("2024-06-12T22:09:39.881923Z", datetime(2024, 6, 12, 22, 9, 39, 881923, tzinfo=UTC)),
        ("2024-06-12T22:09:39.283Z", datetime(2024, 6, 12, 22, 9, 39, 283000, tzinfo=UTC)),
        ("2024-06-12T22:09:39.123456789Z", datetime(2024, 6, 12, 22, 9, 39, 123456, tzinfo=UTC)),
        ("2024-06-12T22:09:39", utc(2024, 6, 12, 22, 9, 39)),
        ("", None),
        ("not a date", None),
        (20240612, None),
        ("2024-13-40T99:00:00Z", None),
    ],
)
def test_timestamps(text: object, expected: datetime | None) -> None:
    assert parse_rdap_datetime(text) == expected


def test_a_labels() -> None:
    assert to_a_label("fóo.example") == ("xn--fo-5ja.example", "fóo.example")
    assert to_a_label("XN--FO-5JA.example.") == ("xn--fo-5ja.example", "fóo.example")
    assert to_a_label("GOOGLE.COM") == ("google.com", "google.com")
    for bad in ("", "   ", "com", "a..b", "-x-.com", "x" * 300 + ".com"):
        with pytest.raises(InvalidDomainName):
            to_a_label(bad)
