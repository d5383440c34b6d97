"""vendor_sim's vendors: state round trips, paging, writes, refused keys, rate limits, faults and RDAP changes.

In-process tests use a TestClient on a loopback Host (the /_sim control API refuses any other); the adapter
tests run vendor_sync's own Cloudflare, GoDaddy and RDAP clients against a live simulator (`sim_url`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from starlette.testclient import TestClient

from mspkit.http import FetchLimits, RetryPolicy, VendorConflict, VendorHTTP, VendorNotFound
from vendor_sim.app import create_app
from vendor_sim.state_file import StateFileError
from vendor_sync.adapters.cloudflare import CloudflareAdapter
from vendor_sync.adapters.dns_types import DnsRecord
from vendor_sync.adapters.godaddy import GoDaddyAdapter
from vendor_sync.adapters.mailchannels import MailChannelsAdapter
from vendor_sync.adapters.namecheap import NamecheapAdapter
from vendor_sync.adapters.rdap import RdapClient
from vendor_sync.adapters.rdap_parse import parse_domain
from vendor_sync.adapters.registrar_types import RegistrarContact
from vendor_sync.adapters.spam_filter_types import DownstreamAddress

CF = "/cloudflare/client/v4"
GD = "/godaddy/v1"
NC = "/namecheap/xml.response"
MC = "/mailchannels/inbound/v1"
KEY = "sim-test-key-5d1f0c"
CF_AUTH = {"Authorization": f"Bearer {KEY}"}
GD_AUTH = {"Authorization": f"sso-key {KEY}:secret-9a7b"}
MC_AUTH = {"X-API-Key": KEY}
NC_GLOBALS = {"ApiUser": "msp", "ApiKey": KEY, "UserName": "msp", "ClientIp": "127.0.0.1"}
NS = {"nc": "http://api.namecheap.com/xml.response"}
FAST = RetryPolicy(max_attempts=1, base_s=0.01, cap_s=0.01)
CONTACT = {"name_first": "Ada", "name_last": "Client", "email": "ada@example.org", "phone": "+1.5555550100"}
ADDRESS = {"address1": "1 Main St", "city": "Town", "state": "CA", "postal_code": "90000", "country": "US"}
HEX_KEY = "0123456789abcdef0123456789abcdef"  # Namecheap's adapter takes only its 32-hex key shape


@pytest.fixture
def sim() -> Iterator[TestClient]:
    with TestClient(create_app(latency_ms=0), base_url="http://127.0.0.1") as client:
        yield client


def put_state(sim: TestClient, vendor: str, body: dict[str, Any]) -> dict[str, Any]:
    response = sim.put(f"/_sim/{vendor}/state", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def zone(name: str, *records: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "records": list(records)}


def registrar_domain(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "nameservers": ["ns1.host.example"], "contacts": {}, "locked": True, **extra}


def namecheap(sim: TestClient, command: str, **params: str) -> ElementTree.Element:
    response = sim.get(NC, params={**NC_GLOBALS, "Command": command, **params})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    return ElementTree.fromstring(response.content)


def nc_errors(root: ElementTree.Element) -> list[tuple[str | None, str | None]]:
    return [(e.get("Number"), e.text) for e in root.findall("nc:Errors/nc:Error", NS)]


def logged(sim: TestClient, prefix: str) -> list[dict[str, Any]]:
    return sim.get("/_sim/requests", params={"path_prefix": prefix}).json()["items"]


# --- state round trips -------------------------------------------------------------------------------------


def test_cloudflare_state_round_trip(sim: TestClient) -> None:
    mx = {"type": "MX", "name": "@", "content": "mx1.mail.example.", "ttl": 300, "priority": 10}
    shown = put_state(
        sim,
        "cloudflare",
        {"zones": [zone("Example.COM", mx, {"type": "A", "name": "www", "content": "192.0.2.7", "ttl": 1})]},
    )
    (only,) = shown["zones"]
    assert only["name"] == "example.com" and only["id"]
    assert [(r["type"], r["name"], r["content"], r.get("priority")) for r in only["records"]] == [
        ("MX", "example.com", "mx1.mail.example", 10),
        ("A", "www.example.com", "192.0.2.7", None),
    ]
    # GET's output (ids included) is accepted back unchanged.
    assert put_state(sim, "cloudflare", sim.get("/_sim/cloudflare/state").json()) == shown
    zones = sim.get(f"{CF}/zones", headers=CF_AUTH).json()
    assert zones["success"] is True and zones["result"][0]["id"] == only["id"]


def test_registrar_state_round_trip(sim: TestClient) -> None:
    for vendor in ("godaddy", "namecheap"):
        body = {
            "domains": [
                registrar_domain(
                    "client.example", contacts={"admin": CONTACT}, locked=False, expires_at="2031-02-03T04:05:06+00:00"
                )
            ]
        }
        (shown,) = put_state(sim, vendor, body)["domains"]
        assert shown["expires_at"] == "2031-02-03T04:05:06Z" and shown["contacts"] == {"admin": CONTACT}
        assert shown["locked"] is False and isinstance(shown["id"], int)
        assert put_state(sim, vendor, sim.get(f"/_sim/{vendor}/state").json())["domains"] == [shown]


def test_mailchannels_state_round_trip_and_owner_fingerprint(sim: TestClient) -> None:
    address = {"priority": 10, "weight": 100, "port": 25, "target": "mail.client.example."}
    put_state(sim, "mailchannels", {"domains": [{"name": "client.example", "downstream_addresses": [address]}]})
    assert sim.get("/_sim/mailchannels/state").json()["domains"][0]["key_fingerprint"] is None
    sim.post(f"{MC}/domains", headers=MC_AUTH, json={"domain": "mine.example", "subscriptionHandle": "h"})
    state = sim.get("/_sim/mailchannels/state").json()
    assert state["domains"][1]["key_fingerprint"] == hashlib.sha256(KEY.encode()).hexdigest()[:12]
    assert put_state(sim, "mailchannels", state) == state


def test_reset_clears_vendor_state(sim: TestClient) -> None:
    put_state(sim, "cloudflare", {"zones": [zone("example.com")]})
    put_state(sim, "godaddy", {"domains": [registrar_domain("a.example")]})
    assert sim.post("/_sim/reset").status_code == 200
    assert sim.get("/_sim/cloudflare/state").json() == {"zones": []}
    assert sim.get("/_sim/godaddy/state").json() == {"domains": []}
    assert sim.get("/_sim/nobody/state").status_code == 404


# --- PUT state validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor", "body", "fields"),
    [
        (
            "cloudflare",
            {
                "zones": [
                    {
                        "name": "example.com",
                        "records": [
                            {"type": "BOGUS", "name": "www", "content": "x", "ttl": 7},
                            {"type": "A", "name": "www", "content": "not-an-ip", "ttl": 1, "color": "red"},
                            {"type": "MX", "name": "@", "content": "mx.example.net", "ttl": 300},
                        ],
                    }
                ]
            },
            {
                "zones.0.records.0.type",
                "zones.0.records.0.ttl",
                "zones.0.records.1.content",
                "zones.0.records.1.color",
                "zones.0.records.2.priority",
            },
        ),
        (
            "godaddy",
            {
                "domains": [
                    {
                        "name": "bad name",
                        "nameservers": ["ok.example", "-bad-"],
                        "locked": "yes",
                        "contacts": {"owner": {}, "admin": {"email": "no-at-sign"}},
                        "expires_at": "tomorrow",
                    }
                ]
            },
            {
                "domains.0.name",
                "domains.0.nameservers.1",
                "domains.0.locked",
                "domains.0.contacts.owner",
                "domains.0.contacts.admin.email",
                "domains.0.expires_at",
            },
        ),
        (
            "namecheap",
            {"domains": [{"name": "a.example"}]},
            {"domains.0.nameservers", "domains.0.contacts", "domains.0.locked"},
        ),
        (
            "mailchannels",
            {
                "domains": [
                    {
                        "name": "a.example",
                        "key_fingerprint": KEY,
                        "downstream_addresses": [
                            {"priority": -1, "weight": 1, "port": 25, "target": "mx.example."},
                            {"target": "mx.example."},
                        ],
                    }
                ]
            },
            {
                "domains.0.key_fingerprint",
                "domains.0.downstream_addresses.0.priority",
                "domains.0.downstream_addresses.1.priority",
                "domains.0.downstream_addresses.1.port",
            },
        ),
    ],
)
def test_put_state_names_every_bad_field(sim: TestClient, vendor: str, body: dict[str, Any], fields: set[str]) -> None:
    before = sim.get(f"/_sim/{vendor}/state").json()
    response = sim.put(f"/_sim/{vendor}/state", json=body)
    assert response.status_code == 400
    error = response.json()
    assert error["error"] == "validation_error"
    assert fields <= {e["field"] for e in error["errors"]}, error["errors"]
    assert error["field"] == error["errors"][0]["field"]
    assert KEY not in response.text  # a key given where a fingerprint belongs is not echoed
    assert sim.get(f"/_sim/{vendor}/state").json() == before


def test_control_routes_keep_the_guard(sim: TestClient) -> None:
    assert sim.put("/_sim/cloudflare/state", json={"zones": []}, headers={"Host": "evil.example"}).status_code == 403
    form = sim.put("/_sim/godaddy/state", content=b"domains=1", headers={"Content-Type": "text/plain"})
    assert form.status_code == 415
    assert (
        sim.put("/_sim/godaddy/state", content=b"{nope", headers={"Content-Type": "application/json"}).json()["field"]
        == "body"
    )


# --- paging --------------------------------------------------------------------------------------------------


def test_cloudflare_paging_and_clamped_sizes(sim: TestClient) -> None:
    records = [{"type": "TXT", "name": f"t{i}", "content": f"v={i}", "ttl": 300} for i in range(130)]
    put_state(
        sim, "cloudflare", {"zones": [zone(f"z{i:02}.example", *records[: 130 if i == 0 else 0]) for i in range(60)]}
    )
    first = sim.get(f"{CF}/zones", params={"per_page": 500}, headers=CF_AUTH).json()
    assert first["result_info"] == {"page": 1, "per_page": 50, "count": 50, "total_count": 60, "total_pages": 2}
    second = sim.get(f"{CF}/zones", params={"page": 2, "per_page": 50}, headers=CF_AUTH).json()
    assert [z["name"] for z in second["result"]] == [f"z{i}.example" for i in range(50, 60)]
    zone_id = first["result"][0]["id"]
    page2 = sim.get(f"{CF}/zones/{zone_id}/dns_records", params={"page": 2, "per_page": 100}, headers=CF_AUTH).json()
    assert page2["result_info"]["count"] == 30 and page2["result_info"]["total_pages"] == 2
    only = sim.get(f"{CF}/zones/{zone_id}/dns_records", params={"name": "t7.z00.example"}, headers=CF_AUTH).json()
    assert [r["content"] for r in only["result"]] == ["v=7"]


def test_cloudflare_adapter_reads_every_page(sim_url: str) -> None:
    records = [{"type": "A", "name": f"h{i}", "content": f"192.0.2.{i}", "ttl": 1} for i in range(1, 121)]
    body = {"zones": [zone("big.example", *records), *(zone(f"n{i:02}.example") for i in range(55))]}
    httpx.put(f"{sim_url}/_sim/cloudflare/state", json=body).raise_for_status()
    with CloudflareAdapter(KEY, base_url=f"{sim_url}{CF}", retry=FAST, limits=FetchLimits(deadline_s=5)) as cf:
        zones = cf.list_zones()
        assert len(zones) == 56
        big = next(z for z in zones if z.name == "big.example")
        assert len(cf.list_records(big.id)) == 120
    paths = [i["path"] for i in httpx.get(f"{sim_url}/_sim/requests").json()["items"]]
    assert paths.count(f"{CF}/zones") == 2 and paths.count(f"{CF}/zones/{big.id}/dns_records") == 2


def test_godaddy_marker_paging_with_the_adapter(sim_url: str) -> None:
    domains = [registrar_domain(f"d{i}.example") for i in range(5)]
    httpx.put(f"{sim_url}/_sim/godaddy/state", json={"domains": domains}).raise_for_status()
    adapter = GoDaddyAdapter(KEY, "secret", base_url=f"{sim_url}/godaddy", page_limit=2, retry=FAST)
    with adapter:
        assert sorted(d.name for d in adapter.list_domains()) == [f"d{i}.example" for i in range(5)]
        detail = adapter.get_domain("d3.example")
        assert detail.nameservers == ("ns1.host.example",) and detail.locked is True
    listed = httpx.get(f"{sim_url}/_sim/requests", params={"path_prefix": f"{GD}/domains"}).json()["items"]
    assert len(listed) == 4  # three pages of at most two, then the detail


def test_namecheap_and_mailchannels_paging(sim: TestClient) -> None:
    put_state(sim, "namecheap", {"domains": [registrar_domain(f"n{i:02}.example") for i in range(25)]})
    root = namecheap(sim, "namecheap.domains.getList", Page="3", PageSize="10")
    assert [d.get("Name") for d in root.iterfind(".//nc:Domain", NS)] == [f"n{i}.example" for i in range(20, 25)]
    assert root.findtext(".//nc:Paging/nc:TotalItems", namespaces=NS) == "25"
    put_state(
        sim, "mailchannels", {"domains": [{"name": f"m{i}.example", "downstream_addresses": []} for i in range(7)]}
    )
    page = sim.get(f"{MC}/domains", params={"limit": 5, "offset": 5}, headers=MC_AUTH).json()
    assert page["total"] == 7 and [d["domain"] for d in page["domains"]] == ["m5.example", "m6.example"]
    assert sim.get(f"{MC}/domains", params={"limit": 5001}, headers=MC_AUTH).status_code == 400


# --- writes --------------------------------------------------------------------------------------------------


def test_cloudflare_record_writes_are_reflected_in_state(sim: TestClient) -> None:
    zone_id = put_state(sim, "cloudflare", {"zones": [zone("example.com")]})["zones"][0]["id"]
    url = f"{CF}/zones/{zone_id}/dns_records"
    mx = {"type": "MX", "name": "example.com", "content": "mx1.filter.example", "ttl": 300, "priority": 10}
    created = sim.post(url, json=mx, headers=CF_AUTH)
    assert created.status_code == 200 and created.json()["result"]["priority"] == 10
    duplicate = sim.post(url, json=mx, headers=CF_AUTH)
    assert duplicate.status_code == 400
    assert duplicate.json()["errors"] == [{"code": 81057, "message": "The record already exists."}]
    record_id = created.json()["result"]["id"]
    assert sim.patch(f"{url}/{record_id}", json={"priority": 20}, headers=CF_AUTH).json()["result"]["priority"] == 20
    put = sim.put(f"{url}/{record_id}", json={**mx, "content": "mx2.filter.example", "priority": 5}, headers=CF_AUTH)
    assert put.json()["result"]["content"] == "mx2.filter.example"
    (record,) = sim.get("/_sim/cloudflare/state").json()["zones"][0]["records"]
    assert (record["content"], record["priority"]) == ("mx2.filter.example", 5)
    invalid = sim.post(url, json={"type": "A", "name": "www", "content": "999.1.1.1"}, headers=CF_AUTH).json()
    assert invalid["errors"][0]["code"] == 1004 and invalid["errors"][0]["error_chain"][0]["code"] == 9005
    assert sim.delete(f"{url}/{record_id}", headers=CF_AUTH).json()["result"] == {"id": record_id}
    assert sim.delete(f"{url}/{record_id}", headers=CF_AUTH).json()["errors"][0]["code"] == 81044
    assert sim.get("/_sim/cloudflare/state").json()["zones"][0]["records"] == []
    missing = sim.get(f"{CF}/zones/nope/dns_records", headers=CF_AUTH)
    assert missing.status_code == 404 and missing.json()["errors"] == [
        {"code": 1001, "message": "Invalid zone identifier"}
    ]


def test_godaddy_patches_are_reflected_in_state(sim: TestClient) -> None:
    put_state(sim, "godaddy", {"domains": [registrar_domain("client.example")]})
    url = f"{GD}/domains/client.example"
    assert (
        sim.patch(
            url, json={"nameServers": ["ns1.new.example", "ns2.new.example"], "locked": False}, headers=GD_AUTH
        ).status_code
        == 204
    )
    person = {
        "nameFirst": "Ada",
        "nameLast": "Client",
        "email": "ada@example.org",
        "phone": "+1.5555550100",
        "addressMailing": {
            "address1": "1 Main St",
            "city": "Town",
            "state": "CA",
            "postalCode": "90000",
            "country": "US",
        },
    }
    assert sim.patch(f"{url}/contacts", json={"contactRegistrant": person}, headers=GD_AUTH).status_code == 204
    (domain,) = sim.get("/_sim/godaddy/state").json()["domains"]
    assert domain["nameservers"] == ["ns1.new.example", "ns2.new.example"] and domain["locked"] is False
    assert domain["contacts"]["registrant"]["email"] == "ada@example.org"
    detail = sim.get(url, headers=GD_AUTH).json()
    assert detail["nameServers"] == domain["nameservers"] and detail["contactRegistrant"]["nameFirst"] == "Ada"
    bad = sim.patch(url, json={"nameServers": ["-x-"], "color": 1}, headers=GD_AUTH)
    assert bad.status_code == 422 and {f["path"] for f in bad.json()["fields"]} == {"nameServers[0]", "color"}
    assert sim.patch(f"{url}/contacts", json={"contactAdmin": person}, headers=GD_AUTH).status_code == 422
    assert sim.get(f"{GD}/domains/other.example", headers=GD_AUTH).json()["code"] == "NOT_FOUND"


def test_namecheap_commands_are_reflected_in_state(sim: TestClient) -> None:
    put_state(sim, "namecheap", {"domains": [registrar_domain("client.example")]})
    root = namecheap(
        sim,
        "namecheap.domains.dns.setCustom",
        SLD="client",
        TLD="example",
        Nameservers="ns1.new.example,ns2.new.example",
    )
    assert root.get("Status") == "OK"
    assert (
        namecheap(sim, "namecheap.domains.setRegistrarLock", DomainName="client.example", LockAction="UNLOCK").get(
            "Status"
        )
        == "OK"
    )
    contact = {
        "FirstName": "Ada",
        "LastName": "Client",
        "Address1": "1 Main St",
        "City": "Town",
        "StateProvince": "CA",
        "PostalCode": "90000",
        "Country": "US",
        "Phone": "+1.5555550100",
        "EmailAddress": "ada@example.org",
    }
    roles = {f"{role}{k}": v for role in ("Registrant", "Tech", "Admin", "AuxBilling") for k, v in contact.items()}
    assert namecheap(sim, "namecheap.domains.setContacts", DomainName="client.example", **roles).get("Status") == "OK"
    (domain,) = sim.get("/_sim/namecheap/state").json()["domains"]
    assert domain["nameservers"] == ["ns1.new.example", "ns2.new.example"] and domain["locked"] is False
    assert domain["contacts"]["billing"]["email"] == "ada@example.org"
    servers = namecheap(sim, "namecheap.domains.dns.getList", SLD="client", TLD="example")
    assert [n.text for n in servers.iterfind(".//nc:Nameserver", NS)] == domain["nameservers"]
    lock = namecheap(sim, "namecheap.domains.getRegistrarLock", DomainName="client.example")
    assert lock.find(".//nc:DomainGetRegistrarLockResult", NS).get("RegistrarLockStatus") == "false"
    info = namecheap(sim, "namecheap.domains.getInfo", DomainName="client.example")
    assert info.find(".//nc:DomainGetInfoResult", NS).get("DomainName") == "client.example"
    missing = namecheap(sim, "namecheap.domains.getInfo", DomainName="other.example")
    assert missing.get("Status") == "ERROR" and nc_errors(missing) == [("2019166", "Domain not found")]


def test_mailchannels_provisioning(sim: TestClient) -> None:
    body = {
        "domain": "client.example",
        "subscriptionHandle": "h",
        "downstreamAddresses": [{"priority": 10, "weight": 100, "port": 25, "target": "mail.client.example."}],
    }
    assert sim.post(f"{MC}/domains", json=body, headers=MC_AUTH).status_code == 201
    assert sim.post(f"{MC}/domains", json=body, headers=MC_AUTH).status_code == 200  # already this customer's
    other = {"X-API-Key": "another-customer"}
    taken = sim.post(f"{MC}/domains", json=body, headers=other)
    assert taken.status_code == 409 and taken.json()["code"] == 409
    assert sim.get(f"{MC}/domains/client.example/downstream-address", headers=other).status_code == 403
    records = [{"priority": 5, "weight": 1, "port": 2525, "target": "mx.new.example."}]
    put = sim.put(f"{MC}/domains/client.example/downstream-address", json={"records": records}, headers=MC_AUTH)
    assert put.status_code == 201 and put.json() == {"records": records}
    got = sim.get(f"{MC}/domains/client.example/downstream-address", headers=MC_AUTH).json()
    assert got == {"records": records}
    assert sim.get("/_sim/mailchannels/state").json()["domains"][0]["downstream_addresses"] == records
    too_many = sim.put(
        f"{MC}/domains/client.example/downstream-address", json={"records": records * 11}, headers=MC_AUTH
    )
    assert too_many.status_code == 400 and set(too_many.json()) >= {"code", "message", "errors"}
    assert sim.delete(f"{MC}/domains/client.example", headers=other).status_code == 403
    assert sim.delete(f"{MC}/domains/client.example", headers=MC_AUTH).status_code == 204
    assert sim.delete(f"{MC}/domains/client.example", headers=MC_AUTH).status_code == 404
    assert sim.get("/_sim/mailchannels/state").json() == {"domains": []}


# --- refused keys, rate limits, faults, the log ----------------------------------------------------------------


def test_bad_key_is_refused_as_each_vendor_does(sim: TestClient) -> None:
    cf = sim.get(f"{CF}/zones", headers={"Authorization": "Bearer bad-key"})
    assert cf.status_code == 403 and cf.json()["errors"] == [{"code": 10000, "message": "Authentication error"}]
    assert sim.get(f"{CF}/zones").json()["errors"][0]["code"] == 9106
    gd = sim.get(f"{GD}/domains", headers={"Authorization": "sso-key bad-key:secret"})
    assert gd.status_code == 401 and gd.json()["code"] == "UNABLE_TO_AUTHENTICATE"
    assert sim.get(f"{GD}/domains").json()["code"] == "MISSING_CREDENTIALS"
    nc = namecheap(sim, "namecheap.domains.getList", ApiKey="bad-key")
    assert nc.get("Status") == "ERROR" and nc_errors(nc) == [("1011102", "Parameter APIKey is invalid")]
    mc = sim.get(f"{MC}/domains", headers={"X-API-Key": "bad-key"})
    assert mc.status_code == 401 and mc.json()["code"] == 401
    assert sim.get(f"{MC}/domains").status_code == 401


@pytest.mark.parametrize(
    ("vendor", "path", "headers", "status"),
    [
        ("cloudflare", f"{CF}/zones", CF_AUTH, 429),
        ("godaddy", f"{GD}/domains", GD_AUTH, 429),
        ("namecheap", NC, {}, 200),
        ("mailchannels", f"{MC}/domains", MC_AUTH, 503),
        ("rdap", "/rdap/domain/norway.no", {}, 429),
    ],
)
def test_rate_limit_signal_per_vendor(
    sim: TestClient, vendor: str, path: str, headers: dict[str, str], status: int
) -> None:
    params = {**NC_GLOBALS, "Command": "namecheap.domains.getList"} if vendor == "namecheap" else {}
    assert sim.post("/_sim/ratelimit", json={"vendor": vendor, "per_second": 2}).status_code == 200
    answers = [sim.get(path, params=params, headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [200, 200]
    refused = answers[2]
    assert refused.status_code == status
    if status == 429:
        assert int(refused.headers["retry-after"]) >= 1
    if vendor == "namecheap":
        assert nc_errors(ElementTree.fromstring(refused.content)) == [("500000", "Too many requests")]
    entries = logged(sim, path)
    assert [e["over_limit"] for e in entries] == [False, False, True]
    assert {e["vendor"] for e in entries} == {vendor} and entries[2]["status"] == status
    sim.post("/_sim/ratelimit", json={"vendor": vendor, "per_second": 0})
    assert sim.get(path, params=params, headers=headers).status_code == 200


def test_ratelimit_validation(sim: TestClient) -> None:
    response = sim.post("/_sim/ratelimit", json={"vendor": "acme", "per_second": -1})
    assert response.status_code == 422 and {e["field"] for e in response.json()["errors"]} == {"vendor", "per_second"}
    sim.post("/_sim/ratelimit", json={"vendor": "godaddy", "per_second": 5})
    assert sim.get("/_sim/ratelimit").json()["limits"]["godaddy"] == 5.0
    sim.post("/_sim/reset")
    assert sim.get("/_sim/ratelimit").json()["limits"]["godaddy"] == 0.0


def test_faults_answer_in_the_vendors_shape_and_change_nothing(sim: TestClient) -> None:
    zone_id = put_state(sim, "cloudflare", {"zones": [zone("example.com")]})["zones"][0]["id"]
    sim.post("/_sim/faults", json={"mode": "503", "count": 1, "path_prefix": "/cloudflare/", "retry_after": 2})
    record = {"type": "TXT", "name": "@", "content": "v=spf1 -all", "ttl": 300}
    faulted = sim.post(f"{CF}/zones/{zone_id}/dns_records", json=record, headers=CF_AUTH)
    assert faulted.status_code == 503 and faulted.headers["retry-after"] == "2"
    assert faulted.json()["success"] is False
    assert sim.get("/_sim/cloudflare/state").json()["zones"][0]["records"] == []
    sim.post("/_sim/faults", json={"mode": "delay", "count": 1, "seconds": 0, "path_prefix": "/cloudflare/"})
    assert sim.post(f"{CF}/zones/{zone_id}/dns_records", json=record, headers=CF_AUTH).status_code == 200
    writes = [e for e in logged(sim, CF) if e["method"] == "POST"]
    assert [(e["fault"], e["status"]) for e in writes] == [("503", 503), ("delay", 200)]
    assert writes[0]["body_sha256"] == writes[1]["body_sha256"]  # the same write, sent twice


def test_keys_appear_only_as_fingerprints(sim: TestClient) -> None:
    sim.get(f"{CF}/zones", headers=CF_AUTH)
    sim.get(f"{GD}/domains", headers=GD_AUTH)
    namecheap(sim, "namecheap.domains.getList")
    sim.post(f"{MC}/domains", headers=MC_AUTH, json={"domain": "k.example", "subscriptionHandle": "h"})
    items = sim.get("/_sim/requests").json()["items"]
    states = [sim.get(f"/_sim/{v}/state").text for v in ("cloudflare", "godaddy", "namecheap", "mailchannels")]
    dumped = json.dumps(items) + "".join(states)
    assert KEY not in dumped and "secret-9a7b" not in dumped
    assert {e["key_fingerprint"] for e in items if e["vendor"] in ("cloudflare", "mailchannels")} == {
        hashlib.sha256(KEY.encode()).hexdigest()[:12]
    }
    assert [e["command"] for e in items if e["vendor"] == "namecheap"] == ["namecheap.domains.getList"]


# --- RDAP changes ------------------------------------------------------------------------------------------------


def test_rdap_put_changes_a_recorded_answer(sim: TestClient) -> None:
    change = {
        "nameservers": ["NS1.Moved.example", "ns2.moved.example"],
        "registrar": "Moved Registrar",
        "statuses": ["client transfer prohibited", "clientDeleteProhibited"],
        "expires_at": "2030-06-01T00:00:00Z",
    }
    response = sim.put("/_sim/rdap/domains/norway.no", json=change)
    assert response.status_code == 200
    assert response.json()["statuses"] == ["client transfer prohibited", "client delete prohibited"]
    data = sim.get("/rdap/domain/norway.no").json()
    assert [ns["ldhName"] for ns in data["nameservers"]] == ["ns1.moved.example", "ns2.moved.example"]
    record = parse_domain(data, a_label="norway.no", unicode_name="norway.no", source="vendor_sim")
    assert record.nameservers == ("ns1.moved.example", "ns2.moved.example")
    assert record.registrar == "Moved Registrar" and "client transfer prohibited" in record.statuses
    assert record.expires_at is not None and record.expires_at.year == 2030
    assert record.last_changed_at is not None and record.last_changed_at.year >= 2025
    # A second change overlays the first.
    sim.put("/_sim/rdap/domains/norway.no", json={"statuses": ["active"]})
    again = parse_domain(
        sim.get("/rdap/domain/norway.no").json(), a_label="norway.no", unicode_name="norway.no", source="vendor_sim"
    )
    assert again.statuses == ("active",) and again.registrar == "Moved Registrar"
    sim.post("/_sim/reset")
    assert (
        parse_domain(
            sim.get("/rdap/domain/norway.no").json(), a_label="norway.no", unicode_name="norway.no", source="vendor_sim"
        ).registrar
        == "Domeneshop AS"
    )


def test_rdap_put_adds_a_name(sim: TestClient) -> None:
    assert sim.get("/rdap/domain/brand-new.org").status_code == 404
    created = sim.put("/_sim/rdap/domains/Brand-New.org", json={"nameservers": ["ns1.host.example"]})
    assert created.status_code == 201 and created.json()["name"] == "brand-new.org"
    assert "brand-new.org" in sim.get("/_sim/rdap/domains").json()["items"]
    data = sim.get("/rdap/domain/brand-new.org").json()
    record = parse_domain(data, a_label="brand-new.org", unicode_name="brand-new.org", source="vendor_sim")
    assert record.nameservers == ("ns1.host.example",) and record.registrar == "vendor_sim Registrar"
    assert record.created_at is not None and record.expires_at is not None and record.dnssec is False
    services = sim.get("/rdap/bootstrap/dns.json").json()["services"]
    assert "org" in services[0][0]


def test_rdap_put_validation(sim: TestClient) -> None:
    response = sim.put(
        "/_sim/rdap/domains/norway.no",
        json={
            "nameservers": ["ok.example", "bad name"],
            "statuses": [7],
            "expires_at": "soon",
            "registrar": "",
            "owner": "x",
        },
    )
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {
        "nameservers.1",
        "statuses.0",
        "expires_at",
        "registrar",
        "owner",
    }
    assert sim.put("/_sim/rdap/domains/not_a..name", json={}).status_code == 400


def test_rdap_client_follows_a_change_end_to_end(sim_url: str) -> None:
    httpx.put(
        f"{sim_url}/_sim/rdap/domains/client-site.com",
        json={"nameservers": ["ns1.dns.example"], "statuses": ["client transfer prohibited"]},
    ).raise_for_status()
    host = sim_url.split("//", 1)[1]
    http = VendorHTTP("rdap", allowed_hosts=[host], limits=FetchLimits(deadline_s=5), retry=FAST)
    record = RdapClient(http, bootstrap_url=f"{sim_url}/rdap/bootstrap/dns.json").lookup_domain("client-site.com")
    assert record.nameservers == ("ns1.dns.example",) and record.statuses == ("client transfer prohibited",)


# --- vendor_sync's write-side adapters against a live simulator -------------------------------------------------


def test_write_adapters_end_to_end(sim_url: str) -> None:
    full = {role: {**CONTACT, **ADDRESS} for role in ("registrant", "admin", "tech", "billing")}
    for vendor in ("godaddy", "namecheap"):
        body = {"domains": [registrar_domain("client.example", contacts=full)]}
        httpx.put(f"{sim_url}/_sim/{vendor}/state", json=body).raise_for_status()
    body = {"zones": [zone("client.example")]}
    zone_id = httpx.put(f"{sim_url}/_sim/cloudflare/state", json=body).json()["zones"][0]["id"]
    change = RegistrarContact(role="admin", email="new-admin@example.org")
    godaddy = GoDaddyAdapter(KEY, "secret", base_url=f"{sim_url}/godaddy", retry=FAST)
    cheap = NamecheapAdapter("msp", HEX_KEY, client_ip="127.0.0.1", base_url=f"{sim_url}{NC}", retry=FAST)
    for adapter in (godaddy, cheap):
        with adapter:
            adapter.set_nameservers("client.example", ["ns1.new.example", "ns2.new.example"])
            adapter.set_lock("client.example", False)
            adapter.set_contacts("client.example", [change])
            got = adapter.get_domain("client.example")
        assert got.nameservers == ("ns1.new.example", "ns2.new.example") and got.locked is False
        assert {c.role: c.email for c in got.contacts or ()}["admin"] == "new-admin@example.org"
    mx = DnsRecord(type="MX", name="client.example", content="mx1.filter.example", ttl=300, priority=10)
    with CloudflareAdapter(KEY, base_url=f"{sim_url}{CF}", retry=FAST) as cf:
        created = cf.create_record(zone_id, mx)
        with pytest.raises(VendorConflict):
            cf.create_record(zone_id, mx)
        moved = DnsRecord(type="MX", name="client.example", content="mx2.filter.example", ttl=300, priority=20)
        assert cf.update_record(zone_id, created.id or "", moved).content == "mx2.filter.example"
        cf.delete_record(zone_id, created.id or "")
        cf.delete_record(zone_id, created.id or "")  # already gone: done
        with pytest.raises(VendorNotFound):
            cf.list_records("nozone")
    target = [DownstreamAddress(target="mail.client.example")]
    with MailChannelsAdapter(KEY, base_url=f"{sim_url}{MC}", subscription_handle="h", retry=FAST) as mc:
        assert mc.provision_domain("client.example", target).created is True
        assert mc.provision_domain("client.example", target).created is False
    with MailChannelsAdapter("another-key", base_url=f"{sim_url}{MC}", subscription_handle="h", retry=FAST) as other:
        with pytest.raises(VendorConflict):
            other.provision_domain("client.example", target)


# --- accounts of their own for given keys ------------------------------------------------------------------------

OTHER_KEY = "sim-test-other-key-77e2"


def fp(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()[:12]


def test_a_key_with_an_account_of_its_own_sees_only_that_account(sim: TestClient) -> None:
    put_state(sim, "cloudflare", {"zones": [zone("shared.example")]})
    own = sim.put(f"/_sim/cloudflare/accounts/{fp(KEY)}/state", json={"zones": [zone("mine.example")]})
    assert own.status_code == 200 and own.json()["zones"][0]["name"] == "mine.example"
    mine = sim.get(f"{CF}/zones", headers=CF_AUTH).json()["result"]
    assert [z["name"] for z in mine] == ["mine.example"]
    other = sim.get(f"{CF}/zones", headers={"Authorization": f"Bearer {OTHER_KEY}"}).json()["result"]
    assert [z["name"] for z in other] == ["shared.example"]
    # A zone of another account is unknown to this key; writes land in the caller's own account.
    shared_id = other[0]["id"]
    assert sim.get(f"{CF}/zones/{shared_id}/dns_records", headers=CF_AUTH).status_code == 404
    mx = {"type": "MX", "name": "mine.example", "content": "mx.mine.example", "ttl": 300, "priority": 10}
    assert sim.post(f"{CF}/zones/{mine[0]['id']}/dns_records", json=mx, headers=CF_AUTH).status_code == 200
    state = sim.get("/_sim/cloudflare/state").json()
    assert [z["name"] for z in state["zones"]] == ["shared.example"] and state["zones"][0]["records"] == []
    (record,) = state["accounts"][fp(KEY)]["zones"][0]["records"]
    assert record["content"] == "mx.mine.example"
    assert sim.get("/_sim/cloudflare/accounts").json() == {"items": [fp(KEY)]}
    assert sim.get(f"/_sim/cloudflare/accounts/{fp(KEY)}/state").json() == state["accounts"][fp(KEY)]
    assert sim.get(f"/_sim/cloudflare/accounts/{fp(OTHER_KEY)}/state").status_code == 404
    # GET's output, accounts included, is accepted back unchanged.
    assert put_state(sim, "cloudflare", state) == state


def test_registrar_accounts_per_key(sim: TestClient) -> None:
    for vendor, credential in (("godaddy", f"{KEY}:secret-9a7b"), ("namecheap", KEY)):
        put_state(sim, vendor, {"domains": [registrar_domain("shared.example")]})
        body = {"domains": [registrar_domain("mine.example")]}
        assert sim.put(f"/_sim/{vendor}/accounts/{fp(credential)}/state", json=body).status_code == 200
    assert [d["domain"] for d in sim.get(f"{GD}/domains", headers=GD_AUTH).json()] == ["mine.example"]
    other = {"Authorization": f"sso-key {OTHER_KEY}:secret"}
    assert [d["domain"] for d in sim.get(f"{GD}/domains", headers=other).json()] == ["shared.example"]
    assert sim.patch(f"{GD}/domains/mine.example", json={"locked": False}, headers=GD_AUTH).status_code == 204
    assert sim.get(f"/_sim/godaddy/accounts/{fp(f'{KEY}:secret-9a7b')}/state").json()["domains"][0]["locked"] is False
    listed = namecheap(sim, "namecheap.domains.getList")
    assert [d.get("Name") for d in listed.iterfind(".//nc:Domain", NS)] == ["mine.example"]


def test_account_routes_refuse_keys_and_unsplit_vendors(sim: TestClient) -> None:
    raw = sim.put(f"/_sim/cloudflare/accounts/{KEY}/state", json={"zones": []})
    assert raw.status_code == 400 and raw.json()["field"] == "key_fingerprint" and KEY not in raw.text
    named = sim.put("/_sim/cloudflare/state", json={"zones": [], "accounts": {KEY: {"zones": []}}})
    assert named.status_code == 400 and named.json()["field"] == "accounts" and KEY not in named.text
    bad = sim.put("/_sim/cloudflare/state", json={"zones": [], "accounts": {fp(KEY): {"zones": [{"name": "-"}]}}})
    assert bad.status_code == 400 and bad.json()["field"].startswith(f"accounts.{fp(KEY)}.zones.0")
    assert sim.get("/_sim/cloudflare/accounts").json() == {"items": []}  # nothing changed
    split = sim.put(f"/_sim/mailchannels/accounts/{fp(KEY)}/state", json={"domains": []})
    assert split.status_code == 404 and "key fingerprint" in split.json()["detail"]
    assert sim.get(f"/_sim/nope/accounts/{fp(KEY)}/state").status_code == 404
    sim.put(f"/_sim/cloudflare/accounts/{fp(KEY)}/state", json={"zones": [zone("mine.example")]})
    assert sim.post("/_sim/reset").status_code == 200
    assert sim.get("/_sim/cloudflare/state").json() == {"zones": []}


# --- the state file -----------------------------------------------------------------------------------------------


def sim_with_file(path: Any) -> TestClient:
    return TestClient(create_app(latency_ms=0, state_file=path), base_url="http://127.0.0.1")


def saved(path: Any) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def test_state_file_is_loaded_at_start(tmp_path: Any) -> None:
    path = tmp_path / "state.json"
    with sim_with_file(path) as first:
        put_state(first, "godaddy", {"domains": [registrar_domain("shared.example")]})
        first.put(f"/_sim/cloudflare/accounts/{fp(KEY)}/state", json={"zones": [zone("mine.example")]})
        before = {v: first.get(f"/_sim/{v}/state").json() for v in ("cloudflare", "godaddy", "namecheap")}
    with sim_with_file(path) as second:
        assert {v: second.get(f"/_sim/{v}/state").json() for v in before} == before
        # Ids are kept: what vendor_sync stored for a zone still names it.
        zones = second.get(f"{CF}/zones", headers=CF_AUTH).json()["result"]
        assert [z["id"] for z in zones] == [before["cloudflare"]["accounts"][fp(KEY)]["zones"][0]["id"]]


def test_state_file_from_the_environment(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "from-env.json"
    path.write_text(json.dumps({"namecheap": {"domains": [registrar_domain("env.example")]}}))
    monkeypatch.setenv("VENDOR_SIM_STATE_FILE", str(path))
    with TestClient(create_app(latency_ms=0), base_url="http://127.0.0.1") as sim:
        assert [d["name"] for d in sim.get("/_sim/namecheap/state").json()["domains"]] == ["env.example"]


def test_state_file_is_saved_on_put_and_on_vendor_writes_with_fingerprints_only(tmp_path: Any) -> None:
    path = tmp_path / "sub" / "state.json"
    with sim_with_file(path) as sim:
        assert sim.get(f"{CF}/zones", headers=CF_AUTH).status_code == 200
        assert not path.exists()  # reads save nothing
        zone_id = put_state(sim, "cloudflare", {"zones": [zone("example.com")]})["zones"][0]["id"]
        assert saved(path)["cloudflare"] == sim.get("/_sim/cloudflare/state").json()
        mx = {"type": "MX", "name": "example.com", "content": "mx1.filter.example", "ttl": 300, "priority": 10}
        assert sim.post(f"{CF}/zones/{zone_id}/dns_records", json=mx, headers=CF_AUTH).status_code == 200
        assert saved(path)["cloudflare"]["zones"][0]["records"][0]["content"] == "mx1.filter.example"
        put_state(sim, "namecheap", {"domains": [registrar_domain("client.example")]})
        # Namecheap's writes come as GET too.
        namecheap(sim, "namecheap.domains.setRegistrarLock", DomainName="client.example", LockAction="UNLOCK")
        assert saved(path)["namecheap"]["domains"][0]["locked"] is False
        body = {"domain": "client.example", "subscriptionHandle": "h"}
        assert sim.post(f"{MC}/domains", json=body, headers=MC_AUTH).status_code == 201
        assert saved(path)["mailchannels"]["domains"][0]["key_fingerprint"] == fp(KEY)
        sim.put(f"/_sim/cloudflare/accounts/{fp(KEY)}/state", json={"zones": [zone("mine.example")]})
        assert fp(KEY) in saved(path)["cloudflare"]["accounts"]
        assert saved(path) == {
            v: sim.get(f"/_sim/{v}/state").json() for v in ("cloudflare", "godaddy", "namecheap", "mailchannels")
        }
        assert KEY not in path.read_text() and "secret-9a7b" not in path.read_text()
        # Reset empties the vendors, and the file with them.
        sim.post("/_sim/reset")
        assert saved(path) == {v: {"domains": []} for v in ("godaddy", "namecheap", "mailchannels")} | {
            "cloudflare": {"zones": []}
        }


def test_state_file_is_replaced_whole_or_not_at_all(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    renames: list[tuple[str, str]] = []
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        renames.append((str(src), str(dst)))
        if len(renames) == 2:  # the second save fails
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with sim_with_file(path) as sim:
        put_state(sim, "godaddy", {"domains": [registrar_domain("ok.example")]})
        before = path.read_text()
        # A write beside the file, then a rename over it.
        ((src, dst),) = renames
        assert dst == str(path) and os.path.dirname(src) == str(tmp_path) and src != dst
        # A failed save leaves the old file whole and no temporary file; the simulator keeps answering.
        assert sim.put("/_sim/godaddy/state", json={"domains": [registrar_domain("fail.example")]}).status_code == 200
        assert path.read_text() == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
        # The next change saves everything again.
        put_state(sim, "namecheap", {"domains": [registrar_domain("next.example")]})
    assert [d["name"] for d in saved(path)["godaddy"]["domains"]] == ["fail.example"]


def test_an_invalid_state_file_stops_the_simulator_naming_it(tmp_path: Any) -> None:
    path = tmp_path / "state.json"
    for text in ("{not json", json.dumps({"cloudflare": {"zones": [{"name": "-"}]}}), json.dumps({"acme": {}})):
        path.write_text(text)
        with pytest.raises(StateFileError, match=str(path)):
            with sim_with_file(path):
                pass
