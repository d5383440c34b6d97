"""What a spam-filter adapter offers (inbound domains and their downstream mail servers), and what it returns."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from mspkit.http import VendorConflict
from vendor_sync.adapters.rdap import to_a_label

# Capability names an adapter may declare; sync and provisioning check them before calling.
DOMAINS_READ = "spam_domains.read"
DOMAINS_WRITE = "spam_domains.write"
DOWNSTREAM_READ = "downstream_addresses.read"
DOWNSTREAM_WRITE = "downstream_addresses.write"
KNOWN_CAPABILITIES = frozenset({DOMAINS_READ, DOMAINS_WRITE, DOWNSTREAM_READ, DOWNSTREAM_WRITE})

SMTP_PORT = 25


@dataclass(frozen=True)
class DownstreamAddress:
    """A mail server the filter delivers clean mail to: a host name or an IP address, and an SMTP port.

    Like an SRV record: only the lowest `priority` is used, shared between its servers by `weight`. The
    target is kept canonical (a lower-case A-label without the trailing dot, or a normalised IP literal)
    so that the same server compares equal however it was spelt.
    """

    target: str
    port: int = SMTP_PORT
    priority: int = 10
    weight: int = 10

    def __post_init__(self) -> None:
        for label, value, low in (("port", self.port, 1), ("priority", self.priority, 0), ("weight", self.weight, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= 65535:
                raise ValueError(f"downstream {label} must be an integer from {low} to 65535")
        object.__setattr__(self, "target", _canonical_target(self.target))


def _canonical_target(value: object) -> str:
    bare = value.strip().rstrip(".") if isinstance(value, str) else ""
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    try:
        return to_a_label(bare)[0]
    except ValueError:
        # Never echo the value: it came from a form or a vendor, and may be anything.
        raise ValueError("downstream target must be a host name or an IP address") from None


@dataclass(frozen=True)
class SpamFilterDomain:
    """A domain protected by the spam filter (A-label, lower-case); None means the vendor's answer did not say."""

    name: str
    subscription_handle: str | None = None
    downstream_addresses: tuple[DownstreamAddress, ...] | None = None


@dataclass(frozen=True)
class ProvisionResult:
    """What provisioning did: created the domain, or found it already provisioned for this customer."""

    domain: SpamFilterDomain
    created: bool
    # Already provisioned with other downstream addresses: the ones replaced, kept for the step's detail.
    replaced_downstream: tuple[DownstreamAddress, ...] | None = None


class DomainOwnedElsewhere(VendorConflict):
    """The domain is already provisioned at the vendor for another customer: the provisioning step fails."""


@runtime_checkable
class SpamFilterAdapter(Protocol):
    """Provisions domains at an inbound spam filter, and where it delivers their mail; raises Vendor* errors."""

    vendor: str
    capabilities: frozenset[str]

    def list_domains(self) -> list[SpamFilterDomain]:
        """Every domain of the account, all pages (refused rather than returned in part)."""
        ...

    def get_domain(self, name: str) -> SpamFilterDomain:
        """One domain; VendorNotFound when the account does not have it."""
        ...

    def provision_domain(self, name: str, downstream_addresses: Sequence[DownstreamAddress]) -> ProvisionResult:
        """Provision a domain delivering to these servers; DomainOwnedElsewhere when another customer has it."""
        ...

    def delete_domain(self, name: str) -> bool:
        """De-provision a domain; False when it was not provisioned."""
        ...

    def list_downstream_addresses(self, name: str) -> tuple[DownstreamAddress, ...]:
        """Where the filter delivers the domain's mail."""
        ...

    def set_downstream_addresses(
        self, name: str, addresses: Sequence[DownstreamAddress]
    ) -> tuple[DownstreamAddress, ...]:
        """Replace where the filter delivers the domain's mail; returns the addresses now set."""
        ...
