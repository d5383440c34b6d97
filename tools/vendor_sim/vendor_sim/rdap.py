"""RDAP data served by the simulator: recorded domain objects, a bootstrap file and a registrar answer."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from vendor_sim.payload import Payload

RDAP_MEDIA = "application/rdap+json"
_DATA = Path(__file__).resolve().parent / "data"

# Served name -> recorded fixture (package data, see data/PROVENANCE.md).
DOMAINS = {
    "google.com": "data_rdap_response_domain1.json",
    "norway.no": "data_rdap_response_domain2.json",
    "example.cz": "domain-example.cz.json",
    "lemonde.fr": "lemonde.fr.json",
    "example.com": "lookup_with_redaction.json",
    "microsoft.click": "microsoft.click.json",
    "xn--fo-5ja.example": "xn--fo-5ja_example.json",
}
TLDS = ("com", "no", "cz", "fr", "click", "example")
# The recorded registry answer points at the real registrar; the simulator points it at itself.
_GOOGLE_RELATED = "https://rdap.markmonitor.com/rdap/domain/GOOGLE.COM"


@cache
def fixture_bytes(filename: str) -> bytes:
    """Raw bytes of a packaged fixture (kept byte for byte, duplicate keys included)."""
    return (_DATA / filename).read_bytes()


def error_object(code: int, title: str, description: str) -> Payload:
    """An RDAP error object (RFC 9083 section 6) with the same HTTP status."""
    body = {
        "rdapConformance": ["rdap_level_0"],
        "errorCode": code,
        "title": title,
        "description": [description],
    }
    return Payload(status=code, body=json.dumps(body).encode(), media_type=RDAP_MEDIA)


def recorded(name: str, base_url: str) -> bytes | None:
    """The recorded registry answer for a lower-case name, or None."""
    filename = DOMAINS.get(name)
    if filename is None:
        return None
    body = fixture_bytes(filename)
    if name == "google.com":
        # Byte-level replace keeps the rest of the recorded answer (duplicate secureDNS) intact.
        body = body.replace(_GOOGLE_RELATED.encode(), f"{base_url}rdap-registrar/domain/google.com".encode())
    return body


def domain(name: str, base_url: str) -> Payload:
    """The registry's recorded domain object for a name (case-insensitive), or an RDAP 404."""
    body = recorded(name.lower().rstrip("."), base_url)
    if body is None:
        return error_object(404, "Not Found", "The domain is not registered in this simulator")
    return Payload(status=200, body=body, media_type=RDAP_MEDIA)


def registrar_domain(name: str, base_url: str) -> Payload:
    """The registrar's answer for google.com: synthesised from the registry's, with a "last changed" event."""
    if name.lower().rstrip(".") != "google.com":
        return error_object(404, "Not Found", "The registrar does not sponsor this domain")
    data = json.loads(fixture_bytes(DOMAINS["google.com"]))
    data["links"] = [
        {
            "value": f"{base_url}rdap-registrar/domain/google.com",
            "rel": "self",
            "href": f"{base_url}rdap-registrar/domain/google.com",
            "type": RDAP_MEDIA,
        }
    ]
    data["events"] = [*data.get("events", []), {"eventAction": "last changed", "eventDate": "2019-09-09T15:39:04Z"}]
    data["secureDNS"] = {"delegationSigned": False}
    return Payload(status=200, body=json.dumps(data).encode(), media_type=RDAP_MEDIA)


def bootstrap(base_url: str, extra_tlds: Iterable[str] = ()) -> Payload:
    """An RFC 9224 dns.json mapping every simulated TLD (and those of names added at runtime) to this simulator."""
    tlds = [*TLDS, *sorted(set(extra_tlds) - set(TLDS))]
    body = {
        "description": "RDAP bootstrap file for Domain Name System registrations (vendor_sim)",
        "publication": "2024-01-01T00:00:00Z",
        "services": [[tlds, [f"{base_url}rdap/"]]],
        "version": "1.0",
    }
    return Payload(
        status=200,
        body=json.dumps(body).encode(),
        media_type="application/json",
        headers={"Cache-Control": "max-age=300"},
    )
