"""Namecheap's XML API at /namecheap/xml.response: global parameters, the domain commands, its error numbers.

Errors come as HTTP 200 with `Status="ERROR"` (as in the recorded Namecheap cassettes): 1010101-1010105 a missing
global parameter, 1011102 a refused ApiKey, 1011104 an unknown Command, 2019166 an unknown domain, 500000 over
the rate limit. A missing or invalid command parameter gets 2010324 or 2011170: the simulator uses one number
each for every such parameter, where Namecheap's numbers differ per command.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl
from xml.etree.ElementTree import Element, SubElement, tostring

from starlette.requests import Request
from starlette.routing import Route

from vendor_sim import registrar_model, serving
from vendor_sim.keys import refused
from vendor_sim.payload import Payload
from vendor_sim.registrar_model import Domain
from vendor_sim.serving import Caller
from vendor_sim.validate import hostname, parse_time, query_int

PATH = "/namecheap/xml.response"
NAMESPACE = "http://api.namecheap.com/xml.response"
MEDIA = "text/xml; charset=utf-8"
PAGE_SIZE = (20, 10, 100)  # default, minimum, maximum of domains.getList
_GLOBALS = (
    ("apiuser", "1010101", "APIUser"),
    ("apikey", "1010102", "APIKey"),
    ("username", "1010103", "UserName"),
    ("command", "1010104", "Command"),
    ("clientip", "1010105", "ClientIP"),
)
# Namecheap's contact roles and the parameter prefixes setContacts takes for them.
ROLES = (("Registrant", "registrant"), ("Tech", "tech"), ("Admin", "admin"), ("AuxBilling", "billing"))
_FIELDS = (
    ("FirstName", "name_first"),
    ("LastName", "name_last"),
    ("OrganizationName", "organization"),
    ("Address1", "address1"),
    ("Address2", "address2"),
    ("City", "city"),
    ("StateProvince", "state"),
    ("PostalCode", "postal_code"),
    ("Country", "country"),
    ("Phone", "phone"),
    ("EmailAddress", "email"),
)
_REQUIRED = (
    "FirstName",
    "LastName",
    "Address1",
    "City",
    "StateProvince",
    "PostalCode",
    "Country",
    "Phone",
    "EmailAddress",
)
_OUR_DNS = ("dns1.registrar-servers.com", "dns2.registrar-servers.com")
Errors = list[tuple[str, str]]


class Store(registrar_model.Store):
    """The simulated Namecheap account's domains."""

    def __init__(self) -> None:
        super().__init__(first_id=500001)


class Failed(Exception):
    """A command's errors: (Number, words) pairs, sent with Status="ERROR"."""

    def __init__(self, *errors: tuple[str, str]) -> None:
        super().__init__(errors)
        self.errors: Errors = list(errors)


def _document(command: str, errors: Errors, result: Element | None) -> Payload:
    root = Element("ApiResponse", {"Status": "ERROR" if errors else "OK", "xmlns": NAMESPACE})
    listed = SubElement(root, "Errors")
    for number, words in errors:
        SubElement(listed, "Error", {"Number": number}).text = words
    SubElement(root, "Warnings")
    SubElement(root, "RequestedCommand").text = command.lower()
    if result is not None and not errors:
        root.append(result)
    SubElement(root, "Server").text = "VENDOR-SIM"
    SubElement(root, "GMTTimeDifference").text = "--0:00"
    SubElement(root, "ExecutionTime").text = "0.001"
    body = '<?xml version="1.0" encoding="utf-8"?>\r\n' + tostring(root, encoding="unicode")
    return Payload(status=200, body=body.encode(), media_type=MEDIA)


def _params(request: Request) -> dict[str, str]:
    """Query and urlencoded-form parameters by lower-case name (Namecheap ignores the case of names)."""
    return {k.lower(): v for k, v in request.query_params.items()}


async def _all_params(request: Request) -> dict[str, str]:
    params = _params(request)
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        params.update({k.lower(): v for k, v in form})
    return params


def _authenticate(request: Request) -> tuple[str | None, Payload | None]:
    params = _params(request)
    command = params.get("command", "")
    for name, number, label in _GLOBALS:
        if not params.get(name):
            return None, _document(command, [(number, f"Parameter {label} is missing")], None)
    key = params["apikey"]
    return key, _document(command, [("1011102", "Parameter APIKey is invalid")], None) if refused(key) else None


def _over_limit(_wait: int) -> Payload:
    return _document("", [("500000", "Too many requests")], None)


def _fault(status: int, title: str) -> Payload:
    payload = _document("", [("5050900", title)], None)
    return Payload(status=status, body=payload.body, media_type=MEDIA)


