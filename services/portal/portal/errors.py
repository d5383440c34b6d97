"""What pages raise; `handlers.py` turns each into a page (never a traceback)."""

from __future__ import annotations


class PortalError(Exception):
    """Base of the portal's page-level errors."""


class NotSignedIn(PortalError):
    """No live session: the handler redirects to sign-in and back to `return_to`."""

    def __init__(self, return_to: str = "/") -> None:
        super().__init__("sign-in required")
        self.return_to = return_to


class SessionExpired(NotSignedIn):
    """The IdP no longer honours the session's refresh token: sign in again and come back."""


class ApiUnavailable(PortalError):
    """An API (or the IdP) did not answer: connection error, timeout or 503."""

    def __init__(self, api: str) -> None:
        super().__init__(f"{api} is not answering")
        self.api = api


class PageNotFound(PortalError):
    """The 404 page: a missing object, or a page of another role (as the APIs answer)."""


class CsrfRejected(PortalError):
    """A state-changing request without the session's CSRF token: the 403 page, nothing changed."""
