"""Vendor HTTP errors and the one place where HTTP statuses are mapped to them."""

from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

# Statuses that can succeed later even though they are 4xx.
_TRANSIENT_4XX = frozenset({408, 429})
# 5xx statuses that will never succeed on retry (the server says it cannot do this at all).
_PERMANENT_5XX = frozenset({501, 505})
# A Retry-After further away than this is treated as nonsense and clamped.
MAX_RETRY_AFTER_S = 86_400.0
# An error body bigger than this is not read at all (envelopes are a few hundred bytes).
ERROR_BODY_MAX_BYTES = 64 * 1024


class VendorError(Exception):
    """Base of every error raised while talking to a vendor; messages never hold URLs with queries.

    `body` is the vendor's error body for an error status, as raw bytes, when the kit could read it
    (JSON Content-Type, identity encoding, at most ERROR_BODY_MAX_BYTES, within the call's deadline);
    otherwise None. It is hostile input that may echo a credential, so it is kept out of the message,
    `args`, str() and repr(): adapters parse it and put only cleaned words in the errors they raise.
    `vendor_code` is for an adapter to set from that body (the vendor's own error code).
    """

    def __init__(
        self,
        message: str,
        *,
        vendor: str | None = None,
        status: int | None = None,
        body: bytes | None = None,
        vendor_code: str | None = None,
    ) -> None:
        # Only the message goes to Exception: args (and so str/repr) never hold the body.
        super().__init__(message)
        self.vendor = vendor
        self.status = status
        self.body = body
        self.vendor_code = vendor_code

    def __repr__(self) -> str:
        # Spelled out so that the body can never reach a repr, whatever a subclass adds to args.
        return f"{type(self).__name__}({str(self)!r})"


class VendorTransientError(VendorError):
    """May succeed later: timeouts, connection errors, 408, 429, 5xx."""

    def __init__(
        self,
        message: str,
        *,
        vendor: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        body: bytes | None = None,
        vendor_code: str | None = None,
    ) -> None:
        super().__init__(message, vendor=vendor, status=status, body=body, vendor_code=vendor_code)
        self.retry_after = retry_after


class VendorPermanentError(VendorError):
    """Will not succeed on retry (4xx other than 408/429, policy refusals)."""


class VendorAuthError(VendorPermanentError):
    """401 or 403: the credentials are wrong or lack a permission."""


class VendorNotFound(VendorPermanentError):
    """404 or 410: the vendor does not know the object."""


class VendorConflict(VendorPermanentError):
    """409: the object exists already or is in a state that forbids the change (often someone else's)."""


class VendorResponseError(VendorPermanentError):
    """A hostile or malformed response: too large, too slow, not JSON, HTML where JSON was expected."""


class HostNotAllowed(VendorPermanentError):
    """The URL's host:port is not allowlisted, or is denied (Vault, link-local)."""


class RedirectRefused(HostNotAllowed):
    """A redirect pointed somewhere we may not go, or there were too many of them."""


class InsecureRedirect(RedirectRefused):
    """An https URL redirected to plain http: never followed, whatever the allowlist says."""


class AddressNotAllowed(HostNotAllowed):
    """The host resolved to an address we may not connect to (loopback, private, link-local, Vault...)."""


class RateLimited(VendorTransientError):
    """The vendor answered 429, or our shared per-vendor budget had no room before the timeout."""

    def __init__(
        self,
        message: str,
        *,
        vendor: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        local: bool = False,
        body: bytes | None = None,
        vendor_code: str | None = None,
    ) -> None:
        super().__init__(
            message, vendor=vendor, status=status, retry_after=retry_after, body=body, vendor_code=vendor_code
        )
        # local=True: our own limiter said no; retrying in-process would only wait again.
        self.local = local


class CircuitOpen(VendorTransientError):
    """The vendor's circuit is open; no call was made."""


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Parse a Retry-After header (delta-seconds or HTTP-date) into seconds from now, clamped to >= 0."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    seconds: float | None
    if text.isdigit():
        seconds = float(int(text))
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        current = time.time() if now is None else now
        try:
            seconds = when.timestamp() - current
        except (OverflowError, OSError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def error_for_status(
    status: int,
    headers: Mapping[str, str] | None = None,
    *,
    vendor: str | None = None,
    where: str = "",
    now: float | None = None,
    rate_limit_statuses: frozenset[int] = frozenset({429}),
) -> VendorError | None:
    """Map an HTTP status to the error to raise, or None for 2xx/3xx; the only status mapping in the kit.

    `rate_limit_statuses` names the statuses a vendor uses to say "slow down" (429 everywhere;
    MailChannels also answers 503), so that they are honoured as RateLimited with their Retry-After.
    """
    if status < 400:
        return None
    suffix = f" from {where}" if where else ""
    label = f"{vendor}: HTTP {status}{suffix}" if vendor else f"HTTP {status}{suffix}"
    if status in (401, 403):
        return VendorAuthError(label, vendor=vendor, status=status)
    if status in (404, 410):
        return VendorNotFound(label, vendor=vendor, status=status)
    if status == 409:
        return VendorConflict(label, vendor=vendor, status=status)
    retry_after = parse_retry_after(_header(headers, "retry-after"), now=now)
    if status in rate_limit_statuses:
        return RateLimited(label, vendor=vendor, status=status, retry_after=retry_after)
    if status in _TRANSIENT_4XX or (status >= 500 and status not in _PERMANENT_5XX):
        return VendorTransientError(label, vendor=vendor, status=status, retry_after=retry_after)
    return VendorPermanentError(label, vendor=vendor, status=status)


class DeadlineExceeded(VendorTransientError):
    """The whole exchange (connect, headers and body) took longer than its wall-clock deadline."""