VENDOR = serving.Vendor(
    name="namecheap",
    authenticate=_authenticate,
    over_limit=_over_limit,
    fault_error=_fault,
    media=MEDIA,
    log_fields=lambda request: {"command": _params(request).get("command", "")[:80]},
)


def _date(text: str) -> str:
    return parse_time(text).strftime("%m/%d/%Y")


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _required(params: dict[str, str], *names: str) -> list[str]:
    missing = [("2010324", f"Parameter {n} is missing") for n in names if not params.get(n.lower())]
    if missing:
        raise Failed(*missing)
    return [params[n.lower()] for n in names]


def _domain(store: Store, params: dict[str, str]) -> Domain:
    if "domainname" in params or not ("sld" in params and "tld" in params):
        (raw,) = _required(params, "DomainName")
    else:
        sld, tld = _required(params, "SLD", "TLD")
        raw = f"{sld}.{tld}"
    domain = store.get(hostname(raw) or "")
    if domain is None:
        raise Failed(("2019166", "Domain not found"))
    return domain


def _result(command: str, tag: str, attributes: dict[str, str]) -> tuple[Element, Element]:
    response = Element("CommandResponse", {"Type": command})
    return response, SubElement(response, tag, attributes)


def get_list(store: Store, params: dict[str, str]) -> Element:
    """namecheap.domains.getList: Page, PageSize (10-100), SearchTerm; with a Paging element."""
    page = max(1, query_int(params.get("page"), 1) or 1)
    size = min(max(query_int(params.get("pagesize"), PAGE_SIZE[0]) or PAGE_SIZE[0], PAGE_SIZE[1]), PAGE_SIZE[2])
    term = params.get("searchterm", "").lower()
    domains = [d for d in store.sorted() if term in d.name]
    response, result = _result("namecheap.domains.getList", "DomainGetListResult", {})
    for d in domains[(page - 1) * size : page * size]:
        attributes = {"ID": str(d.id), "Name": d.name, "User": params["username"], "Created": _date(d.created_at)}
        attributes |= {"Expires": _date(d.expires_at), "IsExpired": _flag(d.expired()), "IsLocked": _flag(d.locked)}
        attributes |= {"AutoRenew": "false", "WhoisGuard": "NOTPRESENT", "IsPremium": "false"}
        attributes["IsOurDNS"] = _flag(set(d.nameservers) <= set(_OUR_DNS))
        SubElement(result, "Domain", attributes)
    paging = SubElement(response, "Paging")
    for tag, value in (("TotalItems", len(domains)), ("CurrentPage", page), ("PageSize", size)):
        SubElement(paging, tag).text = str(value)
    return response


def get_info(store: Store, params: dict[str, str]) -> Element:
    """namecheap.domains.getInfo: dates and nameservers, shaped as the recorded answer."""
    d = _domain(store, params)
    attributes = {"Status": "Ok", "ID": str(d.id), "DomainName": d.name, "OwnerName": params["username"]}
    response, result = _result("namecheap.domains.getInfo", "DomainGetInfoResult", attributes)
    result.attrib |= {"IsOwner": "true", "IsPremium": "false"}
    details = SubElement(result, "DomainDetails")
    for tag, value in (("CreatedDate", _date(d.created_at)), ("ExpiredDate", _date(d.expires_at)), ("NumYears", "0")):
        SubElement(details, tag).text = value
    SubElement(result, "LockDetails")
    SubElement(SubElement(result, "Whoisguard", {"Enabled": "NotAlloted"}), "ID").text = "0"
    ours = set(d.nameservers) <= set(_OUR_DNS)
    dns = {"ProviderType": "FREE" if ours else "CUSTOM", "IsUsingOurDNS": _flag(ours), "HostCount": "0"}
    dns_details = SubElement(result, "DnsDetails", dns | {"EmailType": "FWD", "DynamicDNSStatus": "false"})
    for server in d.nameservers:
        SubElement(dns_details, "Nameserver").text = server
    SubElement(result, "Modificationrights", {"All": "true"})
    return response


def dns_get_list(store: Store, params: dict[str, str]) -> Element:
    """namecheap.domains.dns.getList (SLD, TLD): the domain's nameservers."""
    d = _domain(store, params)
    ours = _flag(set(d.nameservers) <= set(_OUR_DNS))
    attributes = {"Domain": d.name, "IsUsingOurDNS": ours, "IsPremiumDNS": "false", "IsUsingFreeDNS": "false"}
    response, result = _result("namecheap.domains.dns.getList", "DomainDNSGetListResult", attributes)
    for server in d.nameservers:
        SubElement(result, "Nameserver").text = server
    return response


