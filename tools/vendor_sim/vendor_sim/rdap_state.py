"""Registry answers changed at runtime (PUT /_sim/rdap/domains/{name}), overlaid on the recorded ones."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from typing import Any

from vendor_sim import rdap
from vendor_sim.validate import Problems, fields, format_time, hostname, now, parse_time, text, timestamp

CHANGE_FIELDS = ("registrar", "nameservers", "expires_at", "statuses")
_STATUS = re.compile(r"^[a-z][a-z ]{0,63}$")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_IANA = "iana registrar id"


def domain_name(raw: str) -> str | None:
    """The lower-case A-label form of a name from the path, or None when it is not a domain name."""
    return hostname(raw)


def _status(value: Any) -> str | None:
    # EPP's clientTransferProhibited and RDAP's "client transfer prohibited" (RFC 8056) are the same status.
    if not isinstance(value, str):
        return None
    words = _CAMEL.sub(" ", value.strip()).lower()
    return words if _STATUS.match(words) else None


def parse_change(body: Any) -> tuple[dict[str, Any], Problems]:
    """Validate a PUT body {registrar?, nameservers?, expires_at?, statuses?} into a normalised change."""
    problems = Problems()
    change: dict[str, Any] = {}
    if not fields(problems, "", body, required=(), optional=CHANGE_FIELDS):
        return change, problems
    if "registrar" in body:
        if text(body["registrar"]):
            change["registrar"] = body["registrar"].strip()
        else:
            problems.add("registrar", "must be a non-empty name of at most 255 characters")
    if "nameservers" in body:
        change["nameservers"] = _names(problems, body["nameservers"])
    if "expires_at" in body:
        change["expires_at"] = timestamp(body["expires_at"])
        if change["expires_at"] is None:
            problems.add("expires_at", "must be an RFC 3339 time with an offset, such as 2030-01-31T00:00:00Z")
    if "statuses" in body:
        change["statuses"] = _statuses(problems, body["statuses"])
    return change, problems


def _names(problems: Problems, value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > 20:
        problems.add("nameservers", "must be a list of at most 20 host names")
        return []
    names = []
    for index, item in enumerate(value):
        name = hostname(item)
        if name is None:
            problems.add(f"nameservers.{index}", "must be a host name such as ns1.example.net")
        else:
            names.append(name)
    return list(dict.fromkeys(names))


def _statuses(problems: Problems, value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > 50:
        problems.add("statuses", "must be a list of at most 50 RDAP statuses")
        return []
    statuses = []
    for index, item in enumerate(value):
        status = _status(item)
        if status is None:
            problems.add(f"statuses.{index}", 'must be an RDAP status such as "client transfer prohibited"')
        else:
            statuses.append(status)
    return list(dict.fromkeys(statuses))


class RdapRegistry:
    """Changes per name; a name without a recorded answer gets a minimal domain object of its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changes: dict[str, dict[str, Any]] = {}

    def put(self, name: str, change: dict[str, Any]) -> bool:
        """Merge a change into what the registry answers for a name; True when the name is new."""
        with self._lock:
            known = name in self._changes or name in rdap.DOMAINS
            merged = {**self._changes.get(name, {"created_at": now()}), **change, "changed_at": now()}
            self._changes[name] = merged
            return not known

    def view(self, name: str) -> dict[str, Any]:
        """The changed fields of one name (as stored, without timestamps)."""
        with self._lock:
            return {k: v for k, v in self._changes.get(name, {}).items() if k in CHANGE_FIELDS}

    def names(self) -> list[str]:
        """Every name the registry knows: the recorded ones and those added."""
        with self._lock:
            return sorted(set(rdap.DOMAINS) | set(self._changes))

    def tlds(self) -> set[str]:
        """The TLDs of names added at runtime (the bootstrap file maps them here too)."""
        with self._lock:
            return {name.rsplit(".", 1)[-1] for name in self._changes}

    def answer(self, name: str, base_url: str) -> bytes | None:
        """The changed answer for a lower-case name, or None when the recorded answer (or a 404) stands."""
        with self._lock:
            change = self._changes.get(name)
        if change is None:
            return None
        recorded = rdap.recorded(name, base_url)
        data = json.loads(recorded) if recorded is not None else _minimal(name, base_url, change["created_at"])
        return json.dumps(overlay(data, change)).encode()

    def reset(self) -> None:
        """Only the recorded answers."""
        with self._lock:
            self._changes.clear()


def overlay(data: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """Apply a change to an RDAP domain object in the shape the recorded ones use."""
    if "registrar" in change:
        _set_registrar(data, change["registrar"])
    if "nameservers" in change:
        data["nameservers"] = [{"objectClassName": "nameserver", "ldhName": ns} for ns in change["nameservers"]]
    if "statuses" in change:
        data["status"] = list(change["statuses"])
    if "expires_at" in change:
        _set_event(data, "expiration", change["expires_at"])
    # A registry records when it last changed the object; drift detection reads it.
    _set_event(data, "last changed", change["changed_at"])
    return data


def _set_event(data: dict[str, Any], action: str, when: str) -> None:
    events = data.setdefault("events", [])
    for event in events:
        if isinstance(event, dict) and str(event.get("eventAction", "")).lower() == action:
            event["eventDate"] = when
            return
    events.append({"eventAction": action, "eventDate": when})


def _registrar_entity(name: str) -> dict[str, Any]:
    return {
        "objectClassName": "entity",
        "handle": "SIM-REGISTRAR",
        "roles": ["registrar"],
        "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", name]]],
    }


def _set_registrar(data: dict[str, Any], name: str) -> None:
    entities = data.setdefault("entities", [])
    entity = next((e for e in entities if isinstance(e, dict) and "registrar" in e.get("roles", [])), None)
    if entity is None:
        entities.append(_registrar_entity(name))
        return
    card = entity.get("vcardArray")
    props = card[1] if isinstance(card, list) and len(card) > 1 and isinstance(card[1], list) else None
    if props is None:
        entity["vcardArray"] = _registrar_entity(name)["vcardArray"]
    else:
        named = [p for p in props if isinstance(p, list) and len(p) >= 4 and p[0] in ("fn", "org")]
        for prop in named:
            prop[3] = name
        if not named:
            props.append(["fn", {}, "text", name])
    # The old registrar's IANA id would now name the wrong registrar.
    ids = entity.get("publicIds")
    if isinstance(ids, list):
        entity["publicIds"] = [i for i in ids if not (isinstance(i, dict) and str(i.get("type")).lower() == _IANA)]


def _minimal(name: str, base_url: str, created_at: str) -> dict[str, Any]:
    """A new name's domain object: the members the recorded answers carry, nothing else."""
    self_url = f"{base_url}rdap/domain/{name}"
    expires = format_time(parse_time(created_at) + timedelta(days=365))
    return {
        "objectClassName": "domain",
        "rdapConformance": ["rdap_level_0"],
        "handle": f"SIM-{name.upper()}",
        "ldhName": name,
        "links": [{"value": self_url, "rel": "self", "href": self_url, "type": rdap.RDAP_MEDIA}],
        "status": ["active"],
        "events": [
            {"eventAction": "registration", "eventDate": created_at},
            {"eventAction": "expiration", "eventDate": expires},
        ],
        "entities": [_registrar_entity("vendor_sim Registrar")],
        "nameservers": [],
        "secureDNS": {"delegationSigned": False},
    }
