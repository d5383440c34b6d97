"""Form helpers of the admin pages: reading form values, money in dollars, and the APIs' errors per field."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from portal.answers import json_object, problems

# People paste address lists from mail clients and spreadsheets: commas, semicolons or one per line.
_LIST_SEPARATORS = re.compile(r"[,;\r\n]+")
# A dollar amount as people write it: an optional "$", thousands commas, at most two decimals.
_MONEY = re.compile(r"^\$?\s*([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.([0-9]{1,2}))?$")
MONEY_WORDS = "Enter an amount in dollars, such as 500 or 1,250.50 (no more than two decimals)."


def split_list(text: str) -> list[str]:
    """The non-empty entries of a comma, semicolon or line separated list."""
    return [part.strip() for part in _LIST_SEPARATORS.split(text or "") if part.strip()]


def dollars_to_cents(text: str) -> int | None:
    """Cents of a dollar amount such as `1,250.50` or `$500`; None when it is not one."""
    match = _MONEY.match((text or "").strip())
    if match is None:
        return None
    whole, fraction = match.group(1).replace(",", ""), (match.group(2) or "").ljust(2, "0")
    try:
        return int(Decimal(whole) * 100 + Decimal(fraction))
    except InvalidOperation:
        return None


def cents_to_dollars(cents: int | None) -> str:
    """A cents amount written as dollars for a form field (`125050` -> `1250.50`)."""
    if cents is None:
        return ""
    return f"{cents // 100}.{cents % 100:02d}"


def form_text(form: Any, name: str) -> str:
    """One text value of a submitted form ('' when absent or not text)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _words(field: str, detail: str) -> str:
    # The APIs prefix each detail with its dotted path ("approver_emails.0: ..."); next to the field
    # that prefix is noise, but the position in a list is worth keeping, counted from one.
    path, sep, rest = detail.partition(": ")
    text = rest if sep and path == field else detail
    tail = field.split(".")[1:]
    if tail and tail[0].isdigit():
        text = f"entry {int(tail[0]) + 1}: {text}"
    return text[:1].upper() + text[1:]


def field_errors(response: httpx.Response, *, rename: dict[str, str] | None = None) -> dict[str, str]:
    """The 422's problems keyed by the form field they belong to (the top of each dotted path)."""
    out: dict[str, str] = {}
    for problem in problems(json_object(response)):
        field = str(problem.get("field") or "body")
        top = field.split(".", 1)[0]
        top = (rename or {}).get(top, top)
        words = _words(field, str(problem.get("detail") or "This value is not accepted."))
        out[top] = f"{out[top]} {words}" if top in out else words
    return out


def message(response: httpx.Response, fallback: str) -> str:
    """The API's own words for a refusal (409 and the like), or `fallback` when it gave none."""
    detail = json_object(response).get("detail")
    return str(detail) if detail else fallback
