"""Cloudflare's simulated account: zones and records, their checks, and the /_sim state shape."""

from __future__ import annotations

import ipaddress
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vendor_sim.validate import Problems, fields, hostname, is_int

TYPES = frozenset(
    "A AAAA CAA CERT CNAME DNSKEY DS HTTPS LOC MX NAPTR NS PTR SMIMEA SRV SSHFP SVCB TLSA TXT URI".split()
)
_STATE_RECORD = ("type", "name", "content", "ttl")
DUPLICATE = (81057, "The record already exists.")
CNAME_CLASH = (81053, "An A, AAAA, or CNAME record with that host already exists.")
# CAA in presentation form (flags tag "value") or as Cloudflare's tab-joined content.
_CAA = re.compile(r'(\d{1,3})\s+([A-Za-z0-9]{1,15})\s+(?:"((?:[^"\\]|\\.)*)"|(\S.*))')
_UNESCAPE = re.compile(r"\\(.)")


def stamp() -> str:
    """Now, as Cloudflare writes times (microseconds, Z)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Record:
    """One DNS record; `name` is the full name, as Cloudflare returns it."""

    type: str
    name: str
    content: str
    ttl: int
    priority: int | None = None
    proxied: bool = False
    id: str = field(default_factory=_new_id)
    created_on: str = field(default_factory=stamp)
    modified_on: str = field(default_factory=stamp)

    def key(self) -> tuple[str, str, str]:
        """What makes two records the same for Cloudflare's duplicate check."""
        return self.type, self.name, self.content.lower() if self.type != "TXT" else self.content


@dataclass
class Zone:
    """One zone and its records (insertion order)."""

    name: str
    id: str = field(default_factory=_new_id)
    records: dict[str, Record] = field(default_factory=dict)
    created_on: str = field(default_factory=stamp)


def check(zone_name: str, data: dict[str, Any], *, state: bool) -> tuple[dict[str, Any], list[tuple[str, int, str]]]:
    """Normalised record fields and each problem as (field, code, words)."""
    out: dict[str, Any] = {}
    bad: list[tuple[str, int, str]] = []
    kind = data.get("type")
    if isinstance(kind, str) and kind.upper() in TYPES:
        out["type"] = kind.upper()
    elif "type" in data:
        bad.append(("type", 9004, "DNS record type is invalid"))
    if "name" in data:
        raw = data["name"]
        full = zone_name if raw == "@" else raw
        if isinstance(full, str) and not full.lower().rstrip(".").endswith(zone_name):
            full = f"{full}.{zone_name}"
        name = hostname(full, min_labels=1)
        if name is None or not (name == zone_name or name.endswith(f".{zone_name}")):
            bad.append(("name", 9000, "DNS name is invalid"))
        out["name"] = name
    if "data" in data and not state and out.get("type") == "CAA":
        # Cloudflare takes a CAA record as `data`; the simulator keeps it in presentation form.
        item = data["data"] if isinstance(data["data"], dict) else {}
        out["content"] = _caa_text(item.get("flags"), item.get("tag"), item.get("value"), bad)
    elif "content" in data:
        out["content"] = _content(out.get("type", str(kind).upper()), data["content"], bad)
    if "ttl" in data:
        if data["ttl"] == 1 or is_int(data["ttl"], 30, 86400):
            out["ttl"] = data["ttl"]
        else:
            bad.append(("ttl", 9021, "Invalid TTL. Must be between 30 and 86400 seconds, or 1 for automatic"))
    if "priority" in data:
        if data["priority"] is None and state:
            out["priority"] = None
        elif is_int(data["priority"], 0, 65535):
            out["priority"] = data["priority"]
        else:
            bad.append(("priority", 9100, "priority must be an integer from 0 to 65535"))
    if "proxied" in data and not state:
        if isinstance(data["proxied"], bool):
            out["proxied"] = data["proxied"]
        else:
            bad.append(("proxied", 9003, "proxied must be true or false"))
    return out, bad


def _content(kind: str, value: Any, bad: list[tuple[str, int, str]]) -> str | None:
    if not isinstance(value, str) or not value.strip() or len(value) > 4096:
        bad.append(("content", 9011, "Length of content is invalid"))
        return None
    try:
        if kind == "A":
            return str(ipaddress.IPv4Address(value.strip()))
        if kind == "AAAA":
            return str(ipaddress.IPv6Address(value.strip()))
    except ValueError:
        bad.append(("content", 9005, f"Content for {kind} record is invalid."))
        return None
    if kind == "CAA":
        data = caa_data(value) or {}
        return _caa_text(data.get("flags"), data.get("tag"), data.get("value"), bad)
    if kind in ("CNAME", "MX", "NS", "PTR"):
        name = hostname(value, min_labels=1)
        if name is None:
            bad.append(("content", 9005, f"Content for {kind} record is invalid."))
        return name
    return value


