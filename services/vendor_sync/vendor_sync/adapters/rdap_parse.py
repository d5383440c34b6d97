"""Turn an RDAP domain object (RFC 9083) into a DomainRecord, treating every field as hostile."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from mspkit.http import VendorPermanentError, VendorResponseError, error_for_status
from vendor_sync.adapters.base import AbuseContact, DomainRecord

_MAX_ITEMS = 100
_MAX_NAMESERVERS = 20
_MAX_STATUSES = 50
_MAX_TEXT = 512
_MAX_ENTITY_DEPTH = 3
_FRACTION = re.compile(r"(\.\d{6})\d+")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
_PHONE = re.compile(r"^[+0-9][0-9 .()\-]{2,40}(?:;ext=[0-9]{1,10}|\s*x[0-9]{1,10})?$")
_HOSTNAME = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*$")
RDAP_MEDIA = "application/rdap+json"


def _items(value: Any, limit: int = _MAX_ITEMS) -> Iterator[Any]:
    """The first `limit` items of a list; nothing for any other type."""
    if isinstance(value, list):
        yield from value[:limit]


def _dicts(value: Any, limit: int = _MAX_ITEMS) -> Iterator[dict[str, Any]]:
    for item in _items(value, limit):
        if isinstance(item, dict):
            yield item


def _text(value: Any) -> str | None:
    """A non-empty, bounded, stripped string, or None (redacted fields arrive as "" or missing)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > _MAX_TEXT:
        return None
    return text


