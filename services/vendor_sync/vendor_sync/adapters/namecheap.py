"""Namecheap XML API (registrar): GET commands on `xml.response`, read with defusedxml, errors mapped once.

Namecheap answers HTTP 200 with `<ApiResponse Status="ERROR">`; its error numbers become the kit's errors
in `_ERROR_NUMBERS`. The ApiKey travels in the query string, so a URL with its query never reaches an
error or a log line: the kit words its errors with `redact_url`, and httpx's request log is filtered here.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, NoReturn

import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from redis import Redis

from mspkit.http import (
    BreakerConfig,
    FetchLimits,
    RateLimited,
    RetryPolicy,
    VendorAuthError,
    VendorError,
    VendorHTTP,
    VendorNotFound,
    VendorPermanentError,
    VendorResponse,
    VendorResponseError,
    VendorTransientError,
    origin_of,
    redact_url,
)
from mspkit.http.urls import is_loopback_host
from vendor_sync.adapters.rdap import InvalidDomainName, to_a_label
from vendor_sync.adapters.registrar_types import (
    CONTACTS_WRITE,
    DOMAINS_READ,
    LOCK_WRITE,
    NAMESERVERS_WRITE,
    Lifecycle,
    RegistrarContact,
    RegistrarDomain,
)

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element  # a type only: parsing goes through defusedxml

VENDOR = "namecheap"
NAMECHEAP_API = "https://api.namecheap.com/xml.response"
NAMECHEAP_SANDBOX_API = "https://api.sandbox.namecheap.com/xml.response"
# Namecheap documents 20 calls a minute (and 700 an hour) per account; callers pass it with a Redis client.
NAMECHEAP_RATE = "20/minute"
PAGE_SIZE = 100  # getList accepts PageSize 10-100
MAX_PAGES = 200
_NS = "{http://api.namecheap.com/xml.response}"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_USER = re.compile(r"[A-Za-z0-9._-]{1,20}")
# Namecheap issues 32-character hex keys; its documentation caps ApiKey at 50 characters.
_KEY = re.compile(r"[A-Za-z0-9]{16,50}")
_PHONE = re.compile(r"\+\d{1,3}\.\d{4,14}")

# Namecheap's error numbers, mapped once. Sources: "Global Error Codes" of
# https://www.namecheap.com/support/api/global-parameters/ (also /support/api/error-codes/); the "Error Codes"
# table of each method page (domains/get-info, get-contacts, get-/set-registrar-lock, domains-dns/set-custom);
# 1011150 "Invalid request IP" for a ClientIp not whitelisted (namecheap/go-namecheap-sdk issue #4);
# 500000 "Too many requests" (namecheap/terraform-provider-namecheap issue #9). The "unknown error/exception"
# numbers are those Namecheap's own Go SDK retries (errors.go, serverErrorNumbers). Anything else: permanent.
_AUTH_NUMBERS = "1010101 1010102 1011102 1010105 1011105 1030408 1050900 1011150 1017150 1017105 1017101 1017411"
_ERROR_NUMBERS: dict[str, type[VendorError]] = {
    **dict.fromkeys((*_AUTH_NUMBERS.split(), "1019103", "1016103", "1017103", "4011103"), VendorAuthError),
    # Not found, not in this account (2016166, 3016166), "Domain is invalid" (2030166, as recorded).
    **dict.fromkeys(("2019166", "2016166", "3016166", "2030166"), VendorNotFound),
    "500000": RateLimited,
    **dict.fromkeys(("3050900", "5050900", "5019169", "5050169"), VendorTransientError),
}
# The HTTP status each category stands for (Namecheap itself answered 200).
_STATUS_OF: dict[type[VendorError], int] = {
    VendorAuthError: 401,
    VendorNotFound: 404,
    RateLimited: 429,
    VendorTransientError: 503,
    VendorPermanentError: 400,
}
# getInfo's documented Status words are OK, Locked and Expired; a listing only says IsExpired. "Locked" is
# Namecheap's own hold on the domain (the transfer lock is `locked`), so it is not called active.
_LIFECYCLE: dict[str, Lifecycle] = {"OK": "active", "EXPIRED": "expired"}
_FLAGS = {"true": True, "false": False}
# getInfo's Whoisguard says True/False/NotAlloted; getList's WhoisGuard says ENABLED/NOTPRESENT/DISABLED.
_PRIVACY = {"TRUE": True, "ENABLED": True, "FALSE": False, "NOTALLOTED": False, "NOTPRESENT": False, "DISABLED": False}
Role = Literal["registrant", "admin", "tech", "billing"]
_ROLES: dict[str, Role] = {"Registrant": "registrant", "Admin": "admin", "Tech": "tech", "AuxBilling": "billing"}
# What setContacts takes per role; the required ones must all be known, or that role would be wiped.
_FIELDS = (
    "OrganizationName JobTitle FirstName LastName Address1 Address2 City StateProvince StateProvinceChoice "
    "PostalCode Country Phone PhoneExt Fax EmailAddress"
).split()
_REQUIRED = "FirstName LastName Address1 City StateProvince PostalCode Country Phone EmailAddress".split()
# RegistrarContact's fields and the Namecheap fields they set.
_OVERLAY = {
    "name_first": "FirstName",
    "name_last": "LastName",
    "organization": "OrganizationName",
    "email": "EmailAddress",
    "phone": "Phone",
}
Contacts = dict[Role, tuple[bool, dict[str, str]]]


class _Credentials:
    """The global parameters; the key never shows in a repr and is never pickled."""

    __slots__ = ("_params",)

    def __init__(self, api_user: str, api_key: str, username: str, client_ip: str) -> None:
        for label, value in (("api_user", api_user), ("username", username)):
            if not isinstance(value, str) or not _USER.fullmatch(value):
                raise ValueError(f"Namecheap {label} must be 1-20 letters, digits, '.', '_' or '-'")
        if not isinstance(api_key, str) or not _KEY.fullmatch(api_key):
            raise ValueError("Namecheap api_key must be 16-50 letters and digits")
        try:
            ip = str(ipaddress.IPv4Address(client_ip))
        except (ipaddress.AddressValueError, TypeError, ValueError):
            raise ValueError("Namecheap client_ip must be the whitelisted IPv4 address") from None
        self._params = {"ApiUser": api_user, "ApiKey": api_key, "UserName": username, "ClientIp": ip}

    def params(self) -> dict[str, str]:
        return dict(self._params)

    def scrub(self, text: str) -> str:
        # A vendor that echoes the key back must not get it into our logs or exceptions.
        return re.sub(re.escape(self._params["ApiKey"]), "[redacted]", text, flags=re.IGNORECASE)

    def __repr__(self) -> str:
        return "<namecheap credentials redacted>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("Namecheap credentials are held in memory for one job only and are never pickled")


class NamecheapAdapter:
    """Reads and changes a Namecheap account's domains through the vendor HTTP kit (allowlist, caps, retries)."""

    vendor = VENDOR
    capabilities: frozenset[str] = frozenset({DOMAINS_READ, NAMESERVERS_WRITE, CONTACTS_WRITE, LOCK_WRITE})

    def __init__(
        self,
        api_user: str,
        api_key: str,
        *,
        client_ip: str,
        username: str | None = None,
        base_url: str = NAMECHEAP_API,
        page_size: int = PAGE_SIZE,
        max_pages: int = MAX_PAGES,
        redis: Redis | None = None,
        rate: str | None = None,
        breaker: BreakerConfig | None = None,
        retry: RetryPolicy | None = None,
        limits: FetchLimits | None = None,
        denied_hosts: tuple[str, ...] = (),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 10 <= page_size <= 100 or max_pages < 1:
            raise ValueError("page_size must be 10-100 and max_pages at least 1")
        self._auth = _Credentials(api_user, api_key, username or api_user, client_ip)
        parsed = httpx.URL(base_url)
        if parsed.query or parsed.fragment or parsed.userinfo:
            raise ValueError("Namecheap base_url must not carry a query, fragment or credentials")
        origin = origin_of(parsed)
        # The key rides in the query string: never over cleartext off this machine (the simulator is local).
        if origin.scheme != "https" and not is_loopback_host(origin.host):
            raise ValueError(f"Namecheap base_url must be https (plain http only on loopback): {origin}")
        self.base_url = str(parsed)
        self.page_size = page_size
        self.max_pages = max_pages
        # Only the base URL's own origin: a redirect anywhere else is refused by the kit.
        self.http = VendorHTTP(
            self.vendor,
            allowed_hosts=[str(origin)],
            denied_hosts=denied_hosts,
            redis=redis,
            rate=rate,
            breaker=breaker,
            retry=retry,
            limits=limits,
            sleep=sleep,
            # Namecheap's own Go SDK reads 405 as its rate-limit signal (transport.go, errRetryStatus).
            rate_limit_statuses=(405,),
        )

    def __repr__(self) -> str:
        return f"NamecheapAdapter(base_url={redact_url(self.base_url)!r})"

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    def __enter__(self) -> NamecheapAdapter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def list_domains(self) -> list[RegistrarDomain]:
        """Every domain of the account, following Paging/TotalItems over all pages."""
        found: dict[str, RegistrarDomain] = {}
        page = 1
        while True:
            body = self._call("namecheap.domains.getList", {"Page": str(page), "PageSize": str(self.page_size)})
            items = [parse_list_item(item) for item in _children(_child(body, "DomainGetListResult"), "Domain")]
            total_text = _child_text(_child(body, "Paging"), "TotalItems") or ""
            if not total_text.isdigit() or len(total_text) > 9:
                raise VendorResponseError("namecheap: domain list without a Paging/TotalItems count", vendor=VENDOR)
            total = int(total_text)
            for item in items:
                found.setdefault(item.name, item)
            if page * self.page_size >= total:
                break
            # A silently truncated list would look like deleted domains to the sync plan.
            if -(-total // self.page_size) > self.max_pages:
                raise VendorResponseError(f"namecheap: more than {self.max_pages} pages of domains", vendor=VENDOR)
            if not items:
                raise VendorResponseError(f"namecheap: page {page} is empty, Paging says {total}", vendor=VENDOR)
            page += 1
        if len(found) < total:
            raise VendorResponseError(f"namecheap: listed {len(found)} of {total} domains", vendor=VENDOR)
        return list(found.values())

    def get_domain(self, name: str) -> RegistrarDomain:
        """One domain with nameservers, contacts and transfer lock; VendorNotFound when the account lacks it."""
        a_label = _domain_name(name)
        domain = parse_info(self._result("namecheap.domains.getInfo", a_label, "DomainGetInfoResult"))
        if domain.name != a_label:
            raise VendorResponseError(f"namecheap: asked for {a_label}, answer is for another domain", vendor=VENDOR)
        sld, tld = _split(a_label)
        dns = self._result("namecheap.domains.dns.getList", a_label, "DomainDNSGetListResult", SLD=sld, TLD=tld)
        contacts = self._contacts(a_label)
        lock = self._result("namecheap.domains.getRegistrarLock", a_label, "DomainGetRegistrarLockResult")
        return dataclasses.replace(
            domain,
            locked=_flag(lock.get("RegistrarLockStatus")),
            nameservers=_nameservers(_children(dns, "Nameserver")),
            contacts=tuple(_contact(fields, role) for role, (_read_only, fields) in contacts.items()),
        )

    def set_nameservers(self, name: str, nameservers: Sequence[str]) -> None:
        """Point the domain at custom nameservers (namecheap.domains.dns.setCustom)."""
        a_label = _domain_name(name)
        joined = ",".join(dict.fromkeys(_domain_name(host) for host in nameservers))
        if not joined or joined.count(",") > 12 or len(joined) > 1200:
            raise VendorPermanentError("namecheap: give 1-13 nameservers (1200 characters at most)", vendor=VENDOR)
        sld, tld = _split(a_label)
        command = "namecheap.domains.dns.setCustom"
        result = self._result(command, a_label, "DomainDNSSetCustomResult", SLD=sld, TLD=tld, Nameservers=joined)
        _confirmed(result, a_label, "Updated")

    def set_contacts(self, name: str, contacts: Sequence[RegistrarContact]) -> None:
        """Change contact fields, keeping every other current field (addresses) as getContacts reports it."""
        a_label = _domain_name(name)
        changes = _changes(contacts)
        current = self._contacts(a_label)
        params: dict[str, str] = {}
        for tag, role in _ROLES.items():
            read_only, fields = current.get(role, (False, {}))
            if role in changes and read_only:
                raise VendorPermanentError(f"namecheap: the {role} contact is read-only", vendor=VENDOR)
            merged = {**fields, **changes.get(role, {})}
            missing = ", ".join(field for field in _REQUIRED if not merged.get(field))
            if missing:
                # Sending the set without them would wipe what Namecheap holds for this role.
                raise VendorPermanentError(f"namecheap: {role} contact lacks {missing}; nothing sent", vendor=VENDOR)
            params.update({f"{tag}{field}": value for field, value in merged.items() if value})
        result = self._result("namecheap.domains.setContacts", a_label, "DomainSetContactResult", **params)
        _confirmed(result, a_label, "IsSuccess")

    def set_lock(self, name: str, locked: bool) -> None:
        """Set or clear the registrar transfer lock (namecheap.domains.setRegistrarLock)."""
        a_label = _domain_name(name)
        action = "LOCK" if locked else "UNLOCK"
        result = self._result(
            "namecheap.domains.setRegistrarLock", a_label, "DomainSetRegistrarLockResult", LockAction=action
        )
        _confirmed(result, a_label, "IsSuccess")

    def _contacts(self, a_label: str) -> Contacts:
        result = self._result("namecheap.domains.getContacts", a_label, "DomainContactsResult")
        found: Contacts = {}
        for tag, role in _ROLES.items():
            # Direct children only: WhoisGuardContact holds the privacy service's contacts, not the domain's.
            element = _child(result, tag)
            if element is not None:
                fields = {field: _child_text(element, field) or "" for field in _FIELDS}
                found[role] = (_flag(element.get("ReadOnly")) is True, fields)
        return found

    def _result(self, command: str, a_label: str, tag: str, **params: str) -> Element:
        """The command's result element, checked to be about `a_label` (DomainName unless SLD/TLD are given)."""
        query = params if "SLD" in params else {"DomainName": a_label, **params}
        result = _child(self._call(command, query), tag)
        if result is None:
            raise VendorResponseError(f"namecheap: {command} answer has no {tag}", vendor=VENDOR)
        if tag != "DomainGetInfoResult" and _answer_name(result.get("Domain")) != a_label:
            raise VendorResponseError(f"namecheap: asked for {a_label}, answer is for another domain", vendor=VENDOR)
        return result

    def _call(self, command: str, params: Mapping[str, str]) -> Element:
        """GET one command through the kit and return its CommandResponse; Namecheap's errors mapped."""
        url = str(httpx.URL(self.base_url, params={**self._auth.params(), "Command": command, **params}))
        try:
            response = self.http.get(url, headers={"Accept": "text/xml, application/xml"})
        except VendorError as exc:
            exc.body = None  # the raw error body the kit read may echo the key; it goes no further
            raise
        return self._parse(response, command)

    def _parse(self, response: VendorResponse, command: str) -> Element:
        media = (response.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        if media and media not in ("text/xml", "application/xml") and not media.endswith("+xml"):
            raise VendorResponseError(f"namecheap: expected XML from {response.url}, got {media[:64]}", vendor=VENDOR)
        try:
            # forbid_dtd: Namecheap never sends a DTD, so any DOCTYPE (bomb, external entity) is refused.
            root = fromstring(response.body, forbid_dtd=True)
        except DefusedXmlException as exc:
            raise VendorResponseError(f"namecheap: {command}: {type(exc).__name__}", vendor=VENDOR) from None
        except ParseError as exc:
            raise VendorResponseError(f"namecheap: {command}: malformed XML ({exc})", vendor=VENDOR) from None
        if root.tag != f"{_NS}ApiResponse":
            raise VendorResponseError(f"namecheap: {command}: not a Namecheap ApiResponse", vendor=VENDOR)
        status = (root.get("Status") or "").upper()
        if status == "ERROR":
            raise self._api_error(root, command)
        body = _child(root, "CommandResponse")
        if status != "OK" or body is None:
            raise VendorResponseError(f"namecheap: {command}: no OK CommandResponse", vendor=VENDOR)
        if (body.get("Type") or "").lower() != command.lower():
            raise VendorResponseError(f"namecheap: asked for {command}, answer is for another command", vendor=VENDOR)
        return body

    def _api_error(self, root: Element, command: str) -> VendorError:
        """Status="ERROR" as the kit error its first Error number stands for, with that number as vendor_code."""
        errors = _children(_child(root, "Errors"), "Error")
        if not errors:
            return VendorResponseError(f"namecheap: {command}: ERROR without an Error element", vendor=VENDOR)
        number = _text(errors[0].get("Number"))
        words = self._auth.scrub(_text(errors[0].text) or "no message")
        cls = RateLimited if "too many requests" in words.lower() else _ERROR_NUMBERS.get(number or "")
        cls = cls or VendorPermanentError
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        message = f"namecheap: {command} error {number or '?'}: {words}{more}"
        return cls(message, vendor=VENDOR, status=_STATUS_OF[cls], vendor_code=number)


def parse_list_item(item: Element) -> RegistrarDomain:
    """Map one getList `<Domain>` to a RegistrarDomain (a listing has no nameservers or contacts)."""
    status = "EXPIRED" if _flag(item.get("IsExpired")) else "OK"
    return RegistrarDomain(
        name=_answer_name(item.get("Name")),
        status=status,
        lifecycle=lifecycle(status),
        vendor_id=_id(item.get("ID")),
        expires_at=_date(item.get("Expires")),
        created_at=_date(item.get("Created")),
        renew_auto=_flag(item.get("AutoRenew")),
        locked=_flag(item.get("IsLocked")),
        privacy=_PRIVACY.get((item.get("WhoisGuard") or "").strip().upper()),
    )


def parse_info(result: Element) -> RegistrarDomain:
    """Map getInfo's `<DomainGetInfoResult>`; nameservers, contacts and lock come from their own commands."""
    status = (_text(result.get("Status")) or "UNKNOWN").upper()
    details = _child(result, "DomainDetails")
    whoisguard = _child(result, "Whoisguard")
    return RegistrarDomain(
        name=_answer_name(result.get("DomainName")),
        status=status,
        lifecycle=lifecycle(status),
        vendor_id=_id(result.get("ID")),
        expires_at=_date(_child_text(details, "ExpiredDate")),
        created_at=_date(_child_text(details, "CreatedDate")),
        privacy=_PRIVACY.get((whoisguard.get("Enabled") or "").upper()) if whoisguard is not None else None,
    )


def lifecycle(status: str) -> Lifecycle:
    """Fold a Namecheap status word (OK, Locked, Expired) into a Lifecycle."""
    return _LIFECYCLE.get(status.upper(), "other")


def _changes(contacts: Sequence[RegistrarContact]) -> dict[Role, dict[str, str]]:
    """The Namecheap fields each role changes (None leaves one as it is), checked before any call."""
    changes: dict[Role, dict[str, str]] = {}
    for contact in contacts:
        if contact.role not in _ROLES.values() or contact.role in changes:
            raise VendorPermanentError(f"namecheap: contact role {contact.role!r} unknown or repeated", vendor=VENDOR)
        fields: dict[str, str] = {}
        for attr, field in _OVERLAY.items():
            value = getattr(contact, attr)
            if value is None:
                continue
            text = value.strip() if isinstance(value, str) else ""
            bad = (not text and field != "OrganizationName") or len(text) > 255 or bool(_CONTROL.search(text))
            bad = bad or (field == "Phone" and not _PHONE.fullmatch(text))
            bad = bad or (field == "EmailAddress" and (text.count("@") != 1 or " " in text))
            if bad:
                raise VendorPermanentError(f"namecheap: invalid {contact.role} {attr}", vendor=VENDOR)
            fields[field] = text
        changes[contact.role] = fields
    if not changes:
        raise VendorPermanentError("namecheap: no contact changes given", vendor=VENDOR)
    return changes


def _confirmed(result: Element, a_label: str, attribute: str) -> None:
    if _flag(result.get(attribute)) is not True:
        raise VendorResponseError(f"namecheap: {a_label}: the change was not confirmed ({attribute})", vendor=VENDOR)


def _domain_name(name: str) -> str:
    try:
        return to_a_label(name)[0]
    except InvalidDomainName as exc:
        raise VendorPermanentError(f"namecheap: {exc}", vendor=VENDOR) from None


def _answer_name(value: str | None) -> str:
    try:
        return to_a_label(value or "")[0]
    except InvalidDomainName:
        raise VendorResponseError("namecheap: an answer has no valid domain name", vendor=VENDOR) from None


def _split(a_label: str) -> tuple[str, str]:
    # A registered name is one label under its suffix, so the rest is the TLD Namecheap wants (co.uk too).
    sld, _dot, tld = a_label.partition(".")
    return sld, tld


def _child(parent: Element | None, tag: str) -> Element | None:
    return parent.find(f"{_NS}{tag}") if parent is not None else None


def _children(parent: Element | None, tag: str) -> list[Element]:
    return parent.findall(f"{_NS}{tag}")[:1000] if parent is not None else []


def _child_text(parent: Element | None, tag: str) -> str | None:
    element = _child(parent, tag)
    return _text(element.text) if element is not None else None


def _text(value: str | None) -> str | None:
    if not isinstance(value, str):
        return None
    return _CONTROL.sub(" ", value).strip()[:300] or None


def _flag(value: str | None) -> bool | None:
    return _FLAGS.get((value or "").strip().lower())


def _id(value: str | None) -> str | None:
    text = _text(value)
    return text if text is not None and text.isdigit() and text.strip("0") else None


def _date(value: str | None) -> datetime | None:
    # MM/DD/YYYY without a time or zone: midnight UTC of that day.
    try:
        return datetime.strptime((value or "").strip(), "%m/%d/%Y").replace(tzinfo=UTC)
    except ValueError:
        return None


def _nameservers(elements: list[Element]) -> tuple[str, ...]:
    names: list[str] = []
    for element in elements[:20]:
        try:
            names.append(to_a_label(_text(element.text) or "")[0])
        except InvalidDomainName:
            continue
    return tuple(dict.fromkeys(names))


def _contact(fields: dict[str, str], role: Role) -> RegistrarContact:
    return RegistrarContact(role=role, **{attr: _text(fields.get(field)) for attr, field in _OVERLAY.items()})
