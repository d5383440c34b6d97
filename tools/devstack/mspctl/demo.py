"""Demo data for `make up`: the demo staff, two clients, their vendors, accounts, domains, requests and credentials.

Everything goes through the services' public APIs with a dev admin token, exactly as the portal and
technicians would, so the demo exercises the real paths. It runs once per devstack (a marker file),
and the demo credentials' secrets are random and never printed. With the vendor simulator in the stack
(MSP_VENDOR_SIM_URL), each client also gets a Cloudflare and a GoDaddy account with API keys that
vendor_sync syncs against it (demo_vendors.py).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from mspctl.demo_vendors import SIM_URL, VendorSeeder
from mspctl.layout import Layout
from mspctl.tokens import mint

MARKER = "demo-seeded"

VENDORS: list[dict[str, Any]] = [
    {
        "name": "Example Fiber",
        "kind": "isp",
        "website": "https://fiber.example",
        "support_email": "support@fiber.example",
    },
    {"name": "Cloudflare", "kind": "dns_host", "website": "https://www.cloudflare.com", "adapter": "cloudflare"},
    {
        "name": "MailChannels",
        "kind": "spam_filter",
        "website": "https://www.mailchannels.com",
        "adapter": "mailchannels",
    },
    {"name": "Namecheap", "kind": "registrar", "website": "https://www.namecheap.com", "adapter": "namecheap"},
    {"name": "GoDaddy", "kind": "registrar", "website": "https://www.godaddy.com", "adapter": "godaddy"},
]
# DESIGN.md § Real parts: the demo people; the technicians work for every client (`client_ids: null`).
# Each technician is a member of the simulator's ConnectWise, so a ticket shows who holds its task.
STAFF: list[dict[str, Any]] = [
    {"sub": "admin", "display_name": "Demo Admin", "email": "admin@msp.example", "role": "admin"},
    {
        "sub": "tech1",
        "display_name": "Tess One",
        "email": "tech1@msp.example",
        "role": "technician",
        "psa_member_ids": {"connectwise": "TOne"},
    },
    {
        "sub": "tech2",
        "display_name": "Theo Two",
        "email": "tech2@msp.example",
        "role": "technician",
        "psa_member_ids": {"connectwise": "TTwo"},
    },
]
CLIENTS: list[dict[str, Any]] = [
    {
        "name": "Acme Dental",
        "primary_domain": "google.com",
        "approver_emails": ["owner@acme-dental.example"],
        "purchase_approval_threshold_cents": 50000,
        "psa_company_ids": {"connectwise": "AcmeDental"},
        "domains": ["google.com", "lemonde.fr"],
    },
    {
        "name": "Northwind Legal",
        "primary_domain": "example.cz",
        "approver_emails": ["it@northwind-legal.example"],
        "purchase_approval_threshold_cents": 100000,
        "psa_company_ids": {"connectwise": "NorthwindLegal"},
        "domains": ["example.cz", "norway.no", "fóo.example"],
    },
]


@dataclass
class DemoSummary:
    """What the seeding created (ids only)."""

    clients: dict[str, str] = field(default_factory=dict)
    vendors: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def bump(self, what: str) -> None:
        """Count one created object."""
        self.counts[what] = self.counts.get(what, 0) + 1


class DemoError(RuntimeError):
    """A demo call the services refused."""


def _check(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code >= 300:
        raise DemoError(f"{what}: HTTP {response.status_code} {response.text[:300]}")
    return dict(response.json())


def seed(root: Layout | Any, env: dict[str, str]) -> DemoSummary | None:
    """Seed the demo once; returns None when this devstack was already seeded."""
    layout = root if isinstance(root, Layout) else Layout(root)
    marker = layout.root / MARKER
    if marker.exists():
        return None
    token = mint(layout.root, role="admin", sub="demo-admin", ttl=600)
    headers = {"Authorization": f"Bearer {token}"}
    summary = DemoSummary()
    with (
        httpx.Client(base_url=env["MSP_INTAKE_URL"], headers=headers, timeout=10) as intake,
        httpx.Client(base_url=env["MSP_VENDOR_SYNC_URL"], headers=headers, timeout=10) as vendor_sync,
        httpx.Client(base_url=env["MSP_SECRETS_BROKER_URL"], headers=headers, timeout=10) as broker,
        # The simulator's control API takes no token (loopback only); without it, no synced accounts.
        httpx.Client(base_url=env.get(SIM_URL) or "http://127.0.0.1", timeout=10) as sim,
    ):
        synced_accounts = VendorSeeder(
            vendor_sync=vendor_sync, broker=broker, sim=sim, vendor_ids=summary.vendors, check=_check, bump=summary.bump
        )
        for person in STAFF:
            _check(intake.post("/v1/staff", json={**person, "client_ids": None}), f"staff {person['sub']}")
            summary.bump("staff")
        for vendor in VENDORS:
            created = _check(vendor_sync.post("/v1/vendors", json=vendor), f"vendor {vendor['name']}")
            summary.vendors[vendor["name"]] = created["id"]
            summary.bump("vendors")
        for spec in CLIENTS:
            body = {k: v for k, v in spec.items() if k != "domains"}
            client = _check(intake.post("/v1/clients", json=body), f"client {spec['name']}")
            client_id = client["id"]
            summary.clients[spec["name"]] = client_id
            summary.bump("clients")
            isp_account = _check(
                vendor_sync.post(
                    f"/v1/clients/{client_id}/vendor-accounts",
                    json={
                        "vendor_id": summary.vendors["Example Fiber"],
                        "account_number": f"EF-{secrets.randbelow(10**6):06d}",
                        "portal_url": "https://portal.fiber.example",
                        "contacts": [{"name": "Account Manager", "role": "sales", "email": "am@fiber.example"}],
                    },
                ),
                "vendor account",
            )
            summary.bump("vendor_accounts")
            for name in spec["domains"]:
                domain = _check(vendor_sync.post(f"/v1/clients/{client_id}/domains", json={"name": name}), name)
                _check(vendor_sync.post(f"/v1/domains/{domain['id']}/refresh"), f"refresh {name}")
                summary.bump("domains")
            _check(
                broker.post(
                    "/v1/credentials",
                    json={
                        "client_id": client_id,
                        "vendor_account_id": isp_account["id"],
                        "kind": "password",
                        "owner": "client",
                        "category": "isp",
                        "name": "ISP portal",
                        "username": "admin",
                        # Random, never printed: the demo shows the release flow, not a password.
                        "secret": secrets.token_urlsafe(18),
                        "url": "https://portal.fiber.example",
                    },
                ),
                "credential",
            )
            summary.bump("credentials")
            if env.get(SIM_URL):
                synced_accounts.seed_client(client_id, spec)
            _seed_requests(intake, client_id, summary)
        synced_accounts.queue_syncs()
    from mspctl import people  # here, not at the top: people reads this module's STAFF and CLIENTS

    people.record(layout, summary.clients)
    marker.write_text("seeded\n")
    return summary


def _seed_requests(intake: httpx.Client, client_id: str, summary: DemoSummary) -> None:
    """One purchase under the threshold (ready) and one ISP setup (awaiting the client's approval)."""
    purchase = {
        "type": "purchase",
        "client_id": client_id,
        "items": [{"description": "USB-C docking station", "quantity": 2, "unit_price_cents": 12900}],
        "justification": "Two new reception desks",
        "supplier": {"name": "Example Supplies", "contact_email": "orders@supplies.example"},
    }
    isp = {
        "type": "isp_account_setup",
        "client_id": client_id,
        "isp_name": "Example Fiber",
        "isp_contact_email": "provisioning@fiber.example",
        "service_address": {
            "line1": "1 Main Street",
            "city": "Springfield",
            "region": "IL",
            "postal_code": "62701",
            "country": "US",
        },
        "service_tier": "business-500",
        "site_contact": {"name": "Office Manager", "email": "office@client.example", "phone": "+1 555 0100"},
    }
    for body in (purchase, isp):
        headers = {"Idempotency-Key": f"demo-{uuid.uuid4()}"}
        _check(intake.post("/v1/requests", json=body, headers=headers), f"request {body['type']}")
        summary.bump("requests")
