"""Outside dev, refuse the dev issuer: its discovery document says `mspctl_dev: true`.

Settings already refuse a plain-HTTP issuer, but an https:// name could still front `mspctl`'s dev
issuer (whose sign-in page lets anyone be anyone). Each API reads the issuer's discovery document
once: at start-up, where a dev issuer stops the process, and from `/readyz` until one answer came
(an IdP that is down at start-up keeps the service unready instead of killing it). A good answer
is kept for the life of the process; a dev issuer's answer is kept too, and the service stays unready.
"""

from __future__ import annotations

import threading

import httpx

from mspkit.logging import get_logger

log = get_logger("mspkit.issuer_guard")

DISCOVERY_PATH = "/.well-known/openid-configuration"
DEV_MARKER = "mspctl_dev"


class DevIssuerRefused(RuntimeError):
    """The configured issuer is `mspctl`'s dev issuer, refused outside MSP_ENV=dev."""


class IssuerUnchecked(RuntimeError):
    """The issuer's discovery document could not be read (yet)."""


class IssuerGuard:
    """Reads `<issuer>/.well-known/openid-configuration` until one answer settles the question."""

    def __init__(self, issuer: str, *, timeout_s: float = 3.0, transport: httpx.BaseTransport | None = None) -> None:
        self.issuer = issuer.rstrip("/")
        self.timeout_s = timeout_s
        self._transport = transport
        self._verdict: bool | None = None  # True: a real issuer; False: the dev issuer
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The discovery document's address."""
        return self.issuer + DISCOVERY_PATH

    def _fetch(self) -> dict[str, object]:
        try:
            with httpx.Client(timeout=self.timeout_s, follow_redirects=False, transport=self._transport) as http:
                resp = http.get(self.url)
        except httpx.HTTPError as exc:
            raise IssuerUnchecked(f"MSP_JWT_ISSUER's discovery document is unreachable ({type(exc).__name__})") from exc
        if resp.status_code != 200:
            raise IssuerUnchecked(f"MSP_JWT_ISSUER's discovery document answered HTTP {resp.status_code}")
        try:
            body = resp.json()
        except ValueError as exc:
            raise IssuerUnchecked("MSP_JWT_ISSUER's discovery document is not JSON") from exc
        if not isinstance(body, dict):
            raise IssuerUnchecked("MSP_JWT_ISSUER's discovery document is not a JSON object")
        return body

    def check(self) -> None:
        """Raise DevIssuerRefused for the dev issuer, IssuerUnchecked while the document cannot be read."""
        with self._lock:
            if self._verdict is None:
                doc = self._fetch()
                self._verdict = doc.get(DEV_MARKER) is not True
                if not self._verdict:
                    log.error("dev_issuer_refused", issuer=self.issuer)
        if not self._verdict:
            raise DevIssuerRefused(
                f"MSP_JWT_ISSUER ({self.issuer}) is the dev issuer (its discovery says {DEV_MARKER}: true); "
                "refused outside MSP_ENV=dev"
            )

    def check_at_startup(self) -> None:
        """At start-up: a dev issuer stops the process; an unreachable one is left to `/readyz`."""
        try:
            self.check()
        except IssuerUnchecked as exc:
            log.warning("issuer_not_checked_yet", reason=str(exc))
