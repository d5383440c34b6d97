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

    `over_threshold_cents` set: needed only when that total exceeds the client's purchase threshold.
    The threshold is compared in the statement that writes the task, so a concurrent change of the
    client's threshold cannot slip in between reading it and using it.
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
    """One task to create; it starts `awaiting_approval` when it has an approval, else `ready`."""

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


def expand(body: AnyBody, *, vendor: VendorAccountInfo | None = None) -> Plan:
    """Turn a validated request body into the tasks, scope and approval of the contract's table."""
    if isinstance(body, PurchaseBody):
        # Only a total strictly over the client's threshold needs the client's approval.
        approval = ApprovalPlan(
            recipient_name=body.supplier.name,
            contact_email=body.supplier.contact_email,
            party_category="provider_for_client",
            information_categories=("billing", "contact_info"),
            over_threshold_cents=purchase_total_cents(body),
        )
        count = len(body.items)
        title = f"Purchase from {body.supplier.name} ({count} item{'s' if count != 1 else ''})"
        return Plan((TaskPlan(type="purchase", title=title, approval=approval),))
    if isinstance(body, IspAccountSetupBody):
        return Plan(
            (
                TaskPlan(
                    type="isp_account_setup",
                    title=f"ISP account setup with {body.isp_name}",
                    credential_categories=("isp",),
                    approval=ApprovalPlan(
                        recipient_name=body.isp_name,
                        contact_email=body.isp_contact_email,
                        party_category="provider_for_client",
                        information_categories=("contact_info", "service_address", "billing"),
                    ),
                ),
            )
        )
    if isinstance(body, SpamFilterSetupBody):
        return Plan(
            (
                TaskPlan(
                    type="spam_filter_setup",
                    title=f"Spam filter setup for {body.domain} with {body.provider}",
                    credential_categories=("spam_filter", "dns_host"),
                    approval=ApprovalPlan(
                        recipient_name=body.provider,
                        contact_email=None,
                        party_category="provider_for_msp",
                        information_categories=("domain", "mail_routing", "contact_info"),
                    ),
                ),
            )
        )
    if vendor is None:
        raise ValueError("a vendor_contact_update expands only with its vendor account")
    contact_approval = None
    # Contact data goes to the vendor only when contacts are added or changed; removals disclose nothing.
    if body.contacts.add or body.contacts.update:
        contact_approval = ApprovalPlan(
            recipient_name=vendor.vendor_name or f"{vendor.vendor_kind} vendor",
            contact_email=vendor.support_email,
            party_category="provider_for_client",
            information_categories=("contact_info",),
        )
    return Plan(
        (
            TaskPlan(
                type="vendor_contact_update",
                title=f"Vendor contact update for {vendor.vendor_name or vendor.vendor_kind} account",
                credential_categories=(vendor.credential_category,),
                vendor_account_ids=(str(vendor.id),),
                approval=contact_approval,
            ),
        )
    )
