"""`/access` (client_admin): every release of the client's credentials, who got it, when and why."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal.answers import list_page
from portal.pages.client.common import ApiDep, ClientAdmin, fetch_many, page_context
from portal.pages.client.words import WORDS
from portal.templating import render

router = APIRouter()
PAGE_SIZE = 50


def recipient_words(recipient: dict[str, Any]) -> str:
    """Who received a release, in words: a technician, a named third party, or one of our services."""
    kind = recipient.get("kind") or recipient.get("type")
    if kind == "service":
        return f"Service: {WORDS.service(recipient.get('sub'))}"
    if kind == "third_party":
        name = recipient.get("name") or "a third party"
        category = recipient.get("party_category")
        return f"{name}, {WORDS.party(category)}" if category else str(name)
    return f"Technician {recipient.get('sub') or ''}".strip()


@router.get("/access", response_class=HTMLResponse)
async def list_access(request: Request, viewer: ClientAdmin, client: ApiDep, cursor: str | None = None) -> HTMLResponse:
    """Releases of the client's credentials, newest first, service releases included."""
    filters = {"client_id": viewer.client_id}
    page = await list_page(client, "secrets_broker", "/v1/releases", filters, limit=PAGE_SIZE, cursor=cursor)
    releases = page.items
    names = await fetch_many(client, "secrets_broker", (f"/v1/credentials/{r.get('credential_id')}" for r in releases))
    rows = [
        {
            "release": release,
            "who": recipient_words(release.get("recipient") or {}),
            "credential": names.get(f"/v1/credentials/{release.get('credential_id')}"),
        }
        for release in releases
    ]
    return render(
        request,
        "client/access.html",
        page_context(
            request,
            viewer,
            rows=rows,
            next_cursor=page.next_cursor,
            problem="" if page.ok else "The list of releases could not be shown. Please try again.",
        ),
    )
