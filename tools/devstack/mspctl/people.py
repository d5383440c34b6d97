"""The demo people the dev issuer signs in: the staff always, each demo client's two people once seeded.

`demo.seed` records them in `<devstack>/people.json` (client people need the client ids the seeding
creates); the issuer's sign-in page and `mspctl people` read that file.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from mspctl.demo import CLIENTS, STAFF
from mspctl.files import read_json, write_json_private
from mspctl.layout import Layout

PEOPLE_FILE = "people.json"


@dataclass(frozen=True)
class Person:
    """One demo person: who they are and what their tokens say."""

    sub: str
    role: str
    client_id: str | None
    name: str
    email: str


def _staff() -> list[Person]:
    return [Person(p["sub"], p["role"], None, p["display_name"], p["email"]) for p in STAFF]


def client_slug(name: str) -> str:
    """A client's short name for its people's subs: `Acme Dental` -> `acme`."""
    return re.sub(r"[^a-z0-9]+", "-", name.split()[0].lower()).strip("-")


def client_people(clients: dict[str, str]) -> list[Person]:
    """Each demo client's `<slug>-admin` (client_admin) and `<slug>-user` (client_user), given {name: id}."""
    people: list[Person] = []
    for spec in CLIENTS:
        client_id = clients[spec["name"]]
        slug = client_slug(spec["name"])
        # The client's approver is its admin (the owner who approves disclosures); the user is the office.
        approver = spec["approver_emails"][0]
        domain = approver.partition("@")[2]
        people.append(Person(f"{slug}-admin", "client_admin", client_id, f"{spec['name']} owner", approver))
        people.append(Person(f"{slug}-user", "client_user", client_id, f"{spec['name']} office", f"office@{domain}"))
    return people


def record(layout: Layout, clients: dict[str, str]) -> list[Person]:
    """Write every demo person (staff and the seeded clients' people) to `<devstack>/people.json`."""
    people = _staff() + client_people(clients)
    subs = [p.sub for p in people]
    if len(set(subs)) != len(subs):
        raise ValueError(f"demo people's subs must be unique, got {subs}")
    write_json_private(layout.root / PEOPLE_FILE, {"people": [asdict(p) for p in people]})
    return people


def load(layout: Layout) -> list[Person]:
    """The demo people of a devstack: the recorded ones, or only the staff before the demo is seeded."""
    recorded: list[dict[str, Any]] = read_json(layout.root / PEOPLE_FILE).get("people") or []
    if not recorded:
        return _staff()
    return [Person(p["sub"], p["role"], p.get("client_id"), p.get("name", ""), p.get("email", "")) for p in recorded]


def find(layout: Layout, sub: str) -> Person | None:
    """The demo person with that sub, if any."""
    return next((p for p in load(layout) if p.sub == sub), None)
