"""ConnectWise Manage (PSA) REST API 3.0 under /connectwise/v4_6_release/apis/3.0: tickets, notes, boards, callbacks.

Auth as ConnectWise: `Authorization: Basic base64("{company}+{publicKey}:{privateKey}")` and a `clientId`
header. Error bodies are ConnectWise's `{code, message, errors}`:
- 400 `InvalidObject` "ticket object is invalid" with `errors: [{code, message, resource, field}]`
  (`MissingRequiredField`, or `NotFound` for a status that is not on the ticket's board: "Service Status not
  found for Service Board 1", as a ConnectWise fake certified against the live API answers);
- 400 `ConnectWiseApi` "Could not find member 'x' on object of type 'Ticket'. Path 'x', line 1, position n."
  for a field ConnectWise does not have (recorded in jundis/CWSlack-SlashCommands#132), and for a body that
  is not JSON;
- 404 `NotFound` "Ticket 12345 not found" (christaylorcodes/ConnectWise-Manage-Powershell#13);
- 401 `Unauthorized` for a missing, malformed or refused (`bad-key`) credential, and for a missing clientId
  (unverified: ConnectWise's words for a missing clientId were not found; one integrator's guide says 400);
- 400 `BadRequest` for conditions or paging the simulator does not take (unverified words);
- 429 `TooManyRequests` with `Retry-After` over the shared rate limit (unverified body).
`errors` is null where there is no list, as in ConnectWise's `ConnectWiseApi` bodies.

A ticket saved through PATCH sends the callbacks (vendor_sim/connectwise_callbacks.py) with `MemberId` the API
member: ConnectWise does send callbacks for API changes, which is why consumers suppress their own echoes. As
ConnectWise does, they go out after the PATCH has answered, not within it: a receiver that holds a lock while
it PATCHes (intake's push) would otherwise wait for its own echo.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from vendor_sim import connectwise_callbacks, serving
from vendor_sim.connectwise_model import (
    API_MEMBER,
    API_PATH,
    BOARDS,
    COMPANY_PATTERN,
    MEMBER_PATTERN,
    SERVICE_BOARD,
    SUMMARY_MAX,
    TEXT_MAX,
    TICKET_LEVELS,
    XREF_MAX,
    Board,
    CallbackEntry,
    Note,
    Status,
    Store,
    Ticket,
    board_by,
    callback_url_problem,
    company_id,
    member_id,
)
from vendor_sim.connectwise_query import Getter, QueryError, conditions, page
from vendor_sim.keys import refused
from vendor_sim.payload import Payload, empty, json_payload
from vendor_sim.serving import Caller
from vendor_sim.validate import is_int, now

SITE = "/connectwise"
PREFIX = SITE + API_PATH

# The members of ConnectWise's Ticket and TicketNote objects (tests/fixtures/connectwise/ plus the write-only
# initial* fields): a body may carry any of them (those the simulator does not model are accepted and
# ignored); anything else is refused as ConnectWise refuses an unknown member.
TICKET_MEMBERS = frozenset(
    m.casefold()
    for m in (
        "_info actualHours addressLine1 addressLine2 agreement allowAllClientsPortalView approved "
        "automaticEmailCc automaticEmailCcFlag automaticEmailContactFlag automaticEmailResourceFlag billExpenses "
        "billProducts billTime board budgetHours businessUnitId city closedBy closedDate closedFlag company "
        "contact contactEmailAddress contactEmailLookup contactName contactPhoneExtension contactPhoneNumber "
        "country customFields customerUpdatedFlag dateResolved dateResplan dateResponded duration enteredBy "
        "estimatedStartDate externalXRef hasChildTicket id impact isInSla item knowledgeBaseCategoryId "
        "knowledgeBaseLinkId knowledgeBaseLinkType knowledgeBaseSubCategoryId lagDays lagNonworkingDaysFlag "
        "locationId mobileGuid opportunity owner parentTicketId poNumber predecessorClosedFlag predecessorId "
        "predecessorType priority processNotifications recordType requiredDate resPlanMinutes resolveMinutes "
        "resources respondMinutes serviceLocation severity site siteName sla source stateIdentifier status "
        "subBillingAmount subBillingMethod subDateAccepted subType summary team type zip initialDescription "
        "initialInternalAnalysis initialResolution initialDescriptionFrom initialInternalAnalysisFrom "
        "initialResolutionFrom"
    ).split()
)
NOTE_MEMBERS = frozenset(
    m.casefold()
    for m in (
        "id ticketId text detailDescriptionFlag internalAnalysisFlag resolutionFlag issueFlag member contact "
        "customerUpdatedFlag processNotifications dateCreated createdBy internalFlag externalFlag _info"
    ).split()
)
CALLBACK_MEMBERS = frozenset(
    m.casefold()
    for m in (
        "id description url objectId type level memberId payloadVersion inactiveFlag isSoapCallbackFlag "
        "isSelfSuppressedFlag connectWiseID _info"
    ).split()
)
_UNAUTHORIZED = "Authentication failed: check the company id, public key and private key"


def _error(status: int, code: str, message: str, errors: list[dict[str, str]] | None = None) -> Payload:
    return json_payload(status, {"code": code, "message": message, "errors": errors})


def _invalid(resource: str, errors: list[dict[str, str]]) -> Payload:
    return _error(400, "InvalidObject", f"{resource} object is invalid", errors)


def _field(code: str, message: str, resource: str, field: str) -> dict[str, str]:
    return {"code": code, "message": message, "resource": resource, "field": field}


def _not_found(message: str) -> Payload:
    return _error(404, "NotFound", message)


def _bad_query(exc: QueryError) -> Payload:
    return _error(400, "BadRequest", str(exc))


def login(request: Request) -> tuple[str, str, str] | None:
    """(company, public key, private key) from a Basic Authorization header, or None when there is none."""
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        return None
    try:
        text = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    company, plus, keys = text.partition("+")
    public, colon, private = keys.partition(":")
    if not plus or not colon:
        return None
    return company, public, private


def _authenticate(request: Request) -> tuple[str | None, Payload | None]:
    found = login(request)
    if found is None:
        return None, _error(401, "Unauthorized", _UNAUTHORIZED)
    company, public, private = found
    credential = f"{company}+{public}:{private}"
    if not company or refused(public) or refused(private):
        return credential, _error(401, "Unauthorized", _UNAUTHORIZED)
    if not request.headers.get("clientid", "").strip():
        message = "A clientId header is required (see https://developer.connectwise.com/ClientID)"
        return credential, _error(401, "Unauthorized", message)
    return credential, None


def _over_limit(wait: int) -> Payload:
    message = f"Too many requests: retry after {wait} seconds"
    return json_payload(
        429, {"code": "TooManyRequests", "message": message, "errors": None}, {"Retry-After": str(wait)}
    )


def _fault(status: int, title: str) -> Payload:
    code = {429: "TooManyRequests", 503: "ServiceUnavailable"}.get(status, "ConnectWiseApi")
    return _error(status, code, title)


VENDOR = serving.Vendor(name="connectwise", authenticate=_authenticate, over_limit=_over_limit, fault_error=_fault)
# The signing key is served without credentials, under the same vendor's faults, latency and rate limit.
KEYS = serving.Vendor(
    name="connectwise", authenticate=serving.no_credential, over_limit=_over_limit, fault_error=_fault
)


def site_url(request: Request) -> str:
    """The ConnectWise site as this request reached the simulator: `{scheme}://{host}/connectwise`."""
    return str(request.base_url).rstrip("/") + SITE


def api_base(request: Request) -> str:
    """The API root as this request reached it."""
    return site_url(request) + API_PATH


# --- bodies --------------------------------------------------------------------------------------------


async def _json(request: Request, type_name: str, *, array: bool = False) -> tuple[Any, Payload | None]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"null")
    except ValueError as exc:
        why = exc.msg if isinstance(exc, json.JSONDecodeError) else "the body is not UTF-8"
        message = f"Unexpected character encountered while parsing value: {why}. Path '', line 1."
        return None, _error(400, "ConnectWiseApi", message)
    wanted, kind = (list, "array") if array else (dict, "object")
    if not isinstance(body, wanted):
        message = f"Cannot deserialize the current JSON value into type '{type_name}': a JSON {kind} is required."
        return None, _error(400, "ConnectWiseApi", message)
    return body, None


def _unknown_member(raw: bytes, member: str, type_name: str) -> Payload:
    position = raw.find(f'"{member}"'.encode())
    where = f", line 1, position {position + len(member) + 2}" if position >= 0 else ""
    message = f"Could not find member '{member}' on object of type '{type_name}'. Path '{member}'{where}."
    return _error(400, "ConnectWiseApi", message)


async def _checked_object(request: Request, type_name: str, members: frozenset[str]) -> tuple[Any, Payload | None]:
    body, refusal = await _json(request, type_name)
    if refusal is not None:
        return None, refusal
    for member in body:
        if member.casefold() not in members:
            return None, _unknown_member(await request.body(), member, type_name)
    return body, None


def _text(value: Any, limit: int) -> str | None:
    return value if isinstance(value, str) and value.strip() and len(value) <= limit else None


def _board(value: Any, errors: list[dict[str, str]]) -> Board | None:
    if value is None:
        return SERVICE_BOARD  # ConnectWise falls back on the API member's default board
    board = None
    if isinstance(value, dict) and is_int(value.get("id"), 1, 10**9):
        board = board_by(board_id=value["id"])
    elif isinstance(value, dict) and isinstance(value.get("name"), str):
        board = board_by(name=value["name"])
    if board is None:
        errors.append(_field("NotFound", "Service Board not found", "ticket", "board"))
    return board


def _status(value: Any, board: Board, errors: list[dict[str, str]]) -> Status | None:
    status = None
    if isinstance(value, dict) and is_int(value.get("id"), 1, 10**9):
        status = board.status(status_id=value["id"])
        field = "status/id"
    else:
        name = value.get("name") if isinstance(value, dict) else None
        status = board.status(name=name) if isinstance(name, str) else None
        field = "status/name"
    if status is None:
        errors.append(_field("NotFound", f"Service Status not found for Service Board {board.id}", "ticket", field))
    return status


def _company(value: Any, errors: list[dict[str, str]]) -> tuple[int, str] | None:
    if value is None:
        errors.append(_field("MissingRequiredField", "company is required.", "ticket", "company"))
        return None
    if isinstance(value, dict) and is_int(value.get("id"), 1, 10**9):
        ident = value.get("identifier")
        if isinstance(ident, str) and COMPANY_PATTERN.match(ident):
            return value["id"], ident
        return value["id"], f"Company{value['id']}"
    ident = value.get("identifier") if isinstance(value, dict) else None
    if isinstance(ident, str) and COMPANY_PATTERN.match(ident):
        # Any company is accepted: one given by identifier gets a stable record id.
        return company_id(ident), ident
    errors.append(_field("NotFound", "Company not found", "ticket", "company"))
    return None


def _known_members(store: Store) -> dict[int, str]:
    names = {API_MEMBER, *(t.owner for t in store.tickets.values() if t.owner)}
    names |= {n.created_by for t in store.tickets.values() for n in t.notes}
    return {member_id(name): name for name in names}


def _owner(store: Store, value: Any, errors: list[dict[str, str]], field: str = "owner") -> tuple[bool, str | None]:
    """(valid, identifier or None for no owner); any identifier is a member, an id must be one already seen."""
    if value is None:
        return True, None
    if isinstance(value, str):
        value = {"identifier": value} if field.endswith("identifier") else {"id": value}
    if isinstance(value, int) and not isinstance(value, bool):
        value = {"id": value}
    ident = value.get("identifier") if isinstance(value, dict) else None
    if isinstance(ident, str) and MEMBER_PATTERN.match(ident):
        return True, ident
    mid = value.get("id") if isinstance(value, dict) else None
    if is_int(mid, 1, 10**9):
        with store.lock:
            known = _known_members(store)
        if mid in known:
            return True, known[mid]
    errors.append(_field("NotFound", "Member not found", "ticket", field))
    return False, None


# --- tickets -------------------------------------------------------------------------------------------


def _ticket_fields() -> Mapping[str, Getter]:
    return {
        "id": lambda t: t.id,
        "summary": lambda t: t.summary,
        "externalxref": lambda t: t.external_ref,
        "closedflag": lambda t: t.closed_at is not None,
        "status/id": lambda t: t.status.id,
        "status/name": lambda t: t.status.name,
        "board/id": lambda t: t.board.id,
        "board/name": lambda t: t.board.name,
        "company/id": lambda t: t.company_id,
        "company/identifier": lambda t: t.company_identifier,
        "owner/identifier": lambda t: t.owner,
        "owner/id": lambda t: member_id(t.owner) if t.owner else None,
    }


def _listed(items: list[Any], request: Request, fields: Mapping[str, Getter], render: Callable[[Any], Any]) -> Payload:
    try:
        wanted = conditions(request.query_params.get("conditions"), fields)
        chosen, headers = page([i for i in items if wanted(i)], request.url, request.query_params)
    except QueryError as exc:
        return _bad_query(exc)
    return json_payload(200, [render(i) for i in chosen], headers)


def _count(items: list[Any], request: Request, fields: Mapping[str, Getter]) -> Payload:
    try:
        wanted = conditions(request.query_params.get("conditions"), fields)
    except QueryError as exc:
        return _bad_query(exc)
    return json_payload(200, {"count": sum(1 for i in items if wanted(i))})


def _ticket_id(request: Request) -> int | None:
    raw = request.path_params["ticket_id"]
    return int(raw) if raw.isdigit() and 0 < len(raw) <= 9 else None


def _get_ticket(store: Store, request: Request) -> tuple[Ticket | None, Payload | None]:
    ticket_id = _ticket_id(request)
    with store.lock:
        ticket = store.tickets.get(ticket_id) if ticket_id is not None else None
    if ticket is None:
        return None, _not_found(f"Ticket {request.path_params['ticket_id']} not found")
    return ticket, None


async def list_tickets(store: Store, request: Request, caller: Caller) -> Payload:
    """GET service/tickets[?conditions=&page=&pageSize=]."""
    base = api_base(request)
    with store.lock:
        tickets = [store.tickets[i] for i in sorted(store.tickets)]
        return _listed(tickets, request, _ticket_fields(), lambda t: t.api(base))


async def count_tickets(store: Store, request: Request, caller: Caller) -> Payload:
    """GET service/tickets/count[?conditions=] → {"count": n}."""
    with store.lock:
        return _count(list(store.tickets.values()), request, _ticket_fields())


async def get_ticket(store: Store, request: Request, caller: Caller) -> Payload:
    """GET service/tickets/{id}."""
    ticket, missing = _get_ticket(store, request)
    if ticket is None:
        return missing or _not_found("Ticket not found")
    with store.lock:
        return json_payload(200, ticket.api(api_base(request)))


async def create_ticket(store: Store, request: Request, caller: Caller) -> Payload:
    """POST service/tickets {summary, board?, company, status?, owner?, externalXRef?, initialDescription?} → 201."""
    body, refusal = await _checked_object(request, "Ticket", TICKET_MEMBERS)
    if refusal is not None:
        return refusal
    errors: list[dict[str, str]] = []
    summary = _text(body.get("summary"), SUMMARY_MAX)
    if summary is None and not body.get("summary"):
        errors.append(_field("MissingRequiredField", "summary is required.", "ticket", "summary"))
    elif summary is None:
        words = f"summary is limited to {SUMMARY_MAX} characters."
        errors.append(_field("InvalidField", words, "ticket", "summary"))
    board = _board(body.get("board"), errors)
    status = _status(body["status"], board, errors) if board and body.get("status") is not None else None
    if board is not None and body.get("status") is None:
        status = board.default_status()
    company = _company(body.get("company"), errors)
    owner_ok, owner = _owner(store, body.get("owner"), errors)
    ref = body.get("externalXRef")
    if ref is not None and (not isinstance(ref, str) or len(ref) > XREF_MAX):
        errors.append(
            _field("InvalidField", f"externalXRef is limited to {XREF_MAX} characters.", "ticket", "externalXRef")
        )
    initial = {}
    for name, internal in (("initialDescription", False), ("initialInternalAnalysis", True)):
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > TEXT_MAX):
            errors.append(_field("InvalidField", f"{name} must be text.", "ticket", name))
        elif value:
            initial[internal] = value
    if errors or summary is None or board is None or status is None or company is None or not owner_ok:
        return _invalid("ticket", errors)
    found = login(request)
    login_company = found[0] if found and COMPANY_PATTERN.match(found[0]) else "msp"
    with store.lock:
        ticket = Ticket(
            id=store.next_ticket_id(),
            summary=summary,
            status=status,
            company_id=company[0],
            company_identifier=company[1],
            board=board,
            owner=owner,
            external_ref=ref,
            login_company=login_company,
        )
        if status.closed:
            ticket.closed_at, ticket.closed_by = ticket.created_at, API_MEMBER
        for internal, text in sorted(initial.items()):
            ticket.notes.append(Note(store.next_note_id(), text, internal, API_MEMBER, now(), detail=not internal))
        store.tickets[ticket.id] = ticket
        return json_payload(201, ticket.api(api_base(request)))


# JSON Patch paths the simulator applies; any other member of Ticket is accepted and ignored.
_PATCHED = {
    "summary": "summary",
    "status": "status",
    "status/name": "status",
    "status/id": "status",
    "owner": "owner",
    "owner/identifier": "owner",
    "owner/id": "owner",
    "externalxref": "externalXRef",
}


def _patch_changes(store: Store, ticket: Ticket, ops: list[Any], raw: bytes) -> tuple[dict[str, Any], Payload | None]:
    changes: dict[str, Any] = {}
    errors: list[dict[str, str]] = []
    for index, op in enumerate(ops):
        kind = op.get("op") if isinstance(op, dict) else None
        path = op.get("path") if isinstance(op, dict) else None
        if not isinstance(kind, str) or kind.lower() not in ("add", "replace", "remove") or not isinstance(path, str):
            message = f"Operation {index}: op must be add, replace or remove, with a path"
            return {}, _error(400, "InvalidObject", message, [_field("InvalidField", message, "ticket", "op")])
        key = path.strip().strip("/").casefold()
        value = None if kind.lower() == "remove" else op.get("value")
        target = _PATCHED.get(key)
        if target is None:
            if key.split("/", 1)[0] not in TICKET_MEMBERS:
                return {}, _unknown_member(raw, path.strip().strip("/"), "Ticket")
            continue  # a real member the simulator does not model
        if target == "summary":
            changes["summary"] = _text(value, SUMMARY_MAX)
            if changes["summary"] is None:
                errors.append(_field("InvalidField", "summary is required.", "ticket", "summary"))
        elif target == "status":
            ref = value if key == "status" else {key.split("/")[1]: value}
            changes["status"] = _status(ref, ticket.board, errors)
        elif target == "owner":
            ref = value if key == "owner" else (None if value is None else {key.split("/")[1]: value})
            changes["owner"] = _owner(store, ref, errors)[1]
        elif value is not None and (not isinstance(value, str) or len(value) > XREF_MAX):
            errors.append(
                _field("InvalidField", f"externalXRef is limited to {XREF_MAX} characters.", "ticket", "externalXRef")
            )
        else:
            changes["externalXRef"] = value
    if errors:
        return {}, _invalid("ticket", errors)
    return changes, None


async def patch_ticket(store: Store, request: Request, caller: Caller) -> Payload:
    """PATCH service/tickets/{id} with a JSON Patch array → 200 ticket; the save sends the callbacks."""
    ticket, missing = _get_ticket(store, request)
    if ticket is None:
        return missing or _not_found("Ticket not found")
    ops, refusal = await _json(request, "PatchOperation[]", array=True)
    if refusal is not None:
        return refusal
    raw = await request.body()
    with store.lock:
        changes, refusal = _patch_changes(store, ticket, ops, raw)
        if refusal is not None:
            return refusal
        if "summary" in changes:
            ticket.summary = changes["summary"]
        if "owner" in changes:
            ticket.owner = changes["owner"]
        if "externalXRef" in changes:
            ticket.external_ref = changes["externalXRef"]
        if "status" in changes:
            ticket.set_status(changes["status"], API_MEMBER)
        ticket.touch(API_MEMBER)
    _after_answer(connectwise_callbacks.announce(store, ticket.id, member=API_MEMBER, site_url=site_url(request)))
    with store.lock:
        return json_payload(200, ticket.api(api_base(request)))


# Deliveries started by an API change and still running (a task without a reference may be collected).
_PENDING: set[asyncio.Task[Any]] = set()


def _after_answer(delivery: Any) -> None:
    """Run `delivery` on the loop once the handler has answered, keeping it referenced until it ends."""
    task = asyncio.get_running_loop().create_task(delivery)
    _PENDING.add(task)
    task.add_done_callback(_PENDING.discard)


# --- notes ---------------------------------------------------------------------------------------------


async def list_notes(store: Store, request: Request, caller: Caller) -> Payload:
    """GET service/tickets/{id}/notes."""
    ticket, missing = _get_ticket(store, request)
    if ticket is None:
        return missing or _not_found("Ticket not found")
    base = api_base(request)
    fields: Mapping[str, Getter] = {"id": lambda n: n.id, "internalanalysisflag": lambda n: n.internal}
    with store.lock:
        return _listed(list(ticket.notes), request, fields, lambda n: n.api(ticket.id, base))


async def create_note(store: Store, request: Request, caller: Caller) -> Payload:
    """POST service/tickets/{id}/notes {text, detailDescriptionFlag?, internalAnalysisFlag?, resolutionFlag?} → 201."""
    ticket, missing = _get_ticket(store, request)
    if ticket is None:
        return missing or _not_found("Ticket not found")
    body, refusal = await _checked_object(request, "TicketNote", NOTE_MEMBERS)
    if refusal is not None:
        return refusal
    errors = []
    text = _text(body.get("text"), TEXT_MAX)
    if text is None:
        errors.append(_field("MissingRequiredField", "text is required.", "ticketNote", "text"))
    flags = {}
    for name in ("detailDescriptionFlag", "internalAnalysisFlag", "resolutionFlag"):
        flags[name] = body.get(name, False)
        if not isinstance(flags[name], bool):
            errors.append(_field("InvalidField", f"{name} must be true or false.", "ticketNote", name))
    if errors or text is None:
        return _invalid("ticketNote", errors)
    detail = flags["detailDescriptionFlag"] or not (flags["internalAnalysisFlag"] or flags["resolutionFlag"])
    with store.lock:
        note = Note(
            store.next_note_id(),
            text,
            flags["internalAnalysisFlag"],
            API_MEMBER,
            now(),
            detail=detail,
            resolution=flags["resolutionFlag"],
        )
        ticket.notes.append(note)
        return json_payload(201, note.api(ticket.id, api_base(request)))


# --- boards and companies ------------------------------------------------------------------------------

_BOARD_FIELDS: Mapping[str, Getter] = {"id": lambda b: b.id, "name": lambda b: b.name}
_STATUS_FIELDS: Mapping[str, Getter] = {
    "id": lambda s: s.id,
    "name": lambda s: s.name,
    "closedstatus": lambda s: s.closed,
}


def _board_of(request: Request) -> Board | None:
    raw = request.path_params["board_id"]
    return board_by(board_id=int(raw)) if raw.isdigit() and len(raw) <= 9 else None


async def list_boards(store: Store, request: Request, caller: Caller) -> Payload:
    """GET service/boards[?conditions=name="Service Board"]."""
    base = api_base(request)
    return _listed(list(BOARDS), request, _BOARD_FIELDS, lambda b: b.api(base))


async def get_board(store: Store, request: Request, caller: Caller) -> Payload:
    """GET service/boards/{id}."""
    board = _board_of(request)
    return json_payload(200, board.api(api_base(request))) if board else _not_found("Board not found")


async def list_statuses(store: Store, request: Request, caller: Caller) -> Payload:
    """GET service/boards/{id}/statuses (closedStatus true for Completed and Closed)."""
    board = _board_of(request)
    if board is None:
        return _not_found("Board not found")
    return _listed(list(board.statuses), request, _STATUS_FIELDS, lambda s: s.api(board))


async def get_status(store: Store, request: Request, caller: Caller) -> Payload:
    """GET service/boards/{id}/statuses/{status_id}."""
    board = _board_of(request)
    raw = request.path_params["status_id"]
    status = board.status(status_id=int(raw)) if board and raw.isdigit() and len(raw) <= 9 else None
    return json_payload(200, status.api(board)) if board and status else _not_found("Service Status not found")


async def get_company(store: Store, request: Request, caller: Caller) -> Payload:
    """GET company/companies/{id}: any company id exists (shape of companies.json, fewer fields)."""
    raw = request.path_params["company_id"]
    if not raw.isdigit() or len(raw) > 9 or int(raw) < 1:
        return _not_found(f"Company {raw} not found")
    cid = int(raw)
    with store.lock:
        named = [t.company_identifier for t in store.tickets.values() if t.company_id == cid]
    ident = named[0] if named else f"Company{cid}"
    status = {"id": 1, "name": "Active", "defaultFlag": True, "inactiveFlag": False}
    body = {"id": cid, "identifier": ident, "name": ident, "status": status, "deletedFlag": False}
    return json_payload(200, body)


# --- callbacks -----------------------------------------------------------------------------------------

_CALLBACK_FIELDS: Mapping[str, Getter] = {
    "id": lambda c: c.id,
    "url": lambda c: c.url,
    "type": lambda c: c.type,
    "level": lambda c: c.level,
    "objectid": lambda c: c.object_id,
    "description": lambda c: c.description,
    "inactiveflag": lambda c: c.inactive,
}


async def list_callbacks(store: Store, request: Request, caller: Caller) -> Payload:
    """GET system/callbacks."""
    with store.lock:
        entries = [store.callbacks[i] for i in sorted(store.callbacks)]
        return _listed(entries, request, _CALLBACK_FIELDS, lambda c: c.api())


def _callback_of(store: Store, request: Request) -> CallbackEntry | None:
    raw = request.path_params["callback_id"]
    with store.lock:
        return store.callbacks.get(int(raw)) if raw.isdigit() and len(raw) <= 9 else None


async def get_callback(store: Store, request: Request, caller: Caller) -> Payload:
    """GET system/callbacks/{id}."""
    entry = _callback_of(store, request)
    return json_payload(200, entry.api()) if entry else _not_found("Callback not found")


async def delete_callback(store: Store, request: Request, caller: Caller) -> Payload:
    """DELETE system/callbacks/{id} → 204."""
    entry = _callback_of(store, request)
    if entry is None:
        return _not_found("Callback not found")
    with store.lock:
        store.callbacks.pop(entry.id, None)
    return empty(204)


async def create_callback(store: Store, request: Request, caller: Caller) -> Payload:
    """POST system/callbacks {url, objectId, type, level, description?, inactiveFlag?, isSelfSuppressedFlag?} → 201.

    A url already registered is refused (400): the simulator keeps one registration per url.
    """
    body, refusal = await _checked_object(request, "CallbackEntry", CALLBACK_MEMBERS)
    if refusal is not None:
        return refusal
    errors: list[dict[str, str]] = []
    for name in ("url", "objectId", "type", "level"):
        if body.get(name) is None:
            errors.append(_field("MissingRequiredField", f"{name} is required.", "callbackEntry", name))
    url = body.get("url")
    problem = callback_url_problem(url) if url is not None else None
    if problem:
        errors.append(_field("InvalidField", f"url {problem}.", "callbackEntry", "url"))
    object_id = body.get("objectId")
    if object_id is not None and not is_int(object_id, 0, 10**9):
        errors.append(_field("InvalidField", "objectId must be an integer.", "callbackEntry", "objectId"))
    kind, level = body.get("type"), body.get("level")
    for name, value in (("type", kind), ("level", level)):
        if value is not None and _text(value, 50) is None:
            errors.append(_field("InvalidField", f"{name} must be text.", "callbackEntry", name))
    if isinstance(kind, str) and isinstance(level, str) and kind.casefold() == "ticket":
        if level.casefold() not in TICKET_LEVELS:
            words = f"level must be one of {', '.join(TICKET_LEVELS)} for a ticket callback."
            errors.append(_field("InvalidField", words, "callbackEntry", "level"))
    description = body.get("description", "")
    if not isinstance(description, str) or len(description) > 100:
        errors.append(
            _field("InvalidField", "description is limited to 100 characters.", "callbackEntry", "description")
        )
    flags = {name: body.get(name, False) for name in ("inactiveFlag", "isSelfSuppressedFlag")}
    for name, flag in flags.items():
        if not isinstance(flag, bool):
            errors.append(_field("InvalidField", f"{name} must be true or false.", "callbackEntry", name))
    if errors:
        return _invalid("callbackEntry", errors)
    with store.lock:
        if any(e.url == url for e in store.callbacks.values()):
            words = "A callback with this url is already registered."
            return _invalid("callbackEntry", [_field("Duplicate", words, "callbackEntry", "url")])
        entry = CallbackEntry(
            id=store.next_callback_id(),
            url=url,
            object_id=object_id,
            type=kind,
            level=level,
            description=description,
            inactive=flags["inactiveFlag"],
            self_suppressed=flags["isSelfSuppressedFlag"],
        )
        store.callbacks[entry.id] = entry
        return json_payload(201, entry.api())


async def get_signing_key(store: Store, request: Request, caller: Caller) -> Payload:
    """GET system/callbackkeys/{key_id} (no credentials) → {"signing_key"}; an old or unknown id is 404."""
    key = store.signing_key(request.path_params["key_id"])
    if key is None:
        return _not_found("Callback key not found")
    return json_payload(200, {"signing_key": key}, {"Cache-Control": "no-store"})


async def no_route(store: Store, request: Request, caller: Caller) -> Payload:
    """Any other path under the API."""
    return _not_found(f"No resource at {request.url.path.removeprefix(PREFIX) or '/'}")


def routes(store: Store) -> list[Route]:
    """The API routes, each through the shared vendor pipeline (the key route without credentials)."""
    keyed = serving.routes(KEYS, PREFIX, store, [("/system/callbackkeys/{key_id}", get_signing_key, ["GET"])])
    return keyed + serving.routes(
        VENDOR,
        PREFIX,
        store,
        [
            ("/service/tickets", list_tickets, ["GET"]),
            ("/service/tickets", create_ticket, ["POST"]),
            ("/service/tickets/count", count_tickets, ["GET"]),
            ("/service/tickets/{ticket_id}", get_ticket, ["GET"]),
            ("/service/tickets/{ticket_id}", patch_ticket, ["PATCH"]),
            ("/service/tickets/{ticket_id}/notes", list_notes, ["GET"]),
            ("/service/tickets/{ticket_id}/notes", create_note, ["POST"]),
            ("/service/boards", list_boards, ["GET"]),
            ("/service/boards/{board_id}", get_board, ["GET"]),
            ("/service/boards/{board_id}/statuses", list_statuses, ["GET"]),
            ("/service/boards/{board_id}/statuses/{status_id}", get_status, ["GET"]),
            ("/company/companies/{company_id}", get_company, ["GET"]),
            ("/system/callbacks", list_callbacks, ["GET"]),
            ("/system/callbacks", create_callback, ["POST"]),
            ("/system/callbacks/{callback_id}", get_callback, ["GET"]),
            ("/system/callbacks/{callback_id}", delete_callback, ["DELETE"]),
            ("/{rest:path}", no_route, serving.ALL_METHODS),
        ],
    )
