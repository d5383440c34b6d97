"""ConnectWise callbacks: the signed POST ConnectWise sends to each registered URL when a ticket is saved.

Body (JSON, UTF-8): `{"MessageId", "FromUrl", "CompanyId", "MemberId", "Action", "Type", "ID", "Entity",
"Metadata": {"key_url"}}`, where `Entity` is the ticket as GET service/tickets/{id} answers it, JSON-encoded
as a string. Header `x-content-signature`: base64(HMAC-SHA256(key = SHA-256(signing key) as raw bytes,
message = the body bytes)), the scheme ConnectWise documents and consumers (e.g. NangoHQ/nango's
connectwise-psa-webhook-routing.ts) verify. The key is served at `Metadata.key_url`.

Delivery runs inside the request that changed the ticket (in a worker thread, so the simulator keeps
answering, e.g. the receiver's re-fetch of the ticket), all registrations at once, each with a 2 s timeout,
no proxy and no redirect. Each outcome (`status`, or `error` in words) is kept on the ticket's
`callbacks_sent`; a failed delivery never fails the change that caused it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import urllib.error
import urllib.request
import uuid
from typing import Any

from vendor_sim.connectwise_model import API_PATH, Store
from vendor_sim.validate import now

TIMEOUT_S = 2.0
SIGNATURE_HEADER = "x-content-signature"
KEY_PATH = f"{API_PATH}/system/callbackkeys"
_MAX_READ = 65_536


def sign(body: bytes, signing_key: str) -> str:
    """ConnectWise's x-content-signature for a body."""
    key = hashlib.sha256(signing_key.encode()).digest()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def key_url(site_url: str, key_id: str) -> str:
    """Where the signing key with this id is served."""
    return f"{site_url}{KEY_PATH}/{key_id}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        # A 3xx is the outcome (recorded as its status), not a place to go.
        return None


# No proxy from the environment: a callback goes straight to the URL it was registered with.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
    if not url.lower().startswith(("http://", "https://")):
        return None, "not an http or https URL"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (scheme checked above)
    try:
        with _OPENER.open(request, timeout=TIMEOUT_S) as response:
            response.read(_MAX_READ)
            return int(response.status), None
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code, None
    except urllib.error.URLError as exc:
        return None, f"could not connect: {exc.reason}"
    except TimeoutError:
        return None, f"no answer within {TIMEOUT_S:g} s"
    except (OSError, ValueError) as exc:
        return None, f"delivery failed: {exc}"


async def announce(store: Store, ticket_id: int, *, member: str, site_url: str) -> list[dict[str, Any]]:
    """Send the ticket's "updated" callback to every registration that wants it; returns and records the outcomes.

    `member` is who made the change (the API member for API calls, a person for /_sim changes); `site_url` is
    the ConnectWise site as the caller reached it (`{simulator}/connectwise`).
    """
    api_base = site_url + API_PATH
    with store.lock:
        ticket = store.tickets.get(ticket_id)
        if ticket is None:
            return []
        targets = [entry for _, entry in sorted(store.callbacks.items()) if entry.wants(ticket, member)]
        entity = json.dumps(ticket.api(api_base))
        login_company = ticket.login_company
        signing = store.key
    messages = []
    for entry in targets:
        message_id = str(uuid.uuid4())
        payload = {
            "MessageId": message_id,
            "FromUrl": site_url,
            "CompanyId": login_company,
            "MemberId": member,
            "Action": "updated",
            "Type": "ticket",
            "ID": ticket_id,
            "Entity": entity,
            "Metadata": {"key_url": key_url(site_url, signing.id)},
        }
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            SIGNATURE_HEADER: sign(body, signing.key),
            "User-Agent": "vendor_sim ConnectWise callback",
        }
        messages.append((entry, message_id, body, headers))
    outcomes = await asyncio.gather(*(asyncio.to_thread(_post, e.url, b, h) for e, _, b, h in messages))
    sent_at = now()
    deliveries = [
        {
            "message_id": message_id,
            "callback_id": entry.id,
            "url": entry.url,
            "action": "updated",
            "member": member,
            "key_id": signing.id,
            "status": status,
            "error": error,
            "sent_at": sent_at,
        }
        for (entry, message_id, _, _), (status, error) in zip(messages, outcomes, strict=True)
    ]
    with store.lock:
        current = store.tickets.get(ticket_id)
        if current is not None:
            current.record(deliveries)
    return deliveries
