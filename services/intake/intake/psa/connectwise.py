"""ConnectWise Manage (PSA): tickets, JSON Patch updates, notes, callback registration, and signed callbacks.

One thin client behind intake's `PsaAdapter`, through the vendor HTTP kit (allowlisted origin, size cap,
deadline, retries, shared rate limit, circuit breaker). Auth is Basic `company+publicKey:privateKey` plus
the integration's `clientId` header; the kit drops both on a redirect that leaves the site. Statuses are
mapped by the kit; ConnectWise's error body `{code, message, errors: [{code, message, resource, field}]}`
is added to the kit's error once, in `connectwise_errors.mapped_error`, scrubbed of every key. A
callback's signature (`x-content-signature`: base64 of HMAC-SHA256 over the raw body, keyed with SHA-256
of the signing key) is checked with a key fetched only from the configured site's fixed key path
(`signing_keys`). The credentials, error types (and the error body's parse), outbound value shapes and
the callback body live in `connectwise_auth`, `connectwise_errors`, `connectwise_fields` and
`connectwise_callbacks`.

Outbound a ticket carries only the task's type, a short task id, the mapped status, the assignee's
member identifier, the company id and the portal link: never a client's name, address, contact or domain.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, get_args
from urllib.parse import quote, urlencode, urlsplit

from redis import Redis

from intake.psa.connectwise_auth import Credentials
from intake.psa.connectwise_callbacks import parse_callback as parse_ticket_callback
from intake.psa.connectwise_callbacks import signature
from intake.psa.connectwise_errors import (
    VENDOR,
    ConnectWiseAuthError,
    ConnectWiseConflict,
    ConnectWiseError,
    ConnectWiseErrorBody,
    ConnectWiseFieldError,
    ConnectWiseNotFound,
    ConnectWisePermanentError,
    ConnectWiseRateLimited,
    ConnectWiseTransientError,
    mapped_error,
    outcome_word,
)
from intake.psa.connectwise_fields import (
    MEMBER,
    TASK_TYPE,
    checked_member,
    checked_portal_link,
    checked_ticket_id,
    company_ref,
)
from intake.psa.metrics import CALLBACKS, CALLS
from intake.psa.protocol import Callback, CallbackRejected, Ticket, TicketFields
from intake.psa.signing_keys import SigningKeys
from intake.settings import CONNECTWISE_TICKET_SCREEN
from mspkit.http import (
    BreakerConfig,
    FetchLimits,
    RetryPolicy,
    VendorError,
    VendorHTTP,
    VendorResponseError,
    origin_of,
    redact_url,
)
from mspkit.http.urls import is_loopback_host, is_plain_http_url
from mspkit.vocabulary import TaskStatus

API_PATH = "/v4_6_release/apis/3.0"
CALLBACK_DESCRIPTION = "msp intake"
PAGE_SIZE = 100
# A longer listing is refused rather than read in part (a missed registration would be made twice).
MAX_PAGES = 50
MAX_NOTE_CHARS = 8000
_MAX_NAME = 100
_TASK_STATUSES: tuple[str, ...] = get_args(TaskStatus)

log = logging.getLogger("intake.psa")


class ConnectWiseAdapter:
    """intake's PsaAdapter for ConnectWise Manage (REST API 3.0), thread-safe like the kit's client."""

    provider: str = VENDOR

    def __init__(
        self,
        *,
        site_url: str,
        company: str,
        public_key: str,
        private_key: str,
        client_id: str,
        board: str,
        status_maps: Mapping[str, Mapping[str, str]],
        closed_statuses: Mapping[str, Iterable[str]],
        ticket_url_template: str = CONNECTWISE_TICKET_SCREEN,
        redis: Redis | None = None,
        rate: str | None = None,
        breaker: BreakerConfig | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 10.0,
        key_fetch_timeout_s: float = 3.0,
        key_cache_s: float = 300.0,
        key_fetch_rate: str = "10/minute",
        denied_hosts: Iterable[str] = (),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.site_url = site_url.rstrip("/")
        origin = origin_of(self.site_url)
        if origin.scheme != "https" and not is_loopback_host(origin.host):
            raise ValueError(f"ConnectWise site URL must be https (plain http only on loopback): {origin}")
        parts = urlsplit(self.site_url)
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("ConnectWise site URL must have no userinfo, query or fragment")
        self._site_root = f"{parts.scheme}://{parts.netloc}"
        self.api_root = self.site_url + API_PATH
        self._auth = Credentials(company, public_key, private_key, client_id)
        self.company = company
        self.board = board
        mapping = dict(status_maps.get(board, {}))
        missing = [status for status in _TASK_STATUSES if not mapping.get(status)]
        if missing:
            raise ValueError(f"no PSA status for board {board!r} for task status {', '.join(missing)}")
        self._status_map = mapping
        self._closed = {name: frozenset(statuses) for name, statuses in closed_statuses.items()}
        self.ticket_url_template = ticket_url_template
        self._board_id: int | None = None
        denied = tuple(denied_hosts)
        self.http = VendorHTTP(
            VENDOR,
            # Only the site's own origin: a redirect anywhere else is refused by the kit.
            allowed_hosts=[str(origin)],
            denied_hosts=denied,
            redis=redis,
            rate=(rate or "10/second") if redis is not None else None,
            breaker=(breaker or BreakerConfig()) if redis is not None else None,
            retry=retry,
            limits=FetchLimits(deadline_s=timeout_s, read_timeout_s=timeout_s, connect_timeout_s=min(timeout_s, 5.0)),
            sleep=sleep,
            clock=clock,
            credential_headers=["Authorization", "clientId"],
        )
        self.keys = SigningKeys(
            self.site_url,
            provider=VENDOR,
            timeout_s=key_fetch_timeout_s,
            cache_s=key_cache_s,
            rate=key_fetch_rate,
            redis=redis,
            denied_hosts=denied,
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"ConnectWiseAdapter(site={redact_url(self.site_url)!r}, board={self.board!r})"

    def close(self) -> None:
        """Close the HTTP clients."""
        self.http.close()
        self.keys.close()

    def __enter__(self) -> ConnectWiseAdapter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- tickets ----------------------------------------------------------------------------------------

    def create_ticket(self, fields: TicketFields) -> Ticket:
        """The task's ticket: the one already made for it (found by `externalXRef`), else a new one.

        The POST is never retried by the kit after a transient error (ConnectWise has no idempotency
        key, so the ticket may exist by then); the caller's retry (a Celery retry) comes back through
        this lookup, which finds that ticket instead of making a second one.
        """
        body = self._ticket_body(fields)
        existing = self._find_ticket(fields.task_id)
        if existing is not None:
            return existing
        data = self._call("POST", "service/tickets", body=body, operation="create_ticket")
        ticket = self._ticket(data)
        if ticket.external_ref not in (None, str(fields.task_id)):
            raise _bad("the created ticket carries another task's reference")
        return ticket

    def update_ticket(self, ticket_id: str, fields: TicketFields) -> Ticket:
        """Set the ticket's status and owner from the task with a JSON Patch; returns the ticket as updated."""
        tid = checked_ticket_id(ticket_id)
        member = checked_member(fields.assignee_member_id)
        patch = [
            {"op": "replace", "path": "status", "value": {"name": self._status_name(fields.task_status)}},
            {"op": "replace", "path": "owner", "value": {"identifier": member} if member else None},
        ]
        data = self._call("PATCH", f"service/tickets/{tid}", body=patch, operation="update_ticket")
        if data is None:
            return self.get_ticket(tid)
        ticket = self._ticket(data)
        if ticket.ticket_id != tid:
            raise _bad("the update answered for another ticket")
        return ticket

    def add_note(self, ticket_id: str, text: str) -> None:
        """Add an internal note (not in the ticket's description) to the ticket.

        Like the create, the POST is not retried after a transient error: a caller that retries may
        add the note twice, never lose it.
        """
        tid = checked_ticket_id(ticket_id)
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_NOTE_CHARS or "\x00" in text:
            raise ValueError(f"a note is 1-{MAX_NOTE_CHARS} characters of text")
        body = {"text": text, "internalAnalysisFlag": True, "detailDescriptionFlag": False}
        data = self._call("POST", f"service/tickets/{tid}/notes", body=body, operation="add_note")
        if data is not None and not isinstance(data, Mapping):
            raise _bad("the note answer is not an object")

    def get_ticket(self, ticket_id: str) -> Ticket:
        """Read the ticket as ConnectWise holds it now; ConnectWiseNotFound when it does not exist."""
        tid = checked_ticket_id(ticket_id)
        ticket = self._ticket(self._call("GET", f"service/tickets/{tid}", operation="get_ticket"))
        if ticket.ticket_id != tid:
            raise _bad("the answer is for another ticket")
        return ticket

    def ticket_url(self, ticket_id: str) -> str:
        """The ticket's screen, from the configured template."""
        return self.ticket_url_template.format(
            site=self.site_url,
            site_root=self._site_root,
            ticket_id=quote(str(ticket_id), safe=""),
            company=quote(self.company, safe=""),
        )

    def _find_ticket(self, task_id: uuid.UUID) -> Ticket | None:
        params = {"conditions": f'externalXRef="{task_id}"', "pageSize": 25}
        data = self._call("GET", "service/tickets", params=params, operation="find_ticket")
        if not isinstance(data, list):
            raise _bad("the ticket search did not answer with a list")
        # Checked here too: a server that ignored the condition must not hand us another task's ticket.
        found = [self._ticket(item) for item in data if isinstance(item, Mapping)]
        mine = [t for t in found if t.external_ref == str(task_id)]
        return min(mine, key=lambda t: int(t.ticket_id)) if mine else None

    def _ticket_body(self, fields: TicketFields) -> dict[str, Any]:
        if not isinstance(fields.task_type, str) or not TASK_TYPE.fullmatch(fields.task_type):
            raise ValueError("task_type must be a task type name (lowercase letters, digits, '_')")
        body: dict[str, Any] = {
            # Type and short id only: never a client's name, domain or address.
            "summary": f"{fields.task_type} · task {fields.task_id.hex[:8]}",
            "board": {"name": self.board},
            "company": company_ref(fields.company_id),
            "status": {"name": self._status_name(fields.task_status)},
            "externalXRef": str(fields.task_id),
            "initialDescription": checked_portal_link(fields.portal_url),
        }
        member = checked_member(fields.assignee_member_id)
        if member:
            body["owner"] = {"identifier": member}
        return body

    def _status_name(self, task_status: str) -> str:
        try:
            return self._status_map[task_status]
        except KeyError:
            raise ValueError(f"unknown task status {task_status!r}") from None

    def _ticket(self, data: Any) -> Ticket:
        """Map ConnectWise's ticket to a Ticket, checking the shape of every field read."""
        if not isinstance(data, Mapping):
            raise _bad("a ticket is not a JSON object")
        tid = data.get("id")
        if not isinstance(tid, int) or isinstance(tid, bool) or not 0 < tid < 10**12:
            raise _bad("a ticket has no valid id")
        status = _name_of(data.get("status"), "status")
        if status is None:
            raise _bad("a ticket has no status name")
        board = _name_of(data.get("board"), "board") or self.board
        owner = data.get("owner")
        if owner is not None and not isinstance(owner, Mapping):
            raise _bad("a ticket's owner is not an object")
        identifier = owner.get("identifier") if owner is not None else None
        if identifier is not None and (not isinstance(identifier, str) or not MEMBER.fullmatch(identifier)):
            raise _bad("a ticket's owner has no valid identifier")
        ref = data.get("externalXRef")
        if ref is not None and (not isinstance(ref, str) or len(ref) > _MAX_NAME):
            raise _bad("a ticket's externalXRef is not a short string")
        closed_flag = data.get("closedFlag", False)
        if not isinstance(closed_flag, bool):
            raise _bad("a ticket's closedFlag is not a boolean")
        return Ticket(
            ticket_id=str(tid),
            status=status,
            closed=closed_flag or status in self._closed.get(board, frozenset()),
            owner_member_id=identifier,
            url=self.ticket_url(str(tid)),
            external_ref=ref,
        )

    # --- callbacks --------------------------------------------------------------------------------------

    def register_callback(self, url: str) -> None:
        """Make sure ConnectWise calls `url` for our board's tickets: nothing if an active entry has it, else POST."""
        if not isinstance(url, str) or not is_plain_http_url(url):
            raise ValueError("the callback URL must be an http(s) URL without userinfo, query or fragment")
        board_id = self._find_board_id()
        for entry in self._callback_entries():
            kind = entry.get("type")
            if entry.get("url") == url and isinstance(kind, str) and kind.lower() == "ticket":
                if entry.get("inactiveFlag") is not True:
                    return
        body = {
            "url": url,
            # Board level: callbacks for this board's tickets only, not every ticket of the PSA.
            "objectId": board_id,
            "type": "Ticket",
            "level": "Board",
            "description": CALLBACK_DESCRIPTION,
            "inactiveFlag": False,
        }
        data = self._call("POST", "system/callbacks", body=body, operation="register_callback")
        if data is not None and not isinstance(data, Mapping):
            raise _bad("the callback registration answer is not an object")

    def _find_board_id(self) -> int:
        if self._board_id is not None:
            return self._board_id
        params = {"conditions": f'name="{self.board}"'}
        data = self._call("GET", "service/boards", params=params, operation="find_board")
        if not isinstance(data, list):
            raise _bad("the board search did not answer with a list")
        ids: list[int] = [
            int(item["id"])
            for item in data
            if isinstance(item, Mapping) and item.get("name") == self.board and _is_id(item.get("id"))
        ]
        if not ids:
            raise ConnectWisePermanentError(f"{VENDOR}: no service board named {self.board!r}", vendor=VENDOR)
        self._board_id = min(ids)
        return self._board_id

    def _callback_entries(self) -> list[Mapping[str, Any]]:
        entries: list[Mapping[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            data = self._call(
                "GET", "system/callbacks", params={"page": page, "pageSize": PAGE_SIZE}, operation="list_callbacks"
            )
            if not isinstance(data, list):
                raise _bad("the callback list is not a list")
            entries.extend(item for item in data if isinstance(item, Mapping))
            if len(data) < PAGE_SIZE:
                return entries
        raise _bad(f"more than {MAX_PAGES} pages of callbacks")

    def parse_callback(self, raw: bytes) -> Callback:
        """Parse ConnectWise's callback: `ID`, `Type` ticket, `Action`, `Entity` (a JSON string), `Metadata.key_url`.

        The adapter keeps only the id, the action and the key URL: the caller re-fetches the ticket
        instead of trusting `Entity`. Anything else, or more than MAX_CALLBACK_BYTES, is CallbackRejected.
        """
        try:
            return parse_ticket_callback(raw)
        except CallbackRejected:
            CALLBACKS.labels(VENDOR, "malformed").inc()
            raise

    def verify_callback(self, raw: bytes, headers: Mapping[str, str], callback: Callback) -> None:
        """Check `x-content-signature` over the raw body with the key its `Metadata.key_url` names.

        The key URL must be exactly the configured site's key path (else rejected with no fetch); the key
        is fetched without our credentials or redirects, cached in memory, and fetches are rate-limited.
        Replays verify again: the webhook route dedupes on `callback_fingerprint(raw)`.
        """
        try:
            self._verify(raw, headers, callback)
        except CallbackRejected as exc:
            CALLBACKS.labels(VENDOR, exc.reason.replace(" ", "_")).inc()
            log.info("psa callback rejected: %s", exc.reason)
            raise
        CALLBACKS.labels(VENDOR, "verified").inc()

    def _verify(self, raw: bytes, headers: Mapping[str, str], callback: Callback) -> None:
        # The signature covers this body: the callback checked must be the one it holds.
        if parse_ticket_callback(raw) != callback:
            raise CallbackRejected("malformed")
        given = signature(headers)
        key = self.keys.hmac_key(callback.key_ref)
        expected = hmac.new(key, raw, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, given):
            raise CallbackRejected("bad signature")

    # --- the one call site ------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        """One API call (a GET, or a write through the kit's send); returns the parsed JSON (None for no body).

        Any failure raises the kit's error with ConnectWise's words, mapped once here.
        """
        url = f"{self.api_root}/{path}" + (f"?{urlencode(params)}" if params else "")
        headers = self._auth.headers()
        try:
            if method == "GET":
                response = self.http.get_json(url, headers=headers)
            else:
                response = self.http.send_json(method, url, headers=headers, json_body=body)
        except VendorError as exc:
            CALLS.labels(VENDOR, operation, outcome_word(exc)).inc()
            mapped = mapped_error(exc, self._auth.scrub)
            if mapped is None:
                raise
            raise mapped from None
        CALLS.labels(VENDOR, operation, "ok").inc()
        return None if response is None else response.data


# --- pure helpers -----------------------------------------------------------------------------------------


def _name_of(ref: Any, what: str) -> str | None:
    """A reference's `name` (`{"id", "name"}`), or None when there is no reference."""
    if ref is None:
        return None
    name = ref.get("name") if isinstance(ref, Mapping) else None
    if not isinstance(name, str) or not 0 < len(name) <= _MAX_NAME or not name.isprintable():
        raise _bad(f"a ticket's {what} has no valid name")
    return name


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _bad(words: str) -> VendorResponseError:
    """A hostile or malformed answer from ConnectWise."""
    return VendorResponseError(f"{VENDOR}: {words}", vendor=VENDOR)


__all__ = [
    "ConnectWiseAdapter",
    "ConnectWiseAuthError",
    "ConnectWiseConflict",
    "ConnectWiseError",
    "ConnectWiseErrorBody",
    "ConnectWiseFieldError",
    "ConnectWiseNotFound",
    "ConnectWisePermanentError",
    "ConnectWiseRateLimited",
    "ConnectWiseTransientError",
]
