"""GoDaddy contacts: the PATCH /v1/domains/{domain}/contacts body, built from the domain's current contacts.

GoDaddy's `Contact` needs nameFirst, nameLast, email, phone and a full `addressMailing` (address1, city,
state, postalCode, country), which RegistrarContact does not carry. So a change is laid over the
contact as GoDaddy holds it (from GET /v1/domains/{domain}) and every role GoDaddy holds is sent back
whole: nothing the caller did not mean to change is dropped or wiped. Shapes per GoDaddy's published
v1 schema (`DomainContacts`, `Contact`, `Address`: https://developer.godaddy.com/doc/endpoint/domains).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from mspkit.http import VendorPermanentError, VendorResponseError
from vendor_sync.adapters.registrar_types import RegistrarContact

VENDOR = "godaddy"
Role = Literal["registrant", "admin", "tech", "billing"]
ROLES: tuple[tuple[str, Role], ...] = (
    ("contactRegistrant", "registrant"),
    ("contactAdmin", "admin"),
    ("contactTech", "tech"),
    ("contactBilling", "billing"),
)
# Only the keys of GoDaddy's Contact and Address schemas are sent back; anything else an answer holds
# is neither trusted nor forwarded.
CONTACT_KEYS = ("nameFirst", "nameMiddle", "nameLast", "organization", "jobTitle", "email", "phone", "fax")
ADDRESS_KEYS = ("address1", "address2", "city", "state", "postalCode", "country")
REQUIRED_CONTACT = ("nameFirst", "nameLast", "email", "phone")
REQUIRED_ADDRESS = ("address1", "city", "state", "postalCode", "country")
# RegistrarContact attribute -> GoDaddy Contact key.
OVERLAY = (
    ("name_first", "nameFirst"),
    ("name_last", "nameLast"),
    ("organization", "organization"),
    ("email", "email"),
    ("phone", "phone"),
)
MAX_TEXT = 300
_MAX_FIELD = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# GoDaddy's `phone` format: +CC.NUMBER (the EPP form), e.g. +1.4805058800.
_PHONE = re.compile(r"\+\d{1,3}\.\d{4,14}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,253}")
_ROLE_NAMES = frozenset(role for _key, role in ROLES)


def clean_text(value: Any) -> str | None:
    """A vendor value as one bounded line of text (numbers kept as GoDaddy sent them), or None."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = _CONTROL.sub(" ", str(value)).strip()
    return text[:MAX_TEXT] or None


def contact_changes(contacts: Sequence[RegistrarContact]) -> dict[Role, dict[str, str]]:
    """Each role's changed fields under GoDaddy's names (None leaves a field as it is), checked before any call."""
    if isinstance(contacts, str | bytes) or not isinstance(contacts, Sequence):
        raise VendorPermanentError("godaddy: contacts must be a list of RegistrarContact", vendor=VENDOR)
    changes: dict[Role, dict[str, str]] = {}
    for contact in contacts:
        if not isinstance(contact, RegistrarContact) or contact.role not in _ROLE_NAMES:
            raise VendorPermanentError("godaddy: a contact is not a RegistrarContact of a known role", vendor=VENDOR)
        if contact.role in changes:
            raise VendorPermanentError(f"godaddy: the {contact.role} contact is given twice", vendor=VENDOR)
        fields: dict[str, str] = {}
        for attr, key in OVERLAY:
            value = getattr(contact, attr)
            if value is not None:
                fields[key] = _checked(value, key, contact.role)
        changes[contact.role] = fields
    if not any(changes.values()):
        raise VendorPermanentError("godaddy: no contact changes given", vendor=VENDOR)
    return changes


def contacts_body(domain: Mapping[str, Any], changes: Mapping[Role, Mapping[str, str]]) -> dict[str, Any]:
    """The DomainContacts body: every role GoDaddy holds, as it holds it, with the changes laid over it."""
    body: dict[str, Any] = {}
    for key, role in ROLES:
        current = domain.get(key)
        if not isinstance(current, Mapping):
            if role in changes:
                # Without the current contact there is no mailing address to keep: inventing one is worse.
                message = f"godaddy: the domain has no {role} contact to change; nothing sent"
                raise VendorPermanentError(message, vendor=VENDOR)
            if role == "registrant":
                raise VendorResponseError("godaddy: the domain answer has no registrant contact", vendor=VENDOR)
            continue
        contact = _kept(current)
        contact.update(changes.get(role, {}))
        address = contact["addressMailing"]
        missing = [k for k in REQUIRED_CONTACT if not contact.get(k)]
        missing += [f"addressMailing.{k}" for k in REQUIRED_ADDRESS if not address.get(k)]
        if missing:
            # GoDaddy refuses a contact without them; sending one anyway risks a half-written set.
            message = f"godaddy: the {role} contact lacks {', '.join(missing)}; nothing sent"
            raise VendorPermanentError(message, vendor=VENDOR)
        body[key] = contact
    return body


def _kept(current: Mapping[str, Any]) -> dict[str, Any]:
    """The schema's fields of one contact as GoDaddy holds it, as text (it has sent phones as numbers)."""
    contact: dict[str, Any] = {}
    for key in CONTACT_KEYS:
        text = clean_text(current.get(key))
        if text is not None:
            contact[key] = text
    mailing = current.get("addressMailing")
    mailing = mailing if isinstance(mailing, Mapping) else {}
    address: dict[str, str] = {}
    for key in ADDRESS_KEYS:
        text = clean_text(mailing.get(key))
        if text is not None:
            address[key] = text
    contact["addressMailing"] = address
    return contact


def _checked(value: Any, key: str, role: str) -> str:
    text = value.strip() if isinstance(value, str) else None
    bad = text is None or len(text) > _MAX_FIELD or _CONTROL.search(text) is not None
    # Only the organization may be cleared; a person's name, email and phone are required by GoDaddy.
    bad = bad or (not text and key != "organization")
    bad = bad or (key == "phone" and not _PHONE.fullmatch(text or ""))
    bad = bad or (key == "email" and not _EMAIL.fullmatch(text or ""))
    if bad or text is None:
        raise VendorPermanentError(f"godaddy: invalid {role} {key}", vendor=VENDOR)
    return text
