"""ConnectWise PSA's state in the simulator: one service board, tickets with notes, callback registrations, a key.

The /_sim state (`GET|PUT /_sim/connectwise/state`) is `{"tickets": [...], "callbacks": [...]}`; the API shapes
(`api(...)` methods) follow the recorded ConnectWise objects in tests/fixtures/connectwise/, with null fields left
out as ConnectWise leaves them out. The callback signing key is the simulator's own (random per start, served
without auth at the key URL); it is never part of the /_sim state, and the state file keeps it beside the state
(see `file_state`) so a restart does not strand a consumer's cached key.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from vendor_sim.validate import Problems, fields, is_int, now, timestamp

API_PATH = "/v4_6_release/apis/3.0"
# The member every API key belongs to here (ConnectWise: the API member whose keys these are).
API_MEMBER = "api-member"
# Who changes a ticket through the /_sim control routes: a person at the PSA, never the API member.
PSA_PERSON = "dispatcher"
# The company a ticket is logged in under when nobody said (state put without one).
DEFAULT_LOGIN_COMPANY = "msp"
MAX_SENT = 100  # deliveries kept per ticket
MEMBER_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
COMPANY_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SUMMARY_MAX = 100
XREF_MAX = 100
TEXT_MAX = 30_000


@dataclass(frozen=True)
class Status:
    """One status of a board; `closed` is ConnectWise's closedStatus."""

    id: int
    name: str
    sort: int
    closed: bool = False
    default: bool = False

    def api(self, board: Board) -> dict[str, Any]:
        """GET service/boards/{id}/statuses item (shape of board_statuses.json)."""
        return {
            "id": self.id,
            "name": self.name,
            "board": {"id": board.id, "name": board.name},
            "sortOrder": self.sort,
            "displayOnBoard": True,
            "inactive": False,
            "closedStatus": self.closed,
            "timeEntryNotAllowed": False,
            "defaultFlag": self.default,
        }


@dataclass(frozen=True)
class Board:
    """A service board and its statuses."""

    id: int
    name: str
    statuses: tuple[Status, ...]

    def status(self, *, name: str | None = None, status_id: int | None = None) -> Status | None:
        """The board's status by name (case-insensitive) or id."""
        for status in self.statuses:
            if status_id is not None and status.id == status_id:
                return status
            if name is not None and status.name.casefold() == name.strip().casefold():
                return status
        return None

    def default_status(self) -> Status:
        """The status a ticket gets when none is given."""
        return next(s for s in self.statuses if s.default)

    def api(self, base: str) -> dict[str, Any]:
        """GET service/boards item (shape of service_boards.json)."""
        return {
            "id": self.id,
            "name": self.name,
            "locationId": 1,
            "businessUnitId": 10,
            "inactiveFlag": False,
            "projectFlag": False,
            "billTime": "NoDefault",
            "_info": {"statuses_href": f"{base}/service/boards/{self.id}/statuses"},
        }


SERVICE_BOARD = Board(
    1,
    "Service Board",
    (
        Status(1, "New", 0, default=True),
        Status(2, "In Progress", 1),
        Status(3, "Waiting Client", 2),
        Status(4, "Completed", 3, closed=True),
        Status(5, "Closed", 4, closed=True),
    ),
)
BOARDS = (SERVICE_BOARD,)


def board_by(*, name: str | None = None, board_id: int | None = None) -> Board | None:
    """A board by name (case-insensitive) or id."""
    for board in BOARDS:
        if board_id is not None and board.id == board_id:
            return board
        if name is not None and board.name.casefold() == name.strip().casefold():
            return board
    return None


def _stable_id(kind: str, text: str, low: int) -> int:
    # The same identifier gets the same record id in every run, so ids survive a restart without being stored.
    digest = hashlib.sha256(f"{kind}:{text.casefold()}".encode()).hexdigest()
    return low + int(digest[:8], 16) % 900_000


def member_id(identifier: str) -> int:
    """The member record id of an identifier."""
    return _stable_id("member", identifier, 100)


def company_id(identifier: str) -> int:
    """The company record id of a company identifier given without an id."""
    return _stable_id("company", identifier, 1_000_000)


