"""`/disclosures`: the broker's disclosure ledger (admins: every client; a client_admin: their own) and its CSV."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from portal.pages.admin.common import ApiDep, LedgerReader, all_clients, found, optional_id, page_of
from portal.templating import render

router = APIRouter()

PARTY_WORDS = {
    "provider_for_msp": "A provider working for us",
    "provider_for_client": "A provider working for you",
    "client_legal_representative": "Your legal representative",
    "msp_professional_adviser": "Our attorneys, accountants or auditors",
    "government_legal_process": "Government, under subpoena or legal process",
}
INFO_WORDS = {
    "contact_info": "contact details",
    "service_address": "service address",
    "billing": "billing details",
    "domain": "domain",
    "mail_routing": "mail routing",
    "credentials": "a password or key",
}
# The ledger's `kind`: a credential released to a third party, or client information sent to a vendor.
KIND_WORDS = {
    "credential": "Password or key released",
    "information": "Information sent",
}


def ledger_filter(client_id: str | None) -> dict[str, str]:
    """The `client_id` filter passed on to the broker as given; the broker decides what each person sees."""
    picked = optional_id(client_id)
    return {"client_id": picked} if picked else {}


@router.get("/disclosures")
async def disclosures_page(
    request: Request, viewer: LedgerReader, client: ApiDep, client_id: str | None = None, cursor: str | None = None
) -> Response:
    """The ledger, a page at a time; admins may narrow it to one client."""
    params: dict[str, Any] = {"limit": 50, **ledger_filter(client_id), **({"cursor": cursor} if cursor else {})}
    items, next_cursor = page_of(await client.get("secrets_broker", "/v1/disclosures", params=params))
    clients: list[dict[str, Any]] = []
    if viewer.role == "admin":
        clients, _ = await all_clients(client)
    names = {c["id"]: c.get("name", c["id"]) for c in clients}
    for item in items:
        item["party_words"] = PARTY_WORDS.get(str(item.get("party_category")), str(item.get("party_category")))
        item["info_words"] = ", ".join(INFO_WORDS.get(str(c), str(c)) for c in item.get("information_categories") or [])
        item["client_name"] = names.get(str(item.get("client_id")), str(item.get("client_id")))
        item["kind_words"] = KIND_WORDS.get(str(item.get("kind")), str(item.get("kind")).replace("_", " "))
    context = {
        "items": items,
        "next_cursor": next_cursor,
        "clients": clients,
        "picked": ledger_filter(client_id).get("client_id"),
        "is_admin": viewer.role == "admin",
        # A client_admin opens the approval a disclosure was made on; admins have no approvals page.
        "links_approvals": viewer.role == "client_admin",
    }
    return render(request, "admin/disclosures.html", context)


@router.get("/disclosures.csv")
async def disclosures_csv(
    request: Request, viewer: LedgerReader, client: ApiDep, client_id: str | None = None
) -> Response:
    """The broker's own CSV export of the ledger (its fixed columns and formula escaping), as a download."""
    response = await client.get(
        "secrets_broker", "/v1/disclosures", params={"format": "csv", **ledger_filter(client_id)}
    )
    if response.status_code != 200:
        found(response)
    return Response(
        response.content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="disclosures.csv"', "Cache-Control": "no-store"},
    )
