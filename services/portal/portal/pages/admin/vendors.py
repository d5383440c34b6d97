"""`/vendors`: the shared vendors, and per client its vendor accounts, contacts, domains and drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from portal import dates
from portal.pages.admin.common import Admin, ApiDep, all_clients, collect, optional_id, page_of
from portal.templating import render

router = APIRouter()

# The window vendor_sync turns into renewal work (DESIGN.md: 30 days); the page highlights the same.
EXPIRY_WINDOW = timedelta(days=30)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time from an API (UTC when it names no offset), or None."""
    parsed = dates.parse_time(value)
    return parsed if parsed is None or parsed.tzinfo else parsed.replace(tzinfo=UTC)


def expiry_note(expires_at: Any, now: datetime) -> tuple[str, bool]:
    """Words for a domain's expiry and whether it needs attention (expired, or within 30 days)."""
    when = parse_time(expires_at)
    if when is None:
        return "not known yet", False
    days = (when - now).days
    if when <= now:
        return f"{dates.day(when)} (expired)", True
    if when - now <= EXPIRY_WINDOW:
        return f"{dates.day(when)} (in {days} day{'s' if days != 1 else ''})", True
    return dates.day(when), False


def drift_words(event: dict[str, Any]) -> str:
    """What a drift event says, in plain words."""
    if event.get("kind") == "expiry_warning":
        return f"Expiry warning: {event.get('field')} is {_show(event.get('new'))}"
    return f"{event.get('field')} changed from {_show(event.get('old'))} to {_show(event.get('new'))}"


def _show(value: Any) -> str:
    if value is None or value == [] or value == "":
        return "nothing"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


async def _client_view(client: ApiDep, client_id: str, now: datetime) -> dict[str, Any]:
    base = f"/v1/clients/{client_id}"
    accounts, accounts_more = await collect(client, "vendor_sync", f"{base}/vendor-accounts", pages=1)
    domains, domains_more = await collect(client, "vendor_sync", f"{base}/domains", pages=1)
    drift, drift_cursor = page_of(
        await client.get("vendor_sync", "/v1/drift-events", params={"client_id": client_id, "limit": 50})
    )
    for domain in domains:
        domain["expiry_words"], domain["expiry_soon"] = expiry_note(domain.get("expires_at"), now)
    names = {d["id"]: d.get("unicode_name") or d.get("name") for d in domains}
    for event in drift:
        event["words"] = drift_words(event)
        event["domain_name"] = names.get(event.get("domain_id") or "", "")
    return {
        "accounts": accounts,
        "accounts_more": accounts_more,
        "domains": domains,
        "domains_more": domains_more,
        "expiring": [d for d in domains if d["expiry_soon"]],
        "drift": drift,
        "drift_more": drift_cursor is not None,
    }


@router.get("/vendors")
async def vendors_page(
    request: Request, viewer: Admin, client: ApiDep, client_id: str | None = None, cursor: str | None = None
) -> Response:
    """Vendors, and the picked client's vendor accounts, contacts, domains (expiry) and drift events."""
    params: dict[str, Any] = {"limit": 50, **({"cursor": cursor} if cursor else {})}
    vendors, next_cursor = page_of(await client.get("vendor_sync", "/v1/vendors", params=params))
    clients, clients_more = await all_clients(client)
    picked = optional_id(client_id)
    context: dict[str, Any] = {
        "vendors": vendors,
        "next_cursor": next_cursor,
        "clients": clients,
        "clients_more": clients_more,
        "picked": picked,
        "picked_name": next((c.get("name") for c in clients if c.get("id") == picked), picked),
    }
    if picked:
        # Accounts name their vendor by id; the names come from every vendor, not just this page's.
        every_vendor, _ = await collect(client, "vendor_sync", "/v1/vendors", pages=5)
        context["vendor_names"] = {v["id"]: v.get("name", v["id"]) for v in every_vendor}
        context.update(await _client_view(client, picked, datetime.now(UTC)))
    return render(request, "admin/vendors.html", context)
