"""What each request type becomes: tasks, their scope and the approval they wait for (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from intake.requests.schemas import (
    IspAccountSetupBody,
    PurchaseBody,
    SpamFilterSetupBody,
    VendorContactUpdateBody,
)
from intake.vendors import VendorAccountInfo

AnyBody: TypeAlias = PurchaseBody | IspAccountSetupBody | SpamFilterSetupBody | VendorContactUpdateBody


@dataclass(frozen=True)
class ApprovalPlan:
    """An approval the task waits for (created `pending`).

    `over_threshold_cents` set: needed only when that total exceeds the client's purchase threshold,
    read under the create's FOR SHARE lock on the client, so a concurrent change of the threshold
    cannot slip in between reading it and using it.
    """

    recipient_name: str
    contact_email: str | None
    party_category: str
    information_categories: tuple[str, ...]
    over_threshold_cents: int | None = None

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
    approval: ApprovalPlan | None = None

    def initial_status(self, threshold_cents: int) -> str:
        """The status the task starts in: waiting for its approval if one applies, else ready."""
        return "awaiting_approval" if self.approval and self.approval.needed(threshold_cents) else "ready"


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
    approval: ApprovalPlan | None,
    *,
    categories: tuple[str, ...] = (),
    vendor_accounts: tuple[str, ...] = (),
) -> Plan:
    return Plan((TaskPlan(type, title, categories, vendor_accounts, approval=approval),))


def expand(body: AnyBody, *, vendor: VendorAccountInfo | None = None) -> Plan:
    """Turn a validated request body into the tasks, scope and approval of the contract's table."""
    if isinstance(body, PurchaseBody):
        count = len(body.items)
        title = f"Purchase from {body.supplier.name} ({count} item{'s' if count != 1 else ''})"
        # Only a total strictly over the client's threshold needs the client's approval.
        supplier = ApprovalPlan(
            body.supplier.name,
            body.supplier.contact_email,
            "provider_for_client",
            ("billing", "contact_info"),
            over_threshold_cents=purchase_total_cents(body),
        )
        return _one_task("purchase", title, supplier)
    if isinstance(body, IspAccountSetupBody):
        isp = ApprovalPlan(
            body.isp_name, body.isp_contact_email, "provider_for_client", ("contact_info", "service_address", "billing")
        )
        return _one_task("isp_account_setup", f"ISP account setup with {body.isp_name}", isp, categories=("isp",))
    if isinstance(body, SpamFilterSetupBody):
        provider = ApprovalPlan(body.provider, None, "provider_for_msp", ("domain", "mail_routing", "contact_info"))
        title = f"Spam filter setup for {body.domain} with {body.provider}"
        return _one_task("spam_filter_setup", title, provider, categories=("spam_filter", "dns_host"))
    if vendor is None:
        raise ValueError("a vendor_contact_update expands only with its vendor account")
    contact_approval = None
    # Contact data goes to the vendor only when contacts are added or changed; removals disclose nothing.
    if body.contacts.add or body.contacts.update:
        recipient = vendor.vendor_name or f"{vendor.vendor_kind} vendor"
        contact_approval = ApprovalPlan(recipient, vendor.support_email, "provider_for_client", ("contact_info",))
    return _one_task(
        "vendor_contact_update",
        f"Vendor contact update for {vendor.vendor_name or vendor.vendor_kind} account",
        contact_approval,
        categories=(vendor.credential_category,),
        vendor_accounts=(str(vendor.id),),
    )
