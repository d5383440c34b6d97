"""What each request type becomes: tasks, their scope and the approval they wait for (pure functions)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from intake.requests.schemas import (
    IspAccountSetupBody,
    PurchaseBody,
    SpamFilterSetupBody,
    VendorContactUpdateBody,
)
from intake.vendors import SCOPE_DEADLINE_S, ClientAccount, VendorAccountInfo

AnyBody: TypeAlias = PurchaseBody | IspAccountSetupBody | SpamFilterSetupBody | VendorContactUpdateBody

# The vendor kinds whose vendor (name, adapter) expansion needs to pick a client's accounts.
SCOPED_VENDOR_KINDS: Final = frozenset({"spam_filter", "isp"})
REGISTRY_SILENT_NOTE: Final = (
    f"vendor_sync did not answer within {SCOPE_DEADLINE_S:g} s when this task was created, so its scope "
    "holds only its credential categories and no vendor account. An admin can add the accounts the work "
    "needs with POST /v1/tasks/{id}/scope."
)


def reads_registry(body: AnyBody) -> bool:
    """Whether expanding this body needs the client's vendor accounts (read before the transaction)."""
    return isinstance(body, IspAccountSetupBody | SpamFilterSetupBody)


@dataclass(frozen=True)
class ApprovalPlan:
    """An approval the task waits for (created `pending`).

    `over_threshold_cents` set: needed only when that total exceeds the client's purchase threshold,
    read under the create's FOR SHARE lock on the client, so a concurrent change of the threshold
    cannot slip in between reading it and using it. `vendor_id`: the registry's vendor the
    information goes to (the broker ledgers a disclosure to a vendor only against an approval naming
    it); None for a recipient that is no vendor of the registry, or one the registry did not show.
    """

    recipient_name: str
    contact_email: str | None
    party_category: str
    information_categories: tuple[str, ...]
    over_threshold_cents: int | None = None
    vendor_id: uuid.UUID | None = None

    def needed(self, threshold_cents: int) -> bool:
        """Whether the approval applies for a client with this purchase threshold."""
        return self.over_threshold_cents is None or self.over_threshold_cents > threshold_cents


@dataclass(frozen=True)
class TaskPlan:
    """One task to create; `initial_status` is the one place that decides the status it starts in."""

    type: str
    title: str
    credential_categories: tuple[str, ...] = ()
    vendor_account_ids: tuple[str, ...] = ()
    credential_ids: tuple[str, ...] = ()
    # One per recipient: a request whose information goes to several vendors waits for each.
    approvals: tuple[ApprovalPlan, ...] = ()
    # Internal notes written with the task (e.g. that the registry did not answer).
    notes: tuple[str, ...] = ()

    def needed_approvals(self, threshold_cents: int) -> tuple[ApprovalPlan, ...]:
        """The approvals that apply for a client with this purchase threshold."""
        return tuple(a for a in self.approvals if a.needed(threshold_cents))

    def initial_status(self, threshold_cents: int) -> str:
        """The status the task starts in: waiting for its approvals if any applies, else ready."""
        return "awaiting_approval" if self.needed_approvals(threshold_cents) else "ready"


@dataclass(frozen=True)
class Plan:
    """The whole expansion of one request."""

    tasks: tuple[TaskPlan, ...] = field(default_factory=tuple)


def purchase_total_cents(body: PurchaseBody) -> int:
    """Sum of quantity times unit price."""
    return sum(item.quantity * item.unit_price_cents for item in body.items)


def _one_task(
    type: str,
    title: str,
    approvals: tuple[ApprovalPlan, ...],
    *,
    categories: tuple[str, ...] = (),
    vendor_accounts: tuple[str, ...] = (),
    notes: tuple[str, ...] = (),
) -> Plan:
    return Plan((TaskPlan(type, title, categories, vendor_accounts, approvals=approvals, notes=notes),))


def _by_vendor(accounts: Sequence[ClientAccount]) -> list[ClientAccount]:
    """One account per vendor, in the order found: each vendor is one recipient, however many accounts."""
    first: dict[uuid.UUID, ClientAccount] = {}
    for account in accounts:
        first.setdefault(account.vendor_id, account)
    return list(first.values())


def spam_filter_recipients(body: SpamFilterSetupBody, accounts: Sequence[ClientAccount]) -> tuple[ApprovalPlan, ...]:
    """One approval per spam-filter vendor the domain goes to: the vendors of the provider's accounts.

    With no such account found (none yet, or the registry silent) the approval names the provider
    alone, with no vendor: the client still decides, and no disclosure can be ledgered against it.
    """
    categories = ("domain", "mail_routing", "contact_info")
    filters = [a for a in accounts if a.vendor_kind == "spam_filter" and a.vendor_adapter == body.provider]
    if not filters:
        return (ApprovalPlan(body.provider, None, "provider_for_msp", categories),)
    return tuple(
        ApprovalPlan(
            a.vendor_name or body.provider,
            a.vendor_support_email,
            "provider_for_msp",
            categories,
            vendor_id=a.vendor_id,
        )
        for a in _by_vendor(filters)
    )