def member_ref(identifier: str, base: str) -> dict[str, Any]:
    """A member reference as ConnectWise embeds one."""
    mid = member_id(identifier)
    return {
        "id": mid,
        "identifier": identifier,
        "name": identifier,
        "_info": {"member_href": f"{base}/system/members/{mid}"},
    }


@dataclass
class Note:
    """A ticket note; `internal` is internalAnalysisFlag, `detail` detailDescriptionFlag."""

    id: int
    text: str
    internal: bool
    created_by: str
    created_at: str
    detail: bool = False
    resolution: bool = False

    def state(self) -> dict[str, Any]:
        """The /_sim view."""
        return {
            "id": self.id,
            "text": self.text,
            "internal": self.internal,
            "detail": self.detail,
            "resolution": self.resolution,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }

    def api(self, ticket_id: int, base: str) -> dict[str, Any]:
        """A service/tickets/{id}/notes item (shape of service_ticket_notes.json, the member as a reference)."""
        return {
            "id": self.id,
            "ticketId": ticket_id,
            "text": self.text,
            "detailDescriptionFlag": self.detail,
            "internalAnalysisFlag": self.internal,
            "resolutionFlag": self.resolution,
            "member": member_ref(self.created_by, base),
            "dateCreated": self.created_at,
            "createdBy": self.created_by,
            "internalFlag": self.internal,
            "externalFlag": False,
            "_info": {"lastUpdated": self.created_at, "updatedBy": self.created_by},
        }


@dataclass
class Ticket:
    """A service ticket."""

    id: int
    summary: str
    status: Status
    company_id: int
    company_identifier: str
    board: Board = SERVICE_BOARD
    owner: str | None = None
    external_ref: str | None = None
    login_company: str = DEFAULT_LOGIN_COMPANY
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    entered_by: str = API_MEMBER
    updated_by: str = API_MEMBER
    closed_at: str | None = None
    closed_by: str | None = None
    notes: list[Note] = field(default_factory=list)
    callbacks_sent: list[dict[str, Any]] = field(default_factory=list)

    def set_status(self, status: Status, member: str) -> None:
        """Change the status as `member`; a closed status closes the ticket, an open one reopens it."""
        if status.closed and not self.status.closed:
            self.closed_at, self.closed_by = now(), member
        elif not status.closed:
            self.closed_at = self.closed_by = None
        self.status = status
        self.touch(member)

    def touch(self, member: str) -> None:
        """Record who saved the ticket last, and when."""
        self.updated_at, self.updated_by = now(), member

    def record(self, deliveries: list[dict[str, Any]]) -> None:
        """Keep the latest callback deliveries."""
        self.callbacks_sent = (self.callbacks_sent + deliveries)[-MAX_SENT:]

    def state(self) -> dict[str, Any]:
        """The /_sim view (GET /_sim/psa/connectwise/tickets/{id} and the state's tickets)."""
        return {
            "id": self.id,
            "summary": self.summary,
            "status": self.status.name,
            "closed": self.status.closed,
            "owner": self.owner,
            "company": {"id": self.company_id, "identifier": self.company_identifier},
            "board": self.board.name,
            "externalXRef": self.external_ref,
            "login_company": self.login_company,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
            "notes": [n.state() for n in self.notes],
            "callbacks_sent": [dict(d) for d in self.callbacks_sent],
        }

    def api(self, base: str) -> dict[str, Any]:
        """GET service/tickets/{id} (shape of service_ticket.json; null fields left out as ConnectWise does)."""
        href = f"{base}/service/tickets/{self.id}"
        ticket: dict[str, Any] = {
            "id": self.id,
            "summary": self.summary,
            "recordType": "ServiceTicket",
            "board": {
                "id": self.board.id,
                "name": self.board.name,
                "_info": {"board_href": f"{base}/service/boards/{self.board.id}"},
            },
            "status": {
                "id": self.status.id,
                "name": self.status.name,
                "_info": {"status_href": f"{base}/service/boards/{self.board.id}/statuses/{self.status.id}"},
            },
            "company": {
                "id": self.company_id,
                "identifier": self.company_identifier,
                "name": self.company_identifier,
                "_info": {"company_href": f"{base}/company/companies/{self.company_id}"},
            },
        }
        if self.owner is not None:
            ticket["owner"] = member_ref(self.owner, base)
        if self.external_ref is not None:
            ticket["externalXRef"] = self.external_ref
        ticket.update(
            {
                "closedFlag": self.closed_at is not None,
                "customerUpdatedFlag": False,
                "approved": True,
                "isInSla": False,
                "hasChildTicket": False,
                "billTime": "NoDefault",
            }
        )
        if self.closed_at is not None:
            ticket["closedDate"], ticket["closedBy"] = self.closed_at, self.closed_by
        ticket["_info"] = {
            "dateEntered": self.created_at,
            "enteredBy": self.entered_by,
            "lastUpdated": self.updated_at,
            "updatedBy": self.updated_by,
            **{f"{part}_href": f"{href}/{part}" for part in _TICKET_LINKS},
        }
        return ticket


