"""Cloudflare DNS (API v4), write side: a DnsRecord checked and shaped into a record body, before any call.

Everything a caller passes is checked here, so that a bad record is refused with a ValueError that names
the field and no request is made; Cloudflare's own validation (errors 1004, 9005...) is the second line.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from vendor_sync.adapters.dns_types import DnsRecord

# Types whose record body is `content` (plus `priority` for MX) or, for CAA, `data`; the others
# (SRV, URI, TLSA...) need a structured `data` this adapter does not build, so they are refused.
WRITABLE_TYPES = frozenset({"A", "AAAA", "CNAME", "MX", "TXT", "NS", "PTR", "CAA"})
PROXIABLE_TYPES = frozenset({"A", "AAAA", "CNAME"})
AUTO_TTL = 1
# Cloudflare: 60-86400 s (30 s on Enterprise zones), or 1 for "automatic".
MIN_TTL, MAX_TTL = 30, 86_400
MAX_CONTENT = 4096

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CAA = re.compile(r'(\d{1,3})\s+([A-Za-z0-9]{1,15})\s+"((?:[^"\\]|\\.)*)"')
_CAA_UNESCAPE = re.compile(r"\\(.)")


def check_id(value: object, what: str) -> str:
    """A Cloudflare identifier safe to put in a URL path (letters, digits, '_' and '-'); ValueError otherwise."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        # Never echo it: a path-injection attempt should not reach our logs either.
        raise ValueError(f"invalid Cloudflare {what} id")
    return value


def record_body(record: DnsRecord) -> dict[str, Any]:
    """The JSON body of a create (POST) or overwrite (PUT) for one record; ValueError naming the bad field."""
    if not isinstance(record, DnsRecord):
        raise ValueError("record must be a DnsRecord")
    kind = record.type.upper() if isinstance(record.type, str) else ""
    if kind not in WRITABLE_TYPES:
        raise ValueError(f"record.type: this adapter writes {', '.join(sorted(WRITABLE_TYPES))} records only")
    body: dict[str, Any] = {"type": kind, "name": _name(record.name), "ttl": _ttl(record.ttl)}
    content = record.content
    if not isinstance(content, str) or not content.strip() or len(content) > MAX_CONTENT:
        raise ValueError(f"record.content: a {kind} record needs 1-{MAX_CONTENT} characters of content")
    if _CONTROL.search(content):
        raise ValueError("record.content: control characters are not allowed")
    if kind == "CAA":
        body["data"] = _caa_data(content)
    else:
        body["content"] = _content(kind, content)
    if kind == "MX":
        priority = record.priority
        if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 65_535:
            raise ValueError("record.priority: an MX record needs a priority 0-65535")
        body["priority"] = priority
    elif record.priority is not None:
        raise ValueError(f"record.priority: only MX records carry a priority here, not {kind}")
    if record.proxied is not None:
        if not isinstance(record.proxied, bool):
            raise ValueError("record.proxied must be true, false or None")
        if kind not in PROXIABLE_TYPES and record.proxied:
            raise ValueError(f"record.proxied: a {kind} record cannot be proxied")
        if kind in PROXIABLE_TYPES:
            body["proxied"] = record.proxied
    return body


def _name(value: object) -> str:
    """An ASCII (Punycode) owner name: labels of letters, digits, '_' and '-', a leading '*' label, or '@'."""
    text = value.strip().rstrip(".").lower() if isinstance(value, str) else ""
    if text == "@":
        return text
    labels = text.split(".")
    # A wildcard is a whole leftmost label (RFC 4592), never part of one.
    ok = 0 < len(text) <= 253 and all(
        _LABEL.fullmatch(label) or (label == "*" and n == 0) for n, label in enumerate(labels)
    )
    if not ok:
        raise ValueError("record.name: give an ASCII (Punycode) DNS name, up to 253 characters")
    return text


def _host(value: str, field: str) -> str:
    text = value.strip().rstrip(".").lower()
    if not 0 < len(text) <= 253 or not all(_LABEL.fullmatch(label) for label in text.split(".")):
        raise ValueError(f"{field}: give an ASCII (Punycode) host name")
    return text


def _content(kind: str, content: str) -> str:
    if kind in ("A", "AAAA"):
        try:
            address = ipaddress.ip_address(content.strip())
        except ValueError:
            raise ValueError(f"record.content: a {kind} record needs an IP address") from None
        if address.version != (4 if kind == "A" else 6):
            raise ValueError(f"record.content: a {kind} record needs an IPv{4 if kind == 'A' else 6} address")
        return str(address)
    if kind in ("CNAME", "MX", "NS", "PTR"):
        return _host(content, "record.content")
    return content


def _ttl(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and (value == AUTO_TTL or MIN_TTL <= value <= MAX_TTL):
        return value
    raise ValueError(f"record.ttl: give {AUTO_TTL} (automatic) or {MIN_TTL}-{MAX_TTL} seconds")


def _caa_data(content: str) -> dict[str, Any]:
    """Cloudflare's CAA `data` from the presentation form `flags tag "value"` that list_records returns."""
    match = _CAA.fullmatch(content.strip())
    if match is None:
        raise ValueError('record.content: a CAA record needs the form 0 issue "ca.example"')
    flags = int(match.group(1))
    if flags > 255:
        raise ValueError("record.content: CAA flags must be 0-255")
    value = _CAA_UNESCAPE.sub(r"\1", match.group(3))
    return {"flags": flags, "tag": match.group(2).lower(), "value": value}
