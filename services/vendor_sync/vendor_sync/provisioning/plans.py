"""Which steps each provisionable request becomes, and the words of the steps a person carries out (pure).

Step names are stable: they key the local step table and intake's idempotency keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PROVISIONABLE = frozenset({"spam_filter_setup", "vendor_contact_update", "isp_account_setup"})

# spam_filter_setup
PROVISION_DOMAIN = "provision_spam_filter_domain"
SET_MX = "set_mx_records"
# vendor_contact_update
VENDOR_CONTACTS = "update_vendor_contacts"
REGISTRY_CONTACTS = "update_registry_contacts"
CONTACTS_BY_HAND = "change_contacts_by_hand"
# isp_account_setup (all by hand)
ISP_ORDER = "isp_place_order"
ISP_ADDRESS = "isp_give_service_address"
ISP_SITE = "isp_arrange_site_visit"
ISP_RECORD = "isp_record_account"

# What goes to each vendor, as the approval's information categories name it.
SPAM_FILTER_DISCLOSES = ("domain", "mail_routing")
CONTACTS_DISCLOSE = ("contact_info",)
# intake's step detail is at most this long.
DETAIL_MAX = 4000


@dataclass(frozen=True)
class HumanStep:
    """A step a person carries out: its name and exactly what to do."""

    name: str
    detail: str


def clip(text: str) -> str:
    """Text cut to what intake takes as a step's detail."""
    return text if len(text) <= DETAIL_MAX else text[: DETAIL_MAX - 1] + "…"


def _line(*parts: Any) -> str:
    return ", ".join(str(p) for p in parts if p not in (None, ""))


def isp_steps(body: Mapping[str, Any]) -> list[HumanStep]:
    """The checklist of an ISP order: what the ISP needs, taken from the request."""
    isp = body.get("isp_name") or "the ISP"
    address = body.get("service_address") or {}
    site = body.get("site_contact") or {}
    contact = body.get("isp_contact_email")
    order = f'Order service tier "{body.get("service_tier")}" from {isp}' + (f" ({contact})" if contact else "") + "."
    where = _line(
        address.get("line1"),
        address.get("line2"),
        address.get("city"),
        _line(address.get("region"), address.get("postal_code")).replace(", ", " "),
        address.get("country"),
    )
    who = _line(site.get("name"), site.get("email"), site.get("phone"))
    return [
        HumanStep(ISP_ORDER, clip(order)),
        HumanStep(ISP_ADDRESS, clip(f"Give {isp} the service address: {where}.")),
        HumanStep(ISP_SITE, clip(f"Arrange the installation with the site contact: {who}.")),
        HumanStep(
            ISP_RECORD,
            clip(f"Record the new {isp} account in the registry, and its credentials in the broker."),
        ),
    ]


def _contact_words(contact: Mapping[str, Any]) -> str:
    extras = _line(contact.get("role"), contact.get("email"), contact.get("phone"))
    return f"{contact.get('name')}" + (f" ({extras})" if extras else "")


def contact_change_lines(changes: Mapping[str, Any], current: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Each change in words: additions, updates (field: old → new) and removals, by the contacts' names.

    `current` maps contact ids (as text) to the registry's contact; an id it lacks is named as unknown.
    """
    lines = [f"Add {_contact_words(c)}." for c in changes.get("add") or []]
    for update in changes.get("update") or []:
        known = current.get(str(update.get("id")))
        if known is None:
            lines.append(f"Contact {update.get('id')} is not one of this account's contacts: change nothing for it.")
            continue
        moves = [
            f"{field} {known.get(field) or '(none)'} → {update[field]}"
            for field in ("name", "role", "email", "phone")
            if update.get(field) is not None and update.get(field) != known.get(field)
        ]
        if moves:
            lines.append(f"Change {known.get('name')}: {'; '.join(moves)}.")
    for removed in changes.get("remove") or []:
        known = current.get(str(removed))
        lines.append(f"Remove {_contact_words(known)}." if known else f"Contact {removed} is already gone.")
    return lines


def contacts_by_hand(vendor: str, account_number: str, lines: Sequence[str]) -> HumanStep:
    """The one step of a contact update at a vendor whose adapter cannot change contacts."""
    what = " ".join(lines) if lines else "Nothing to change."
    return HumanStep(
        CONTACTS_BY_HAND,
        clip(f"At {vendor} (account {account_number}): {what} Then make the same changes in the registry."),
    )


def pick_approval(approvals: Sequence[Mapping[str, Any]], vendor_id: str) -> str | None:
    """The approval for this recipient vendor: an approved one first, else the latest (the broker then says why not)."""
    mine = [a for a in approvals if str(a.get("vendor_id")) == vendor_id and a.get("id")]
    approved = [a for a in mine if a.get("status") == "approved"]
    chosen = (approved or mine)[-1:] if (approved or mine) else []
    return str(chosen[0]["id"]) if chosen else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def task_view(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The ids and statuses provisioning keeps from intake's task (approvals by recipient vendor, scope accounts)."""
    approvals = []
    for approval in answer.get("approvals") or []:
        if not isinstance(approval, Mapping):
            continue
        recipient = _mapping(approval.get("recipient"))
        approvals.append(
            {
                "id": approval.get("id"),
                "status": approval.get("status"),
                "vendor_id": recipient.get("vendor_id"),
                "information_categories": list(approval.get("information_categories") or []),
            }
        )
    scope = _mapping(answer.get("scope"))
    return {
        "approvals": approvals,
        "vendor_account_ids": [str(v) for v in scope.get("vendor_account_ids") or []],
        "request_id": answer.get("request_id"),
    }