_TICKET_LINKS = (
    "activities",
    "timeentries",
    "scheduleentries",
    "documents",
    "products",
    "configurations",
    "tasks",
    "notes",
)


@dataclass
class CallbackEntry:
    """A callback registration (shape of system_callback_entry.json)."""

    id: int
    url: str
    object_id: int
    type: str
    level: str
    description: str = ""
    inactive: bool = False
    self_suppressed: bool = False
    member_id: int = field(default_factory=lambda: member_id(API_MEMBER))
    updated_at: str = field(default_factory=now)

    def state(self) -> dict[str, Any]:
        """The /_sim view: ConnectWise's own field names."""
        return {
            "id": self.id,
            "url": self.url,
            "objectId": self.object_id,
            "type": self.type,
            "level": self.level,
            "description": self.description,
            "inactiveFlag": self.inactive,
            "isSelfSuppressedFlag": self.self_suppressed,
            "memberId": self.member_id,
        }

    def api(self) -> dict[str, Any]:
        """GET system/callbacks item."""
        return {
            **self.state(),
            "payloadVersion": "",
            "isSoapCallbackFlag": False,
            "_info": {"lastUpdated": self.updated_at, "updatedBy": API_MEMBER},
        }

    def wants(self, ticket: Ticket, member: str) -> bool:
        """True when this active registration asks for callbacks about this ticket changed by `member`."""
        if self.inactive or self.type.casefold() != "ticket":
            return False
        if self.self_suppressed and member_id(member) == self.member_id:
            return False
        level = self.level.casefold()
        target = {
            "owner": None,
            "board": ticket.board.id,
            "status": ticket.status.id,
            "company": ticket.company_id,
            "ticket": ticket.id,
        }
        return level in target and (level == "owner" or target[level] == self.object_id)


# The levels a ticket callback may have here (ConnectWise's "PSA Callbacks" page lists these for tickets).
TICKET_LEVELS = ("owner", "board", "status", "company", "ticket")


@dataclass(frozen=True)
class SigningKey:
    """The callback signing key and the id its URL names."""

    id: str
    key: str

    @staticmethod
    def new() -> SigningKey:
        """A fresh random key."""
        return SigningKey(uuid.uuid4().hex, secrets.token_urlsafe(32))


