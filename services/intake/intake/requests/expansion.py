"""What each request type becomes: tasks, their scope and the approval they wait for (pure functions)."""

from __future__ import annotations

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
    # Internal notes written with the task (e.g. that the registry did not answer).
    notes: tuple[str, ...] = ()

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
    notes: tuple[str, ...] = (),
) -> Plan:
    return Plan((TaskPlan(type, title, categories, vendor_accounts, approval=approval, notes=notes),))


def spam_filter_accounts(body: SpamFilterSetupBody, accounts: Sequence[ClientAccount]) -> tuple[str, ...]:
    """The spam-filter accounts at the body's provider, then the DNS host: the client's only `dns_host` account.

    With no synced zones yet, a client with two DNS hosts gives none: guessing would open the wrong one.
    """
    filters = [a for a in accounts if a.vendor_kind == "spam_filter" and a.vendor_adapter == body.provider]
    dns_hosts = [a for a in accounts if a.vendor_kind == "dns_host"]
    chosen = filters + (dns_hosts if len(dns_hosts) == 1 else [])
    return tuple(str(a.id) for a in chosen)


def isp_accounts(body: IspAccountSetupBody, accounts: Sequence[ClientAccount]) -> tuple[str, ...]:
    """The client's `isp` accounts at the vendor named `isp_name`, ignoring case (vendor names are unique)."""
    wanted = body.isp_name.casefold()
    return tuple(
        str(a.id)
        for a in accounts
        if a.vendor_kind == "isp" and a.vendor_name is not None and a.vendor_name.casefold() == wanted
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
        return _one_task(
            "isp_account_setup",
            f"ISP account setup with {body.isp_name}",
            isp,
            categories=("isp",),
            vendor_accounts=isp_accounts(body, found),
            notes=notes,
        )
    if isinstance(body, SpamFilterSetupBody):
        provider = ApprovalPlan(body.provider, None, "provider_for_msp", ("domain", "mail_routing", "contact_info"))
        title = f"Spam filter setup for {body.domain} with {body.provider}"
        return _one_task(
            "spam_filter_setup",
            title,
            provider,
            categories=("spam_filter", "dns_host"),
            vendor_accounts=spam_filter_accounts(body, found),
            notes=notes,
        )
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
