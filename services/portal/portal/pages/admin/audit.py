"""`/audit`: the broker's audit chain verification and its latest entries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from portal.pages.admin.common import Admin, ApiDep, found, page_of
from portal.templating import render

router = APIRouter()

PAGE = 50

ACTION_WORDS = {
    "release.granted": "Credential released",
    "release.denied": "Release refused",
    "release.revoked": "Release revoked",
    "unwrap.succeeded": "Credential revealed",
    "unwrap.refused": "Reveal refused",
    "security.wrap_token_reused": "Used link tried again",
    "security.wrap_token_wrong_path": "Token used at the wrong place",
    "credential.created": "Credential stored",
    "credential.rotated": "Credential changed",
    "service_release.granted": "Key released to a service",
    "service_release.denied": "Key refused to a service",
    "disclosure.recorded": "Client information sent to a vendor",
    "disclosure.denied": "Sending client information refused",
}


def verification_words(result: dict[str, Any]) -> str:
    """What the chain check found, in plain words."""
    entries = result.get("entries", 0)
    if result.get("ok"):
        return f"Verified: all {entries} entries are intact and match the copy anchored in the secret store."
    bad = result.get("first_bad_index")
    return (
        f"Broken: entry {bad} (counting from 0) does not match what was recorded, so it or an entry before it "
        "was changed or removed after it was written. Entries from there on cannot be trusted until this is "
        "investigated."
    )


def start_of(start: str | None, entries: int) -> int:
    """The first index to show: the one asked for, else the start of the latest page."""
    if start is not None and start.isdigit():
        return min(int(start), max(entries - 1, 0))
    return max(entries - PAGE, 0)


@router.get("/audit")
async def audit_page(request: Request, viewer: Admin, client: ApiDep, start: str | None = None) -> Response:
    """Whether the audit chain is intact, and a page of entries (the latest unless another is asked for)."""
    result = found(await client.get("secrets_broker", "/v1/audit/verify"))
    entries = int(result.get("entries") or 0)
    first = start_of(start, entries)
    # The list is in chain order with the last index seen as its cursor, so a page starting at
    # `first` is the one after index first - 1 (the API's own cursor form, documented by its pattern).
    params: dict[str, Any] = {"limit": PAGE, **({"cursor": str(first - 1)} if first > 0 else {})}
    items, next_cursor = page_of(await client.get("secrets_broker", "/v1/audit", params=params))
    for item in items:
        item["action_words"] = ACTION_WORDS.get(str(item.get("action")), str(item.get("action")))
    context = {
        "result": result,
        "words": verification_words(result),
        "items": list(reversed(items)),  # newest first, as people read a log
        "older": max(first - PAGE, 0) if first > 0 else None,
        "newer": first + PAGE if next_cursor else None,
        "first": first,
        "entries": entries,
    }
    return render(request, "admin/audit.html", context)