class Store:
    """The ConnectWise instance: tickets, callback registrations and the signing key, under one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tickets: dict[int, Ticket] = {}
        self.callbacks: dict[int, CallbackEntry] = {}
        # The next id of each kind. Ids only grow (across resets too), so a consumer never mixes up an old
        # ticket with a new one.
        self._next = {"ticket": 1, "note": 1, "callback": 1}
        self.key = SigningKey.new()

    # --- ids and keys ----------------------------------------------------------------------------------

    def _take(self, kind: str) -> int:
        with self.lock:
            taken = self._next[kind]
            self._next[kind] = taken + 1
            return taken

    def next_ticket_id(self) -> int:
        """A new ticket id."""
        return self._take("ticket")

    def next_note_id(self) -> int:
        """A new note id."""
        return self._take("note")

    def next_callback_id(self) -> int:
        """A new callback registration id."""
        return self._take("callback")

    def rotate_key(self) -> SigningKey:
        """A new signing key; the old key id is unknown from now on."""
        with self.lock:
            self.key = SigningKey.new()
            return self.key

    def signing_key(self, key_id: str) -> str | None:
        """The signing key its id names, or None (an old or made-up id)."""
        with self.lock:
            return self.key.key if secrets.compare_digest(key_id.encode(), self.key.id.encode()) else None

    # --- StateStore --------------------------------------------------------------------------------------

    def reset(self) -> None:
        """No tickets and no callback registrations (the signing key and the id counters stay)."""
        with self.lock:
            self.tickets, self.callbacks = {}, {}

    def snapshot(self) -> dict[str, Any]:
        """{"tickets": [...], "callbacks": [...]} by id; never the signing key."""
        with self.lock:
            return {
                "tickets": [self.tickets[i].state() for i in sorted(self.tickets)],
                "callbacks": [self.callbacks[i].state() for i in sorted(self.callbacks)],
            }

    def replace(self, body: Any) -> Problems:
        """Validate {"tickets", "callbacks"} and replace both; nothing changes on any problem."""
        problems = Problems()
        if not fields(problems, "", body, required=("tickets", "callbacks"), optional=()):
            return problems
        tickets: dict[int, Ticket] = {}
        callbacks: dict[int, CallbackEntry] = {}
        for name in ("tickets", "callbacks"):
            if not isinstance(body[name], list):
                problems.add(name, "must be a list")
        if problems:
            return problems
        with self.lock:
            counters = dict(self._next)  # ids handed out while checking are taken back on any problem
            for index, item in enumerate(body["tickets"]):
                ticket = self._ticket(problems, f"tickets.{index}", item, tickets)
                if ticket is not None:
                    tickets[ticket.id] = ticket
            for index, item in enumerate(body["callbacks"]):
                entry = self._callback(problems, f"callbacks.{index}", item, callbacks)
                if entry is not None:
                    callbacks[entry.id] = entry
            if problems:
                self._next = counters
                return problems
            self.tickets, self.callbacks = tickets, callbacks
            self._advance(tickets, callbacks)
        return problems

    def file_state(self) -> dict[str, Any] | None:
        """What the state file keeps: the state and the signing key; None (nothing kept) while both lists are empty."""
        with self.lock:
            if not self.tickets and not self.callbacks:
                return None
            return {**self.snapshot(), "signing_key": {"id": self.key.id, "key": self.key.key}}

    def load_file_state(self, body: Any) -> Problems:
        """Load what `file_state` wrote: the state through `replace`, then its signing key."""
        problems = Problems()
        key = body.pop("signing_key", None) if isinstance(body, dict) else None
        if key is not None and not (
            isinstance(key, dict)
            and set(key) == {"id", "key"}
            and isinstance(key["id"], str)
            and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", key["id"])
            and isinstance(key["key"], str)
            and key["key"]
        ):
            problems.add("signing_key", "must be {id, key}: a key id of letters, digits, '_' or '-', and a key")
            return problems
        problems = self.replace(body)
        if not problems and key is not None:
            with self.lock:
                self.key = SigningKey(key["id"], key["key"])
        return problems

    def _advance(self, tickets: dict[int, Ticket], callbacks: dict[int, CallbackEntry]) -> None:
        notes = [n.id for t in tickets.values() for n in t.notes]
        for kind, used in (("ticket", list(tickets)), ("callback", list(callbacks)), ("note", notes)):
            self._next[kind] = max([self._next[kind], *(i + 1 for i in used)])

    # --- /_sim state validation --------------------------------------------------------------------------

    def _ticket(self, problems: Problems, path: str, item: Any, seen: dict[int, Ticket]) -> Ticket | None:
        optional = (
            "id",
            "board",
            "owner",
            "externalXRef",
            "login_company",
            "created_at",
            "updated_at",
            "updated_by",
            "closed",
            "notes",
            "callbacks_sent",
        )
        if not fields(problems, path, item, required=("summary", "status", "company"), optional=optional):
            return None
        before = len(problems.items)
        summary = item["summary"]
        if not isinstance(summary, str) or not summary.strip() or len(summary) > SUMMARY_MAX:
            problems.add(f"{path}.summary", f"must be a non-empty string of at most {SUMMARY_MAX} characters")
        board = board_by(name=item["board"]) if isinstance(item.get("board"), str) else SERVICE_BOARD
        if board is None or ("board" in item and not isinstance(item["board"], str)):
            problems.add(f"{path}.board", f"must name a board the simulator has ({', '.join(b.name for b in BOARDS)})")
            board = SERVICE_BOARD
        status = board.status(name=item["status"]) if isinstance(item["status"], str) else None
        if status is None:
            names = ", ".join(s.name for s in board.statuses)
            problems.add(f"{path}.status", f"must be a status of board {board.name} ({names})")
        company = _company(problems, f"{path}.company", item["company"])
        owner = item.get("owner")
        if owner is not None and (not isinstance(owner, str) or not MEMBER_PATTERN.match(owner)):
            problems.add(f"{path}.owner", "must be null or a member identifier (letters, digits, '_', '.', '@', '-')")
        ref = item.get("externalXRef")
        if ref is not None and (not isinstance(ref, str) or len(ref) > XREF_MAX):
            problems.add(f"{path}.externalXRef", f"must be null or a string of at most {XREF_MAX} characters")
        login = item.get("login_company", DEFAULT_LOGIN_COMPANY)
        if not isinstance(login, str) or not COMPANY_PATTERN.match(login):
            problems.add(f"{path}.login_company", "must be a company id (letters, digits, '_', '.', '-')")
        times: dict[str, str | None] = {}
        for name in ("created_at", "updated_at"):
            times[name] = timestamp(item[name]) if name in item else now()
            if times[name] is None:
                problems.add(f"{path}.{name}", "must be an RFC 3339 time with an offset, such as 2030-01-31T00:00:00Z")
        updated_by = item.get("updated_by", API_MEMBER)
        if not isinstance(updated_by, str) or not MEMBER_PATTERN.match(updated_by):
            problems.add(f"{path}.updated_by", "must be a member identifier")
        if "closed" in item and not isinstance(item["closed"], bool):
            problems.add(f"{path}.closed", "must be true or false (it follows the status; GET shows it)")
        ticket_id = item["id"] if "id" in item else self.next_ticket_id()
        if not is_int(ticket_id, 1, 10**9):
            problems.add(f"{path}.id", "must be a positive integer")
        elif ticket_id in seen:
            problems.add(f"{path}.id", "is used by another ticket listed")
        notes = self._notes(problems, f"{path}.notes", item.get("notes", []))
        sent = item.get("callbacks_sent", [])
        if not isinstance(sent, list) or not all(isinstance(d, dict) for d in sent):
            problems.add(f"{path}.callbacks_sent", "must be a list of objects (as GET shows them)")
        if len(problems.items) > before or status is None or company is None:
            return None
        ticket = Ticket(
            id=ticket_id,
            summary=summary,
            status=status,
            company_id=company[0],
            company_identifier=company[1],
            board=board,
            owner=owner,
            external_ref=ref,
            login_company=login,
            created_at=times["created_at"] or now(),
            updated_at=times["updated_at"] or now(),
            updated_by=updated_by,
            notes=notes,
            callbacks_sent=[dict(d) for d in sent][-MAX_SENT:],
        )
        if status.closed:
            ticket.closed_at, ticket.closed_by = ticket.updated_at, updated_by
        return ticket

    def _notes(self, problems: Problems, path: str, value: Any) -> list[Note]:
        if not isinstance(value, list):
            problems.add(path, "must be a list")
            return []
        notes: list[Note] = []
        ids: set[int] = set()
        for index, item in enumerate(value):
            where = f"{path}.{index}"
            optional = ("id", "internal", "detail", "resolution", "created_by", "created_at")
            if not fields(problems, where, item, required=("text",), optional=optional):
                continue
            before = len(problems.items)
            if not isinstance(item["text"], str) or not item["text"].strip() or len(item["text"]) > TEXT_MAX:
                problems.add(f"{where}.text", f"must be a non-empty string of at most {TEXT_MAX} characters")
            internal = item.get("internal", False)
            detail = item.get("detail", not internal)
            resolution = item.get("resolution", False)
            for name, flag in (("internal", internal), ("detail", detail), ("resolution", resolution)):
                if not isinstance(flag, bool):
                    problems.add(f"{where}.{name}", "must be true or false")
            author = item.get("created_by", API_MEMBER)
            if not isinstance(author, str) or not MEMBER_PATTERN.match(author):
                problems.add(f"{where}.created_by", "must be a member identifier")
            created = timestamp(item["created_at"]) if "created_at" in item else now()
            if created is None:
                problems.add(f"{where}.created_at", "must be an RFC 3339 time with an offset")
            note_id = item["id"] if "id" in item else self.next_note_id()
            if not is_int(note_id, 1, 10**9) or note_id in ids:
                problems.add(f"{where}.id", "must be a positive integer, once per ticket")
            if len(problems.items) == before and created is not None:
                ids.add(note_id)
                notes.append(Note(note_id, item["text"], internal, author, created, detail, resolution))
        return notes

    def _callback(
        self, problems: Problems, path: str, item: Any, seen: dict[int, CallbackEntry]
    ) -> CallbackEntry | None:
        optional = ("id", "description", "inactiveFlag", "isSelfSuppressedFlag", "memberId")
        if not fields(problems, path, item, required=("url", "objectId", "type", "level"), optional=optional):
            return None
        before = len(problems.items)
        url_problem = callback_url_problem(item["url"])
        if url_problem:
            problems.add(f"{path}.url", url_problem)
        elif any(e.url == item["url"] for e in seen.values()):
            problems.add(f"{path}.url", "is registered by another callback listed")
        if not is_int(item["objectId"], 0, 10**9):
            problems.add(f"{path}.objectId", "must be an integer (0 for level owner)")
        for name in ("type", "level"):
            if not isinstance(item[name], str) or not item[name].strip() or len(item[name]) > 50:
                problems.add(f"{path}.{name}", "must be a non-empty string")
        if (
            isinstance(item["type"], str)
            and isinstance(item["level"], str)
            and item["type"].casefold() == "ticket"
            and item["level"].casefold() not in TICKET_LEVELS
        ):
            problems.add(f"{path}.level", f"must be one of {', '.join(TICKET_LEVELS)} for a ticket callback")
        description = item.get("description", "")
        if not isinstance(description, str) or len(description) > 100:
            problems.add(f"{path}.description", "must be a string of at most 100 characters")
        for name in ("inactiveFlag", "isSelfSuppressedFlag"):
            if not isinstance(item.get(name, False), bool):
                problems.add(f"{path}.{name}", "must be true or false")
        member = item.get("memberId", member_id(API_MEMBER))
        if not is_int(member, 1, 10**9):
            problems.add(f"{path}.memberId", "must be a positive integer")
        entry_id = item["id"] if "id" in item else self.next_callback_id()
        if not is_int(entry_id, 1, 10**9):
            problems.add(f"{path}.id", "must be a positive integer")
        elif entry_id in seen:
            problems.add(f"{path}.id", "is used by another callback listed")
        if len(problems.items) > before:
            return None
        return CallbackEntry(
            id=entry_id,
            url=item["url"],
            object_id=item["objectId"],
            type=item["type"],
            level=item["level"],
            description=description,
            inactive=item.get("inactiveFlag", False),
            self_suppressed=item.get("isSelfSuppressedFlag", False),
            member_id=member,
        )


def callback_url_problem(url: Any) -> str | None:
    """Why a callback URL is not one the simulator will POST to (http or https, a host, no spaces), or None."""
    if not isinstance(url, str) or len(url) > 1000:
        return "must be an http or https URL of at most 1000 characters"
    match = re.match(r"^https?://([^/?#\s@]+)[^\s]*$", url, re.IGNORECASE)
    if match is None:
        return "must be an http or https URL with a host (and no user name or spaces)"
    return None


def _company(problems: Problems, path: str, value: Any) -> tuple[int, str] | None:
    """A company as the state gives it: an id, or {"id"?, "identifier"?} with at least one of them."""
    if is_int(value, 1, 10**9):
        return value, f"Company{value}"
    if isinstance(value, dict) and value and set(value) <= {"id", "identifier"}:
        cid, ident = value.get("id"), value.get("identifier")
        if cid is not None and not is_int(cid, 1, 10**9):
            problems.add(f"{path}.id", "must be a positive integer")
            return None
        if ident is not None and (not isinstance(ident, str) or not COMPANY_PATTERN.match(ident)):
            problems.add(f"{path}.identifier", "must be a company identifier (letters, digits, '_', '.', '-')")
            return None
        if isinstance(ident, str):
            return (cid if cid is not None else company_id(ident)), ident
        if isinstance(cid, int):
            return cid, f"Company{cid}"
        problems.add(path, "must name the company by id or identifier")
        return None
    problems.add(path, "must be a company id or {id, identifier}")
    return None
