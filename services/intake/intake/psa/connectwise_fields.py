"""The shapes of the values intake sends to ConnectWise, checked before any call (a bad one is ValueError)."""

from __future__ import annotations

import re
from typing import Any

from intake.psa.connectwise_callbacks import TICKET_ID
from mspkit.http.urls import is_plain_http_url

COMPANY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
TASK_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
MEMBER = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


def checked_ticket_id(ticket_id: Any) -> str:
    """A ConnectWise ticket id (a positive integer, as text), or ValueError."""
    text = str(ticket_id) if isinstance(ticket_id, int) and not isinstance(ticket_id, bool) else ticket_id
    if not isinstance(text, str) or not TICKET_ID.fullmatch(text):
        raise ValueError("a ConnectWise ticket id is a positive integer")
    return text


def checked_member(member: str | None) -> str | None:
    """A member identifier (or None for nobody), or ValueError."""
    if member is None:
        return None
    if not isinstance(member, str) or not MEMBER.fullmatch(member):
        raise ValueError("the assignee's ConnectWise member identifier has an invalid shape")
    return member


def company_ref(company_id: str) -> dict[str, Any]:
    """ConnectWise's company reference: `{id}` for a record id (digits), else `{identifier}`."""
    if isinstance(company_id, str) and TICKET_ID.fullmatch(company_id):
        return {"id": int(company_id)}
    if isinstance(company_id, str) and COMPANY.fullmatch(company_id):
        return {"identifier": company_id}
    raise ValueError("the client's ConnectWise company id has an invalid shape")


def checked_portal_link(url: str) -> str:
    """The task's portal link, an http(s) URL of at most 2000 characters, or ValueError."""
    if not isinstance(url, str) or not is_plain_http_url(url, query_ok=True) or len(url) > 2000:
        raise ValueError("portal_url must be an http(s) URL")
    return url
