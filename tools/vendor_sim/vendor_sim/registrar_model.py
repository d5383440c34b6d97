"""A registrar account's domains (GoDaddy and Namecheap share the shape) and the /_sim state that sets them."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from vendor_sim.validate import Problems, fields, format_time, hostname, now, parse_time, timestamp

ROLES = ("registrant", "admin", "tech", "billing")
CONTACT_FIELDS = (
    "name_first",
    "name_last",
    "organization",
    "email",
    "phone",
    "address1",
    "address2",
    "city",
    "state",
    "postal_code",
    "country",
)
_DOMAIN_FIELDS = ("name", "nameservers", "contacts", "locked")


def _in_a_year() -> str:
    return format_time(datetime.now(UTC) + timedelta(days=365))


@dataclass(frozen=True)
class Domain:
    """One domain of the account; contacts by role, each a dict of CONTACT_FIELDS."""

    name: str
    id: int
    nameservers: tuple[str, ...] = ()
    contacts: dict[str, dict[str, str]] = field(default_factory=dict)
    locked: bool = True
    expires_at: str = field(default_factory=_in_a_year)
    created_at: str = field(default_factory=now)

    def expired(self) -> bool:
        """True once its expiry has passed."""
        return parse_time(self.expires_at) < datetime.now(UTC)

    def state(self) -> dict[str, Any]:
        """The /_sim state view."""
        return {
            "id": self.id,
            "name": self.name,
            "nameservers": list(self.nameservers),
            "contacts": {role: dict(c) for role, c in self.contacts.items()},
            "locked": self.locked,
            "expires_at": self.expires_at,
        }


class Store:
    """The account's domains by name; every change replaces a frozen Domain under the lock."""

    def __init__(self, first_id: int) -> None:
        self.lock = threading.RLock()
        self._first_id = first_id
        self.domains: dict[str, Domain] = {}

    def reset(self) -> None:
        """No domains."""
        with self.lock:
            self.domains = {}

    def snapshot(self) -> dict[str, Any]:
        """{"domains": [{"id", "name", "nameservers", "contacts", "locked", "expires_at"}]} by name."""
        with self.lock:
            return {"domains": [d.state() for d in self.sorted()]}

    def sorted(self) -> list[Domain]:
        """Every domain, by name."""
        with self.lock:
            return sorted(self.domains.values(), key=lambda d: d.name)

    def get(self, name: str) -> Domain | None:
        """One domain by (case-insensitive) name."""
        with self.lock:
            return self.domains.get(name.lower().rstrip("."))

    def update(self, name: str, **changes: Any) -> Domain | None:
        """Replace some fields of a domain; None when the account does not hold it."""
        with self.lock:
            domain = self.domains.get(name)
            if domain is not None:
                domain = self.domains[name] = replace(domain, **changes)
            return domain

    def replace(self, body: Any) -> Problems:
        """Validate {"domains": [...]} and replace every domain; nothing changes on any problem."""
        problems = Problems()
        if not fields(problems, "", body, required=("domains",), optional=()):
            return problems
        if not isinstance(body["domains"], list):
            problems.add("domains", "must be a list")
            return problems
        with self.lock:
            ids = itertools.count(self._first_id)
            domains: dict[str, Domain] = {}
            for index, item in enumerate(body["domains"]):
                domain = _domain(problems, f"domains.{index}", item, domains, ids)
                if domain is not None:
                    domains[domain.name] = domain
            if not problems:
                self.domains = domains
        return problems


def _domain(problems: Problems, path: str, item: Any, seen: dict[str, Domain], ids: Any) -> Domain | None:
    if not fields(problems, path, item, required=_DOMAIN_FIELDS, optional=("expires_at", "id")):
        return None
    before = len(problems.items)
    name = hostname(item["name"])
    if name is None:
        problems.add(f"{path}.name", "must be a domain name such as example.com")
    elif name in seen:
        problems.add(f"{path}.name", "names a domain already listed")
    servers = nameservers(problems, f"{path}.nameservers", item["nameservers"])
    people = contacts(problems, f"{path}.contacts", item["contacts"])
    if not isinstance(item["locked"], bool):
        problems.add(f"{path}.locked", "must be true or false")
    expires = timestamp(item["expires_at"]) if "expires_at" in item else _in_a_year()
    if expires is None:
        problems.add(f"{path}.expires_at", "must be an RFC 3339 time with an offset, such as 2030-01-31T00:00:00Z")
    domain_id = item.get("id", next(ids))
    if isinstance(domain_id, bool) or not isinstance(domain_id, int) or domain_id < 1:
        problems.add(f"{path}.id", "must be a positive integer")
    elif any(d.id == domain_id for d in seen.values()):
        problems.add(f"{path}.id", "is used by another domain listed")
    if len(problems.items) > before or name is None or expires is None:
        return None
    return Domain(name, domain_id, servers, people, item["locked"], expires)


def nameservers(problems: Problems, path: str, value: Any) -> tuple[str, ...]:
    """A list of host names, each checked."""
    if not isinstance(value, list) or len(value) > 13:
        problems.add(path, "must be a list of at most 13 host names")
        return ()
    names = []
    for index, item in enumerate(value):
        name = hostname(item)
        if name is None:
            problems.add(f"{path}.{index}", "must be a host name such as ns1.example.net")
        names.append(name or "")
    return tuple(dict.fromkeys(names))


def contacts(problems: Problems, path: str, value: Any) -> dict[str, dict[str, str]]:
    """{role: {CONTACT_FIELDS...}} with roles registrant, admin, tech, billing; every value a string."""
    if not fields(problems, path, value, required=(), optional=ROLES):
        return {}
    found: dict[str, dict[str, str]] = {}
    for role, contact in value.items():
        where = f"{path}.{role}"
        if not fields(problems, where, contact, required=(), optional=CONTACT_FIELDS):
            continue
        for key, text in contact.items():
            if not isinstance(text, str) or len(text) > 255:
                problems.add(f"{where}.{key}", "must be a string of at most 255 characters")
        email = contact.get("email")
        if isinstance(email, str) and email and "@" not in email:
            problems.add(f"{where}.email", "must be an email address")
        found[role] = {k: v for k, v in contact.items() if isinstance(v, str)}
    return found