def dns_set_custom(store: Store, params: dict[str, str]) -> Element:
    """namecheap.domains.dns.setCustom (SLD, TLD, Nameservers comma-separated)."""
    d = _domain(store, params)
    (raw,) = _required(params, "Nameservers")
    names = [hostname(n) for n in raw.split(",")]
    if not names or len(names) > 12 or not all(names):
        raise Failed(("2011170", "Parameter Nameservers is invalid"))
    store.update(d.name, nameservers=tuple(dict.fromkeys(n for n in names if n)))
    return _result(
        "namecheap.domains.dns.setCustom", "DomainDNSSetCustomResult", {"Domain": d.name, "Updated": "true"}
    )[0]


def get_contacts(store: Store, params: dict[str, str]) -> Element:
    """namecheap.domains.getContacts: Registrant, Tech, Admin and AuxBilling."""
    d = _domain(store, params)
    attributes = {"Domain": d.name, "domainnameid": str(d.id)}
    response, result = _result("namecheap.domains.getContacts", "DomainContactsResult", attributes)
    for tag, role in ROLES:
        element = SubElement(result, tag, {"ReadOnly": "false"})
        contact = d.contacts.get(role, {})
        for theirs, ours in _FIELDS:
            SubElement(element, theirs).text = contact.get(ours, "")
    return response


def set_contacts(store: Store, params: dict[str, str]) -> Element:
    """namecheap.domains.setContacts: every role's required fields, all four roles at once."""
    d = _domain(store, params)
    names = [f"{prefix}{field}" for prefix, _ in ROLES for field in _REQUIRED]
    _required(params, *names)
    emails = [f"{prefix}EmailAddress" for prefix, _ in ROLES if "@" not in params[f"{prefix}emailaddress".lower()]]
    if emails:
        raise Failed(*[("2011170", f"Parameter {name} is invalid") for name in emails])
    contacts = {
        role: {
            ours: params[f"{prefix}{theirs}".lower()]
            for theirs, ours in _FIELDS
            if params.get(f"{prefix}{theirs}".lower())
        }
        for prefix, role in ROLES
    }
    store.update(d.name, contacts=contacts)
    return _result("namecheap.domains.setContacts", "DomainSetContactResult", {"Domain": d.name, "IsSuccess": "true"})[
        0
    ]


def get_lock(store: Store, params: dict[str, str]) -> Element:
    """namecheap.domains.getRegistrarLock."""
    d = _domain(store, params)
    attributes = {"Domain": d.name, "RegistrarLockStatus": _flag(d.locked)}
    return _result("namecheap.domains.getRegistrarLock", "DomainGetRegistrarLockResult", attributes)[0]


def set_lock(store: Store, params: dict[str, str]) -> Element:
    """namecheap.domains.setRegistrarLock (LockAction LOCK or UNLOCK; LOCK when absent)."""
    d = _domain(store, params)
    action = params.get("lockaction", "LOCK").upper()
    if action not in ("LOCK", "UNLOCK"):
        raise Failed(("2011170", "Parameter LockAction is invalid"))
    store.update(d.name, locked=action == "LOCK")
    attributes = {"Domain": d.name, "IsSuccess": "true"}
    return _result("namecheap.domains.setRegistrarLock", "DomainSetRegistrarLockResult", attributes)[0]


COMMANDS: dict[str, Callable[[Store, dict[str, str]], Element]] = {
    "namecheap.domains.getlist": get_list,
    "namecheap.domains.getinfo": get_info,
    "namecheap.domains.dns.getlist": dns_get_list,
    "namecheap.domains.dns.setcustom": dns_set_custom,
    "namecheap.domains.getcontacts": get_contacts,
    "namecheap.domains.setcontacts": set_contacts,
    "namecheap.domains.getregistrarlock": get_lock,
    "namecheap.domains.setregistrarlock": set_lock,
}


async def xml_response(store: Store, request: Request, caller: Caller) -> Payload:
    """GET or POST /xml.response: run the Command with its parameters."""
    params = await _all_params(request)
    command = params["command"]
    run = COMMANDS.get(command.lower())
    if run is None:
        return _document(command, [("1011104", "Parameter Command is invalid")], None)
    try:
        return _document(command, [], run(store, params))
    except Failed as failed:
        return _document(command, failed.errors, None)


def routes(store: Store) -> list[Route]:
    """The one API path, through the shared vendor pipeline."""
    return serving.routes(VENDOR, "", store, [(PATH, xml_response, ["GET", "POST"])])
