"""The demo clients' keyed vendor accounts: a Cloudflare, a GoDaddy and a MailChannels account each, with API keys.

Each account's key is a broker credential of that account (kind `api_key`, owner `msp`), made with a
random secret that is never printed, and set on the account with `PATCH /v1/vendor-accounts/{id}`.
The simulator (MSP_VENDOR_SIM_URL) is given what each vendor holds for that key, through its control
API, under the key's fingerprint only (`PUT /_sim/{vendor}/accounts/{sha256(key)[:12]}/state`): the
client's zones with a few records (MX among them) at Cloudflare, and at GoDaddy the client's domains
with the nameservers, expiry and transfer lock that the registry (the simulator's RDAP) gives them, so
the registrar and the registry agree and neither makes drift of the other. A domain the registry gives
no expiry for (norway.no) is registered elsewhere. The simulator keeps this in its state file across
restarts. Once every client is seeded, one sync per Cloudflare and GoDaddy account is queued, so the
zones, records and domains show on the first `make up` without waiting for the schedule.

The MailChannels account is the spam filter a `spam_filter_setup` request is provisioned at (its
domain at MailChannels, then its MX at the client's Cloudflare zone). The simulator's MailChannels
keeps one list of domains, each owned by the key that provisioned it, so that key needs no state
there, and nothing is synced from it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any

import httpx

SIM_URL = "MSP_VENDOR_SIM_URL"
DNS_HOST = {"name": "Cloudflare", "sim": "cloudflare", "category": "dns_host"}
REGISTRAR = {"name": "GoDaddy", "sim": "godaddy", "category": "registrar"}
SPAM_FILTER = {"name": "MailChannels", "sim": "mailchannels", "category": "spam_filter"}
# RDAP statuses that forbid a transfer (as vendor_sync reads them: vendor_sync/sync/refresh.py).
_TRANSFER_PROHIBITED = frozenset({"client transfer prohibited", "server transfer prohibited", "transfer prohibited"})

Check = Callable[[httpx.Response, str], dict[str, Any]]
Bump = Callable[[str], None]


def key_fingerprint(credential: str) -> str:
    """What the simulator calls a key by: the first 12 hex digits of its SHA-256 (vendor_sim/keys.py)."""
    return hashlib.sha256(credential.encode()).hexdigest()[:12]


def a_label(name: str) -> str:
    """A domain name in the ASCII form vendors and registries use (fóo.example -> xn--fo-5ja.example)."""
    return name.encode("idna").decode("ascii").lower()


def zone(name: str, index: int) -> dict[str, Any]:
    """A demo zone as `PUT /_sim/cloudflare/.../state` takes it: an address, www, two MX and an SPF record."""
    return {
        "name": name,
        "records": [
            {"type": "A", "name": "@", "content": f"192.0.2.{10 + index}", "ttl": 3600},
            {"type": "CNAME", "name": "www", "content": name, "ttl": 3600},
            {"type": "MX", "name": "@", "content": f"mx1.{name}", "ttl": 3600, "priority": 10},
            {"type": "MX", "name": "@", "content": f"mx2.{name}", "ttl": 3600, "priority": 20},
            {"type": "TXT", "name": "@", "content": "v=spf1 mx -all", "ttl": 3600},
        ],
    }


def registration(sim: httpx.Client, name: str, contact: dict[str, str]) -> dict[str, Any] | None:
    """A GoDaddy domain built from the registry's answer for the name; None when it gives no expiry."""
    answer = sim.get(f"/rdap/domain/{name}")
    if answer.status_code != 200:
        return None
    data = answer.json()
    expires = next(
        (e.get("eventDate") for e in data.get("events") or [] if str(e.get("eventAction", "")).lower() == "expiration"),
        None,
    )
    if not expires:
        return None
    listed = [ns for ns in data.get("nameservers") or [] if isinstance(ns, dict) and "ldhName" in ns]
    servers = sorted({str(ns["ldhName"]).lower().rstrip(".") for ns in listed})
    statuses = {str(s).strip().lower() for s in data.get("status") or []}
    return {
        "name": name,
        "nameservers": servers,
        "contacts": {role: dict(contact) for role in ("registrant", "admin", "tech")},
        "locked": bool(statuses & _TRANSFER_PROHIBITED),
        "expires_at": expires,
    }


