"""Redirect rules: where a redirect may go, and which headers may follow it."""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from mspkit.http.errors import InsecureRedirect, RedirectRefused, VendorResponseError
from mspkit.http.policy import HostPolicy
from mspkit.http.urls import redact_url

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Headers that carry a credential in the vendor APIs we call (Cloudflare's X-Auth-Key/-Email,
# MailChannels' X-API-Key, GoDaddy's Authorization) or in HTTP itself.
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "x-auth-key", "x-auth-email", "x-auth-token"}
)


def credential_header_names(extra: Iterable[str] = ()) -> frozenset[str]:
    """The built-in credential headers plus an adapter's own (e.g. its key header), lower-cased."""
    return CREDENTIAL_HEADERS | {name.strip().lower() for name in extra if name.strip()}


def strip_credentials(headers: httpx.Headers, names: Iterable[str]) -> None:
    """Remove every credential header, whatever its case, from a request about to leave the origin."""
    for name in names:
        headers.pop(name, None)


def redirect_target(
    current: httpx.URL, response: httpx.Response, *, policy: HostPolicy, vendor: str | None
) -> httpx.URL:
    """Return where a redirect response points, or raise if it may not be followed."""
    where = redact_url(current)
    location = response.headers.get("location")
    if not location:
        raise VendorResponseError(f"redirect without Location from {where}", vendor=vendor)
    try:
        target = current.join(location)
    except (httpx.InvalidURL, ValueError):
        raise RedirectRefused(f"redirect to an invalid URL from {where}", vendor=vendor) from None
    if current.scheme == "https" and target.scheme != "https":
        # A downgrade exposes the request (and any key a misconfigured header list missed) to the path.
        message = f"redirect refused: {where} redirected from https to {target.scheme}: {redact_url(target)}"
        raise InsecureRedirect(message, vendor=vendor)
    reason = policy.refusal(target)
    if reason is not None:
        raise RedirectRefused(f"redirect refused: {reason}", vendor=vendor)
    return target
