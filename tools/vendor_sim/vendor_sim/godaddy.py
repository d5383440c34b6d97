"""GoDaddy Domains API v1 under /godaddy/v1: `sso-key` auth, marker paging, domain and contact PATCHes, its errors.

Error bodies are GoDaddy's `{code, message, fields?}`: 401 MISSING_CREDENTIALS or UNABLE_TO_AUTHENTICATE, 404
NOT_FOUND, 400/422 INVALID_BODY with `fields: [{path, code, message}]`, 429 TOO_MANY_REQUESTS with `retryAfterSec`.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from vendor_sim import registrar_model, serving
from vendor_sim.keys import refused
from vendor_sim.payload import Payload, empty, json_payload
from vendor_sim.registrar_model import Domain
from vendor_sim.serving import Caller
from vendor_sim.validate import format_time, hostname, parse_time, query_int

PREFIX = "/godaddy/v1"
MAX_LIMIT = 1000
ROLE_KEYS = (
    ("contactRegistrant", "registrant"),
    ("contactAdmin", "admin"),
    ("contactTech", "tech"),
    ("contactBilling", "billing"),
)
# GoDaddy's contact fields and the simulator's own names for them (the /_sim state shape).
_PERSON = (
    ("nameFirst", "name_first"),
    ("nameLast", "name_last"),
    ("organization", "organization"),
    ("email", "email"),
    ("phone", "phone"),
)
_ADDRESS = (
    ("address1", "address1"),
    ("address2", "address2"),
    ("city", "city"),
    ("state", "state"),
    ("postalCode", "postal_code"),
    ("country", "country"),
)
_REQUIRED_PERSON = ("nameFirst", "nameLast", "email", "phone", "addressMailing")
_REQUIRED_ADDRESS = ("address1", "city", "state", "postalCode", "country")
_OPTIONAL_PERSON = frozenset({"organization", "jobTitle", "fax", "nameMiddle"})
_PATCH_FIELDS = frozenset({"locked", "nameServers", "renewAuto", "subaccountId", "exposeWhois", "consent"})
_NO_DOMAIN = (404, "NOT_FOUND", "Domain not found")
_BAD_KEY = "Unauthorized : Could not authenticate API key/secret"


class Store(registrar_model.Store):
    """The simulated GoDaddy account's domains."""

    def __init__(self) -> None:
        super().__init__(first_id=300000001)


def _error(status: int, code: str, message: str, fields: list[dict[str, str]] | None = None) -> Payload:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return json_payload(status, body)


def _authenticate(request: Request) -> tuple[str | None, Payload | None]:
    header = request.headers.get("authorization")
    if not header:
        return None, _error(401, "MISSING_CREDENTIALS", "Unauthorized : Credentials must be specified")
    scheme, _, credential = header.strip().partition(" ")
    key, colon, secret = credential.strip().partition(":")
    if scheme.lower() != "sso-key" or not colon or refused(key) or refused(secret):
        return credential.strip() or None, _error(401, "UNABLE_TO_AUTHENTICATE", _BAD_KEY)
    return credential.strip(), None


def _over_limit(wait: int) -> Payload:
    body = {"code": "TOO_MANY_REQUESTS", "message": "Too many requests received within interval", "retryAfterSec": wait}
    return json_payload(429, body, {"Retry-After": str(wait)})


def _fault(status: int, title: str) -> Payload:
    code = {429: "TOO_MANY_REQUESTS", 503: "SERVICE_UNAVAILABLE"}.get(status, "INTERNAL_SERVER_ERROR")
    return _error(status, code, title)


VENDOR = serving.Vendor(name="godaddy", authenticate=_authenticate, over_limit=_over_limit, fault_error=_fault)


def _time(text: str) -> str:
    # GoDaddy writes milliseconds: 2021-06-13T23:59:59.000Z.
    return text[:-1] + ".000Z"


def _contact(contact: dict[str, str]) -> dict[str, Any]:
    person: dict[str, Any] = {theirs: contact.get(ours, "") for theirs, ours in _PERSON}
    person["fax"] = ""
    person["addressMailing"] = {theirs: contact.get(ours, "") for theirs, ours in _ADDRESS}
    return person


