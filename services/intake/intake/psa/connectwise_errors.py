"""ConnectWise's HTTP errors: the kit's categories, each carrying ConnectWise's own error body, parsed and scrubbed."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mspkit.http import (
    RateLimited,
    VendorAuthError,
    VendorConflict,
    VendorError,
    VendorNotFound,
    VendorPermanentError,
    VendorResponseError,
    VendorTransientError,
    parse_json,
)

VENDOR = "connectwise"
_MAX_TEXT = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# The adapter's credential scrubber: a text with every key it holds replaced.
Scrub = Callable[[str], str]


@dataclass(frozen=True)
class ConnectWiseFieldError:
    """One entry of ConnectWise's `errors` list, cleaned."""

    code: str | None
    message: str | None
    resource: str | None
    field: str | None


@dataclass(frozen=True)
class ConnectWiseErrorBody:
    """ConnectWise's error body `{code, message, errors}`, cleaned of control characters and every key."""

    code: str | None
    message: str | None
    errors: tuple[ConnectWiseFieldError, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields ConnectWise named as wrong (e.g. `summary`, `company`)."""
        return tuple(e.field for e in self.errors if e.field)

    def summary(self) -> str:
        """One line for an exception message: the code, the message and each field's complaint."""
        head = ": ".join(part for part in (self.code, self.message) if part)
        parts = [f"{e.field}: {e.message}" if e.field else (e.message or e.code or "") for e in self.errors[:5]]
        parts = [p for p in parts if p]
        return head + (f" [{'; '.join(parts)}]" if parts else "")


class ConnectWiseError(VendorError):
    """A ConnectWise HTTP error; `details` is its parsed, scrubbed error body (the raw `body` is always None)."""

    details: ConnectWiseErrorBody | None = None


class ConnectWiseAuthError(ConnectWiseError, VendorAuthError):
    """401/403: wrong keys or clientId, or the API member lacks a permission."""


class ConnectWiseNotFound(ConnectWiseError, VendorNotFound):
    """404: ConnectWise does not have the ticket (or it is not visible to the API member)."""


class ConnectWiseRateLimited(ConnectWiseError, RateLimited):
    """429, with its Retry-After (seconds or HTTP date) as `retry_after`."""


class ConnectWiseTransientError(ConnectWiseError, VendorTransientError):
    """408 or 5xx: may succeed later."""


class ConnectWiseConflict(ConnectWiseError, VendorConflict):
    """409 from ConnectWise."""


class ConnectWisePermanentError(ConnectWiseError, VendorPermanentError):
    """Any other 4xx (400 with `errors` naming the fields): retrying will not help."""


# The kit decides the category (and Retry-After) from the status; this only adds ConnectWise's body.
ERROR_CLASSES: dict[type[VendorError], type[ConnectWiseError]] = {
    VendorAuthError: ConnectWiseAuthError,
    VendorNotFound: ConnectWiseNotFound,
    RateLimited: ConnectWiseRateLimited,
    VendorTransientError: ConnectWiseTransientError,
    VendorConflict: ConnectWiseConflict,
    VendorPermanentError: ConnectWisePermanentError,
}


def outcome_word(exc: VendorError) -> str:
    """The metric label of a ConnectWise error's category."""
    for cls, word in (
        (RateLimited, "rate_limited"),
        (VendorAuthError, "auth"),
        (VendorNotFound, "not_found"),
        (VendorConflict, "conflict"),
        (VendorResponseError, "bad_response"),
        (VendorTransientError, "transient"),
        (VendorPermanentError, "permanent"),
    ):
        if isinstance(exc, cls):
            return word
    return "error"


def mapped_error(base: VendorError, scrub: Scrub) -> ConnectWiseError | None:
    """The kit's status error as one ConnectWiseError with ConnectWise's body, or None for any other error."""
    cls = ERROR_CLASSES.get(type(base))
    if cls is None or base.status is None:
        return None
    details = _error_body(base.body, scrub)
    message = scrub(str(base)) + (f" ({details.summary()})" if details else "")
    error = cls(message, vendor=VENDOR, status=base.status)
    if isinstance(error, VendorTransientError) and isinstance(base, VendorTransientError):
        error.retry_after = base.retry_after
    # The kit's raw bytes stay behind (they may echo a key); only the scrubbed parse goes on.
    error.details = details
    error.vendor_code = details.code if details else None
    return error


def _error_body(raw: bytes | None, scrub: Scrub) -> ConnectWiseErrorBody | None:
    # The kit read this only for a JSON Content-Type, in identity encoding, capped and within the deadline.
    try:
        data = parse_json(raw) if raw is not None else None
    except VendorResponseError:
        return None
    if not isinstance(data, Mapping):
        return None
    errors = data.get("errors")
    items = [e for e in (errors if isinstance(errors, list) else [])[:10] if isinstance(e, Mapping)]
    body = ConnectWiseErrorBody(
        code=_clean(data.get("code"), scrub, 64),
        message=_clean(data.get("message"), scrub),
        errors=tuple(
            ConnectWiseFieldError(
                code=_clean(e.get("code"), scrub, 64),
                message=_clean(e.get("message"), scrub),
                resource=_clean(e.get("resource"), scrub, 64),
                field=_clean(e.get("field"), scrub, 64),
            )
            for e in items
        ),
    )
    return body if body.code or body.message or body.errors else None


def _clean(value: Any, scrub: Scrub, limit: int = _MAX_TEXT) -> str | None:
    text = _CONTROL.sub(" ", value).strip()[:limit] if isinstance(value, str) else ""
    return scrub(text) or None
