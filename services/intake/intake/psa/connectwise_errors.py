"""ConnectWise's HTTP errors: the kit's categories, each carrying ConnectWise's own error body, scrubbed."""

from __future__ import annotations

from dataclasses import dataclass

from mspkit.http import (
    RateLimited,
    VendorAuthError,
    VendorConflict,
    VendorError,
    VendorNotFound,
    VendorPermanentError,
    VendorResponseError,
    VendorTransientError,
)


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