def domain_json(domain: Domain, *, detail: bool, includes: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A domain as GET /v1/domains lists it, or (detail) as GET /v1/domains/{domain} answers."""
    item: dict[str, Any] = {
        "domainId": domain.id,
        "domain": domain.name,
        "status": "EXPIRED" if domain.expired() else "ACTIVE",
        "expires": _time(domain.expires_at),
        "expirationProtected": False,
        "holdRegistrar": False,
        "locked": domain.locked,
        "privacy": False,
        "renewAuto": True,
        "renewable": True,
        "transferProtected": False,
        "createdAt": _time(domain.created_at),
    }
    if detail:
        item["renewDeadline"] = _time(format_time(parse_time(domain.expires_at) + timedelta(days=45)))
    if detail or "nameServers" in includes:
        item["nameServers"] = list(domain.nameservers)
    if detail or "contacts" in includes:
        item.update({key: _contact(domain.contacts[role]) for key, role in ROLE_KEYS if role in domain.contacts})
    return item


async def list_domains(store: Store, request: Request, caller: Caller) -> Payload:
    """GET /v1/domains[?limit=&marker=&statuses=&includes=]: domains by name after `marker`."""
    params = request.query_params
    limit = query_int(params.get("limit"), MAX_LIMIT)
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        field = {"path": "limit", "code": "MISMATCH_FORMAT", "message": f"must be an integer from 1 to {MAX_LIMIT}"}
        return _error(422, "INVALID_QUERY", "Request query doesn't fulfill schema, see details in `fields`", [field])
    marker = (params.get("marker") or "").lower()
    statuses = {s.strip().upper() for s in params.get("statuses", "").split(",") if s.strip()}
    includes = frozenset(s.strip() for s in params.get("includes", "").split(",") if s.strip())
    items = [domain_json(d, detail=False, includes=includes) for d in store.sorted() if d.name > marker]
    items = [i for i in items if not statuses or i["status"] in statuses]
    return json_payload(200, items[:limit])


def _name(request: Request) -> str:
    return hostname(request.path_params["domain"]) or ""


async def get_domain(store: Store, request: Request, caller: Caller) -> Payload:
    """GET /v1/domains/{domain}: nameservers, contacts, lock and dates."""
    domain = store.get(_name(request))
    return json_payload(200, domain_json(domain, detail=True)) if domain is not None else _error(*_NO_DOMAIN)


async def _body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _invalid(fields: list[dict[str, str]]) -> Payload:
    return _error(422, "INVALID_BODY", "Request body doesn't fulfill schema, see details in `fields`", fields)


def _bad(path: str, code: str, message: str) -> dict[str, str]:
    return {"path": path, "code": code, "message": message}


async def patch_domain(store: Store, request: Request, caller: Caller) -> Payload:
    """PATCH /v1/domains/{domain} {nameServers?, locked?, renewAuto?, ...} → 204."""
    name = _name(request)
    if store.get(name) is None:
        return _error(*_NO_DOMAIN)
    body = await _body(request)
    if body is None:
        return _error(400, "INVALID_BODY", "Request was malformed")
    problems = [_bad(k, "UNEXPECTED_PROPERTY", "is not a property of DomainUpdate") for k in set(body) - _PATCH_FIELDS]
    changes: dict[str, Any] = {}
    if "locked" in body:
        if isinstance(body["locked"], bool):
            changes["locked"] = body["locked"]
        else:
            problems.append(_bad("locked", "MISMATCH_TYPE", "must be a boolean"))
    if "nameServers" in body:
        servers = body["nameServers"] if isinstance(body["nameServers"], list) else None
        names = [hostname(s) for s in servers or []]
        if servers is None or len(servers) > 13:
            problems.append(_bad("nameServers", "MISMATCH_TYPE", "must be an array of at most 13 host names"))
        problems += [
            _bad(f"nameServers[{i}]", "MISMATCH_FORMAT", "must be a host name") for i, n in enumerate(names) if not n
        ]
        changes["nameservers"] = tuple(dict.fromkeys(n for n in names if n))
    if problems:
        return _invalid(problems)
    store.update(name, **changes)
    return empty(204)


def _person(path: str, value: Any) -> tuple[dict[str, str], list[dict[str, str]]]:
    if not isinstance(value, dict):
        return {}, [_bad(path, "MISMATCH_TYPE", "must be an object")]
    problems = [_bad(f"{path}.{k}", "MISSING_FIELD", "is required") for k in _REQUIRED_PERSON if not value.get(k)]
    unknown = set(value) - set(_REQUIRED_PERSON) - _OPTIONAL_PERSON
    problems += [_bad(f"{path}.{k}", "UNEXPECTED_PROPERTY", "is not a property of Contact") for k in sorted(unknown)]
    address = value.get("addressMailing")
    address = address if isinstance(address, dict) else {}
    problems += [
        _bad(f"{path}.addressMailing.{k}", "MISSING_FIELD", "is required")
        for k in _REQUIRED_ADDRESS
        if value.get("addressMailing") and not address.get(k)
    ]
    email = value.get("email")
    if email and (not isinstance(email, str) or "@" not in email):
        problems.append(_bad(f"{path}.email", "MISMATCH_FORMAT", "must be an email address"))
    contact = {ours: str(value[theirs]) for theirs, ours in _PERSON if value.get(theirs) is not None}
    contact.update({ours: str(address[theirs]) for theirs, ours in _ADDRESS if address.get(theirs) is not None})
    return contact, problems


async def patch_contacts(store: Store, request: Request, caller: Caller) -> Payload:
    """PATCH /v1/domains/{domain}/contacts {contactRegistrant, contactAdmin?, contactTech?, contactBilling?} → 204."""
    name = _name(request)
    domain = store.get(name)
    if domain is None:
        return _error(*_NO_DOMAIN)
    body = await _body(request)
    if body is None:
        return _error(400, "INVALID_BODY", "Request was malformed")
    keys = dict(ROLE_KEYS)
    problems = [_bad(k, "UNEXPECTED_PROPERTY", "is not a property of DomainContacts") for k in set(body) - set(keys)]
    if "contactRegistrant" not in body:
        problems.append(_bad("contactRegistrant", "MISSING_FIELD", "is required"))
    contacts = dict(domain.contacts)
    for key in set(body) & set(keys):
        contacts[keys[key]], bad = _person(key, body[key])
        problems += bad
    if problems:
        return _invalid(problems)
    store.update(name, contacts=contacts)
    return empty(204)


async def no_route(store: Store, request: Request, caller: Caller) -> Payload:
    """Any other path under the API."""
    return _error(404, "NOT_FOUND", "Not Found")


def routes(store: Store) -> list[Route]:
    """The API routes, each through the shared vendor pipeline."""
    return serving.routes(
        VENDOR,
        PREFIX,
        store,
        [
            ("/domains", list_domains, ["GET"]),
            ("/domains/{domain}", get_domain, ["GET"]),
            ("/domains/{domain}", patch_domain, ["PATCH"]),
            ("/domains/{domain}/contacts", patch_contacts, ["PATCH"]),
            ("/{rest:path}", no_route, serving.ALL_METHODS),
        ],
    )