def parse_rdap_datetime(value: Any) -> datetime | None:
    """Parse an RDAP eventDate (Z or offset, any fraction length) into an aware UTC datetime."""
    text = _text(value)
    if text is None or len(text) > 64:
        return None
    text = _FRACTION.sub(r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def raise_for_error_object(data: Any, *, where: str) -> None:
    """Raise the mapped error when the body is an RDAP error object (errorCode), even under HTTP 200."""
    if not isinstance(data, dict) or "errorCode" not in data:
        return
    code = data.get("errorCode")
    title = _text(data.get("title")) or ""
    detail = f"RDAP error {code} from {where}" + (f": {title[:80]}" if title else "")
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        error = error_for_status(code, None, vendor="rdap")
        if error is not None:
            error.args = (detail,)
            raise error
    raise VendorPermanentError(detail, vendor="rdap")


def _roles(entity: dict[str, Any]) -> set[str]:
    return {r.strip().lower() for r in _items(entity.get("roles"), 20) if isinstance(r, str)}


def _vcard_props(entity: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    card = entity.get("vcardArray")
    if not isinstance(card, list) or len(card) < 2 or card[0] != "vcard":
        return
    for prop in _items(card[1], 200):
        if isinstance(prop, list) and len(prop) >= 4 and isinstance(prop[0], str):
            yield prop[0].lower(), prop[3]


def _vcard_first(entity: dict[str, Any], name: str) -> str | None:
    for prop, value in _vcard_props(entity):
        if prop == name and (text := _text(value)):
            return text
    return None


def _email(entity: dict[str, Any]) -> str | None:
    for prop, value in _vcard_props(entity):
        text = _text(value)
        if prop == "email" and text and _EMAIL.match(text):
            return text.lower()
    return None


def _phone(entity: dict[str, Any]) -> str | None:
    for prop, value in _vcard_props(entity):
        text = _text(value)
        if prop != "tel" or not text:
            continue
        number = text[4:] if text.lower().startswith("tel:") else text
        if _PHONE.match(number):
            return number
    return None


def _find_entities(entities: Any, role: str, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Entities with a role, searched breadth-first through nested entities up to a bounded depth."""
    if depth >= _MAX_ENTITY_DEPTH:
        return
    level = list(_dicts(entities))
    for entity in level:
        if role in _roles(entity):
            yield entity
    for entity in level:
        yield from _find_entities(entity.get("entities"), role, depth + 1)


def _iana_id(entity: dict[str, Any]) -> int | None:
    for public_id in _dicts(entity.get("publicIds"), 20):
        kind = _text(public_id.get("type"))
        if not kind or kind.lower() != "iana registrar id":
            continue
        ident = public_id.get("identifier")
        if isinstance(ident, int) and not isinstance(ident, bool) and 0 < ident < 10**9:
            return ident
        text = _text(ident)
        if text and text.isdigit() and len(text) <= 9:
            return int(text)
    return None


def _abuse(registrar: dict[str, Any] | None, top_level: Any) -> AbuseContact | None:
    candidates: list[dict[str, Any]] = []
    if registrar is not None:
        candidates.extend(_find_entities(registrar.get("entities"), "abuse"))
    # Some registries hang the abuse entity at the top level instead of under the registrar.
    candidates.extend(e for e in _dicts(top_level) if "abuse" in _roles(e))
    for entity in candidates:
        email, phone = _email(entity), _phone(entity)
        if email or phone:
            return AbuseContact(email=email, phone=phone)
    return None


def _events(data: dict[str, Any]) -> dict[str, datetime]:
    found: dict[str, datetime] = {}
    for event in _dicts(data.get("events")):
        action = _text(event.get("eventAction"))
        when = parse_rdap_datetime(event.get("eventDate"))
        if action and when and action.lower() not in found:
            found[action.lower()] = when
    return found


def _statuses(data: dict[str, Any]) -> tuple[str, ...]:
    values = {t.lower() for s in _items(data.get("status"), _MAX_STATUSES) if (t := _text(s))}
    return tuple(sorted(values))


def _nameservers(data: dict[str, Any]) -> tuple[str, ...]:
    names: set[str] = set()
    for ns in _dicts(data.get("nameservers")):
        name = _text(ns.get("ldhName"))
        if name:
            name = name.lower().rstrip(".")
            if len(name) <= 253 and _HOSTNAME.match(name):
                names.add(name)
        if len(names) >= _MAX_NAMESERVERS:
            break
    return tuple(sorted(names))


def _signed(section: Any) -> bool | None:
    if isinstance(section, dict):
        value = section.get("delegationSigned")
        if isinstance(value, bool):
            return value
    return None


def _dnssec(data: dict[str, Any]) -> bool | None:
    # A duplicated secureDNS member (seen in a Verisign response) is ambiguous when the copies disagree.
    copies = getattr(data, "duplicates", {}).get("secureDNS", [data.get("secureDNS")])
    answers = {_signed(c) for c in copies[:10]} - {None}
    return answers.pop() if len(answers) == 1 else None


def related_registrar_url(data: Any) -> str | None:
    """The registrar's RDAP URL for this domain from a rel="related" link, if the registry gives one."""
    if not isinstance(data, dict):
        return None
    for link in _dicts(data.get("links"), 50):
        rel = _text(link.get("rel"))
        media = _text(link.get("type"))
        href = _text(link.get("href"))
        if not rel or rel.lower() != "related" or not href:
            continue
        if media is not None and media.split(";")[0].strip().lower() != RDAP_MEDIA:
            continue
        if href.lower().startswith(("https://", "http://")) and "/domain/" in href.lower():
            return href
    return None


def parse_domain(data: Any, *, a_label: str, unicode_name: str, source: str) -> DomainRecord:
    """Build a DomainRecord from an RDAP domain object; wrong-typed fields become None."""
    raise_for_error_object(data, where=source)
    if not isinstance(data, dict):
        raise VendorResponseError(f"RDAP response from {source} is not an object", vendor="rdap")
    kind = data.get("objectClassName")
    if kind is not None and kind != "domain":
        raise VendorResponseError(f"RDAP response from {source} is not a domain object", vendor="rdap")
    ldh = _text(data.get("ldhName"))
    if ldh is not None and ldh.lower().rstrip(".") != a_label:
        raise VendorResponseError(f"RDAP response from {source} describes another domain", vendor="rdap")
    # The sponsoring registrar is a top-level entity; nested "registrar" roles belong to other objects.
    registrar = next((e for e in _dicts(data.get("entities")) if "registrar" in _roles(e)), None)
    events = _events(data)
    registrar_name = None
    if registrar is not None:
        # Some registries (CZ.NIC) publish only the registrar's handle, which is still its stable name there.
        registrar_name = (
            _vcard_first(registrar, "fn") or _vcard_first(registrar, "org") or _text(registrar.get("handle"))
        )
    return DomainRecord(
        name=a_label,
        unicode_name=unicode_name,
        registrar=registrar_name,
        registrar_iana_id=_iana_id(registrar) if registrar is not None else None,
        created_at=events.get("registration"),
        expires_at=events.get("expiration"),
        last_changed_at=events.get("last changed"),
        statuses=_statuses(data),
        nameservers=_nameservers(data),
        dnssec=_dnssec(data),
        abuse_contact=_abuse(registrar, data.get("entities")),
        sources=(source,),
    )


def merge_registrar(registry: DomainRecord, registrar: DomainRecord) -> DomainRecord:
    """Fill the registry record's gaps from the registrar's; the registry stays authoritative."""
    return DomainRecord(
        name=registry.name,
        unicode_name=registry.unicode_name,
        registrar=registry.registrar or registrar.registrar,
        registrar_iana_id=registry.registrar_iana_id or registrar.registrar_iana_id,
        created_at=registry.created_at or registrar.created_at,
        expires_at=registry.expires_at or registrar.expires_at,
        last_changed_at=registry.last_changed_at or registrar.last_changed_at,
        statuses=registry.statuses or registrar.statuses,
        nameservers=registry.nameservers or registrar.nameservers,
        dnssec=registry.dnssec if registry.dnssec is not None else registrar.dnssec,
        abuse_contact=registry.abuse_contact or registrar.abuse_contact,
        sources=registry.sources + registrar.sources,
        registrar_data="followed",
    )