def caa_data(content: str) -> dict[str, Any] | None:
    """Cloudflare's CAA `data` {flags, tag, value} from either content form, or None."""
    match = _CAA.fullmatch(content.strip())
    if match is None:
        return None
    quoted, bare = match.group(3), match.group(4)
    value = _UNESCAPE.sub(r"\1", quoted) if quoted is not None else bare
    return {"flags": int(match.group(1)), "tag": match.group(2).lower(), "value": value}


def _caa_text(flags: Any, tag: Any, value: Any, bad: list[tuple[str, int, str]]) -> str | None:
    if not is_int(flags, 0, 255) or not isinstance(tag, str) or not tag.isalnum() or not isinstance(value, str):
        bad.append(("content", 9005, "Content for CAA record is invalid."))
        return None
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{flags} {tag.lower()} "{escaped}"'


def clash(zone: Zone, record: Record, skip: str | None = None) -> tuple[int, str] | None:
    """Cloudflare's code and words when a record duplicates another or a CNAME shares its name."""
    others = [r for r in zone.records.values() if r.id != skip]
    if any(r.key() == record.key() for r in others):
        return DUPLICATE
    if any(r.name == record.name and "CNAME" in (r.type, record.type) for r in others):
        return CNAME_CLASH
    return None


class Store:
    """Every zone of the simulated account, by id."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.zones: dict[str, Zone] = {}

    def reset(self) -> None:
        """No zones."""
        with self.lock:
            self.zones = {}

    def snapshot(self) -> dict[str, Any]:
        """{"zones": [{"id", "name", "records": [{"id", "type", "name", "content", "ttl", "priority"?}]}]}."""
        with self.lock:
            return {"zones": [_state_zone(zone) for zone in sorted(self.zones.values(), key=lambda z: z.name)]}

    def replace(self, body: Any) -> Problems:
        """Validate the contract's shape and replace every zone; nothing changes on any problem."""
        problems = Problems()
        if not fields(problems, "", body, required=("zones",), optional=()):
            return problems
        if not isinstance(body["zones"], list):
            problems.add("zones", "must be a list")
            return problems
        zones: dict[str, Zone] = {}
        for index, item in enumerate(body["zones"]):
            zone = _state_zone_in(problems, f"zones.{index}", item, zones)
            if zone is not None:
                zones[zone.id] = zone
        if not problems:
            with self.lock:
                self.zones = zones
        return problems


def _state_zone(zone: Zone) -> dict[str, Any]:
    records = []
    for record in zone.records.values():
        item: dict[str, Any] = {k: getattr(record, k) for k in ("id", *_STATE_RECORD)}
        if record.priority is not None:
            item["priority"] = record.priority
        records.append(item)
    return {"id": zone.id, "name": zone.name, "records": records}


def _state_zone_in(problems: Problems, path: str, item: Any, zones: dict[str, Zone]) -> Zone | None:
    if not fields(problems, path, item, required=("name", "records"), optional=("id",)):
        return None
    name = hostname(item["name"])
    if name is None:
        problems.add(f"{path}.name", "must be a domain name such as example.com")
    elif any(z.name == name for z in zones.values()):
        problems.add(f"{path}.name", "names a zone already listed")
    zone = Zone(name=name or "invalid.invalid")
    if "id" in item:
        if not isinstance(item["id"], str) or not item["id"].isalnum() or len(item["id"]) > 64 or item["id"] in zones:
            problems.add(f"{path}.id", "must be a unique alphanumeric id of at most 64 characters")
        else:
            zone.id = item["id"]
    if not isinstance(item["records"], list):
        problems.add(f"{path}.records", "must be a list")
        return zone
    for index, raw in enumerate(item["records"]):
        where = f"{path}.records.{index}"
        if not fields(problems, where, raw, required=_STATE_RECORD, optional=("priority", "id")):
            continue
        values, bad = check(zone.name, raw, state=True)
        for name_, _code, words in bad:
            problems.add(f"{where}.{name_}", words)
        no_priority = values.get("type") == "MX" and values.get("priority") is None
        if no_priority:
            problems.add(f"{where}.priority", "is required for an MX record")
        if bad or no_priority:
            continue
        record = Record(**values)
        if isinstance(raw.get("id"), str) and raw["id"].isalnum() and raw["id"] not in zone.records:
            record.id = raw["id"]
        elif "id" in raw:
            problems.add(f"{where}.id", "must be a unique alphanumeric id")
        if clash(zone, record) is not None:
            problems.add(where, "duplicates another record of this zone (same type, name and content) or its CNAME")
        zone.records[record.id] = record
    return zone