def _contact(spec: dict[str, Any]) -> dict[str, str]:
    # GoDaddy takes whole contacts (names, email, phone, mailing address).
    return {
        "name_first": "Office",
        "name_last": "Manager",
        "organization": spec["name"],
        "email": spec["approver_emails"][0],
        "phone": "+1.5555550100",
        "address1": "1 Main Street",
        "city": "Springfield",
        "state": "IL",
        "postal_code": "62701",
        "country": "US",
    }


class VendorSeeder:
    """Seeds the keyed accounts of each demo client, then queues the first syncs of the synced ones."""

    def __init__(
        self,
        *,
        vendor_sync: httpx.Client,
        broker: httpx.Client,
        sim: httpx.Client,
        vendor_ids: dict[str, str],
        check: Check,
        bump: Bump,
    ) -> None:
        self.vendor_sync = vendor_sync
        self.broker = broker
        self.sim = sim
        self.vendor_ids = vendor_ids
        self.check = check
        self.bump = bump
        self.synced: list[str] = []

    def seed_client(self, client_id: str, spec: dict[str, Any]) -> None:
        """A Cloudflare account holding the client's zones, a GoDaddy one holding its domains, a MailChannels one."""
        names = [a_label(name) for name in spec["domains"]]
        token = secrets.token_urlsafe(30)
        self._synced_account(
            client_id,
            DNS_HOST,
            account_number=secrets.token_hex(16),  # Cloudflare's account ids are 32 hex digits
            portal_url="https://dash.cloudflare.com",
            username="api",
            secret=token,
            fingerprint=key_fingerprint(token),
            state={"zones": [zone(name, index) for index, name in enumerate(names)]},
        )
        key, secret = secrets.token_hex(12), secrets.token_urlsafe(24)
        contact = _contact(spec)
        domains = [found for found in (registration(self.sim, name, contact) for name in names) if found]
        self._synced_account(
            client_id,
            REGISTRAR,
            account_number=f"{secrets.randbelow(10**9):09d}",
            portal_url="https://account.godaddy.com",
            # GoDaddy's key pair: the key is the credential's username, the secret its secret.
            username=key,
            secret=secret,
            fingerprint=key_fingerprint(f"{key}:{secret}"),
            state={"domains": domains},
        )
        self._account(
            client_id,
            SPAM_FILTER,
            account_number=f"mc-{secrets.token_hex(6)}",
            portal_url="https://console.mailchannels.net",
            username="api",
            secret=secrets.token_urlsafe(30),
        )

    def _synced_account(
        self, client_id: str, vendor: dict[str, str], *, fingerprint: str, state: dict[str, Any], **account: str
    ) -> None:
        """A keyed account whose vendor holds `state` at the simulator (under the key's fingerprint), synced later."""
        account_id = self._account(client_id, vendor, **account)
        put = self.sim.put(f"/_sim/{vendor['sim']}/accounts/{fingerprint}/state", json=state)
        self.check(put, f"{vendor['name']} state")
        self.synced.append(account_id)

    def _account(
        self,
        client_id: str,
        vendor: dict[str, str],
        *,
        account_number: str,
        portal_url: str,
        username: str,
        secret: str,
    ) -> str:
        """The client's account at `vendor`, with an API key in the broker set on it; the account's id."""
        name = vendor["name"]
        account = self.check(
            self.vendor_sync.post(
                f"/v1/clients/{client_id}/vendor-accounts",
                json={"vendor_id": self.vendor_ids[name], "account_number": account_number, "portal_url": portal_url},
            ),
            f"{name} account",
        )
        self.bump("vendor_accounts")
        credential = self.check(
            self.broker.post(
                "/v1/credentials",
                json={
                    "client_id": client_id,
                    "vendor_account_id": account["id"],
                    "kind": "api_key",
                    "owner": "msp",
                    "category": vendor["category"],
                    "name": f"{name} API key",
                    "username": username,
                    "secret": secret,  # random, never printed; the simulator gets its fingerprint only
                },
            ),
            f"{name} API key",
        )
        self.bump("credentials")
        self.check(
            self.vendor_sync.patch(
                f"/v1/vendor-accounts/{account['id']}", json={"api_key_credential_id": credential["id"]}
            ),
            f"{name} account's API key",
        )
        return str(account["id"])

    def queue_syncs(self) -> None:
        """One sync per seeded account, now rather than at the schedule's next turn."""
        for account_id in self.synced:
            self.check(self.vendor_sync.post(f"/v1/vendor-accounts/{account_id}/sync", json={}), "account sync")
            self.bump("account_syncs")