def spam_filter_accounts(body: SpamFilterSetupBody, accounts: Sequence[ClientAccount]) -> tuple[str, ...]:
    """The spam-filter accounts at the body's provider, then the DNS host: the client's only `dns_host` account.

    With no synced zones yet, a client with two DNS hosts gives none: guessing would open the wrong one.
    """
    filters = [a for a in accounts if a.vendor_kind == "spam_filter" and a.vendor_adapter == body.provider]
    dns_hosts = [a for a in accounts if a.vendor_kind == "dns_host"]
    chosen = filters + (dns_hosts if len(dns_hosts) == 1 else [])
    return tuple(str(a.id) for a in chosen)


def _isp_matches(body: IspAccountSetupBody, accounts: Sequence[ClientAccount]) -> list[ClientAccount]:
    wanted = body.isp_name.casefold()
    return [
        a
        for a in accounts
        if a.vendor_kind == "isp" and a.vendor_name is not None and a.vendor_name.casefold() == wanted
    ]


def isp_accounts(body: IspAccountSetupBody, accounts: Sequence[ClientAccount]) -> tuple[str, ...]:
    """The client's `isp` accounts at the vendor named `isp_name`, ignoring case (vendor names are unique)."""
    return tuple(str(a.id) for a in _isp_matches(body, accounts))


def isp_recipient(body: IspAccountSetupBody, accounts: Sequence[ClientAccount]) -> ApprovalPlan:
    """The ISP's approval: named as the request names it, with its vendor when the registry has it.

    Vendor names are unique, so every matching account is at the same vendor: one recipient. The
    contact is the request's, else the vendor's support address.
    """
    vendors = _by_vendor(_isp_matches(body, accounts))
    vendor = vendors[0] if len(vendors) == 1 else None
    return ApprovalPlan(
        body.isp_name,
        body.isp_contact_email or (vendor.vendor_support_email if vendor else None),
        "provider_for_client",
        ("contact_info", "service_address", "billing"),
        vendor_id=vendor.vendor_id if vendor else None,
    )


def expand(
    body: AnyBody,
    *,
    vendor: VendorAccountInfo | None = None,
    accounts: Sequence[ClientAccount] | None = (),
) -> Plan:
    """Turn a validated request body into the tasks, scope and approval of the contract's table.

    `accounts`: the client's vendor accounts read from the registry at creation, or None when the
    registry did not answer (the task then keeps only its categories, with a note saying so).
    """
    found = accounts or ()
    notes = (REGISTRY_SILENT_NOTE,) if accounts is None else ()
    if isinstance(body, PurchaseBody):
        count = len(body.items)
        title = f"Purchase from {body.supplier.name} ({count} item{'s' if count != 1 else ''})"
        # Only a total strictly over the client's threshold needs the client's approval.
        # A supplier is named by the requester, not a vendor of the registry: no vendor id.
        supplier = ApprovalPlan(
            body.supplier.name,
            body.supplier.contact_email,
            "provider_for_client",
            ("billing", "contact_info"),
            over_threshold_cents=purchase_total_cents(body),
        )
        return _one_task("purchase", title, (supplier,))
    if isinstance(body, IspAccountSetupBody):
        return _one_task(
            "isp_account_setup",
            f"ISP account setup with {body.isp_name}",
            (isp_recipient(body, found),),
            categories=("isp",),
            vendor_accounts=isp_accounts(body, found),
            notes=notes,
        )
    if isinstance(body, SpamFilterSetupBody):
        title = f"Spam filter setup for {body.domain} with {body.provider}"
        return _one_task(
            "spam_filter_setup",
            title,
            spam_filter_recipients(body, found),
            categories=("spam_filter", "dns_host"),
            vendor_accounts=spam_filter_accounts(body, found),
            notes=notes,
        )
    if vendor is None:
        raise ValueError("a vendor_contact_update expands only with its vendor account")
    contact_approvals: tuple[ApprovalPlan, ...] = ()
    # Contact data goes to the vendor only when contacts are added or changed; removals disclose nothing.
    if body.contacts.add or body.contacts.update:
        recipient = vendor.vendor_name or f"{vendor.vendor_kind} vendor"
        contact_approvals = (
            ApprovalPlan(
                recipient, vendor.support_email, "provider_for_client", ("contact_info",), vendor_id=vendor.vendor_id
            ),
        )
    return _one_task(
        "vendor_contact_update",
        f"Vendor contact update for {vendor.vendor_name or vendor.vendor_kind} account",
        contact_approvals,
        categories=(vendor.credential_category,),
        vendor_accounts=(str(vendor.id),),
    )
