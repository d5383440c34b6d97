"""MailChannels Inbound API 1.2.0 under /mailchannels/inbound/v1, as its OpenAPI document describes it.

Each domain belongs to the customer whose key provisioned it (kept as the key's fingerprint; None when set
through /_sim without one, which any key may use). Bodies on error are its ErrorResponse `{code, message, errors?}`.
The document declares no answer for a refused key on these paths; the simulator sends 401 (as it does for the
login-link and report paths). Over the rate limit it sends 503, as the document's "Rate Limits" section says.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from vendor_sim import serving
from vendor_sim.keys import refused
from vendor_sim.payload import Payload, empty, json_payload
from vendor_sim.serving import Caller
from vendor_sim.validate import Problems, fields, fingerprint_field, hostname, is_int, query_int

PREFIX = "/mailchannels/inbound/v1"
SUBSCRIPTION = "vendor-sim-inbound"
DOMAINS_LIMIT = (10, 5000)  # GET /domains: default and maximum
MAX_DOWNSTREAM = 10
_ADDRESS = ("priority", "weight", "port", "target")
_STATE_FIELDS = ("name", "downstream_addresses")
_NO_DOMAIN = (404, "The domain does not exist.")
_NOT_YOURS = (403, "The domain is associated with a different customer.")


@dataclass
class InboundDomain:
    """One protected domain; `owner` is the provisioning key's fingerprint."""

    name: str
    downstream: list[dict[str, Any]] = field(default_factory=list)
    owner: str | None = None
    subscription: str = SUBSCRIPTION
    settings: dict[str, Any] = field(default_factory=lambda: {"abusePolicy": "block", "abusePolicyOverride": False})
    admins: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)

    def state(self) -> dict[str, Any]:
        """The /_sim state view."""
        return {
            "name": self.name,
            "downstream_addresses": [dict(a) for a in self.downstream],
            "key_fingerprint": self.owner,
        }

    def json(self) -> dict[str, Any]:
        """The document's Domain object."""
        return {
            "domain": self.name,
            "subscriptionHandle": self.subscription,
            "settings": dict(self.settings),
            "admins": list(self.admins),
            "downstreamAddresses": [dict(a) for a in self.downstream],
            "aliases": list(self.aliases),
        }


def _target(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 255:
        return False
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return hostname(value, min_labels=1) is not None


def downstream(value: Any, limit: int = MAX_DOWNSTREAM) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """DownstreamAddress items checked against the document, and each problem as (relative field, words)."""
    if not isinstance(value, list) or len(value) > limit:
        return [], [("", f"must be a list of at most {limit} downstream addresses")]
    problems: list[tuple[str, str]] = []
    for index, item in enumerate(value):
        found = Problems()
        if not fields(found, str(index), item, required=_ADDRESS, optional=()):
            problems += [(p["field"], p["detail"]) for p in found.items]
            continue
        for key, high in (("priority", 65535), ("weight", 65535), ("port", 65535)):
            if not is_int(item[key], 0, high):
                problems.append((f"{index}.{key}", f"must be an integer from 0 to {high}"))
        if not _target(item["target"]):
            problems.append((f"{index}.target", "must be a host name (or an IP address) of at most 255 characters"))
    return ([dict(item) for item in value] if not problems else []), problems


class Store:
    """Every inbound domain, by name."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.domains: dict[str, InboundDomain] = {}

    def reset(self) -> None:
        """No domains."""
        with self.lock:
            self.domains = {}

    def snapshot(self) -> dict[str, Any]:
        """{"domains": [{"name", "downstream_addresses", "key_fingerprint"}]} by name."""
        with self.lock:
            items = sorted(self.domains.values(), key=lambda d: d.name)
            return {
                "domains": [
                    {
                        "name": d.name,
                        "downstream_addresses": [dict(a) for a in d.downstream],
                        "key_fingerprint": d.owner,
                    }
                    for d in items
                ]
            }

    def replace(self, body: Any) -> Problems:
        """Validate {"domains": [{"name", "downstream_addresses", "key_fingerprint"?}]} and replace every domain."""
        problems = Problems()
        if not fields(problems, "", body, required=("domains",), optional=()):
            return problems
        if not isinstance(body["domains"], list):
            problems.add("domains", "must be a list")
            return problems
        domains: dict[str, InboundDomain] = {}
        for index, item in enumerate(body["domains"]):
            path = f"domains.{index}"
            if not fields(
                problems, path, item, required=("name", "downstream_addresses"), optional=("key_fingerprint",)
            ):
                continue
            name = hostname(item["name"])
            if name is None or name in domains:
                problems.add(f"{path}.name", "must be a domain name not already listed")
            addresses, bad = downstream(item["downstream_addresses"])
            for where, words in bad:
                problems.add(f"{path}.downstream_addresses" + (f".{where}" if where else ""), words)
            owner = fingerprint_field(problems, f"{path}.key_fingerprint", item.get("key_fingerprint"))
            domains[name or ""] = InboundDomain(name=name or "", downstream=addresses, owner=owner)
        if not problems:
            with self.lock:
                self.domains = domains
        return problems


def _error(status: int, message: str, errors: list[str] | None = None) -> Payload:
    body: dict[str, Any] = {"code": status, "message": message}
    if errors:
        body["errors"] = errors
    return json_payload(status, body)


def _authenticate(request: Request) -> tuple[str | None, Payload | None]:
    key = request.headers.get("x-api-key")
    if refused(key):
        return key or None, _error(401, "Unauthorized", ["The X-API-Key header is missing or not a valid API key."])
    return key, None


VENDOR = serving.Vendor(
    name="mailchannels",
    authenticate=_authenticate,
    over_limit=lambda _wait: _error(503, "Service Temporarily Unavailable"),
    fault_error=_error,
)


def _bad_request(problems: list[tuple[str, str]]) -> Payload:
    return _error(400, "Bad Request", [f"{where}: {words}" if where else words for where, words in problems])


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        return None


def _visible(domain: InboundDomain, caller: Caller) -> bool:
    return domain.owner is None or domain.owner == caller.fingerprint


async def list_domains(store: Store, request: Request, caller: Caller) -> Payload:
    """GET /domains[?domains=&limit=&offset=]: the caller's domains (and unassociated ones) by name."""
    limit = query_int(request.query_params.get("limit"), DOMAINS_LIMIT[0])
    offset = query_int(request.query_params.get("offset"), 0)
    if limit is None or not 1 <= limit <= DOMAINS_LIMIT[1] or offset is None or offset < 0:
        return _bad_request([("limit", f"must be 1 to {DOMAINS_LIMIT[1]}"), ("offset", "must be 0 or more")])
    wanted = {n.strip().lower() for raw in request.query_params.getlist("domains") for n in raw.split(",") if n.strip()}
    with store.lock:
        found = [d for d in sorted(store.domains.values(), key=lambda d: d.name) if _visible(d, caller)]
    found = [d for d in found if not wanted or d.name in wanted]
    return json_payload(200, {"domains": [d.json() for d in found[offset : offset + limit]], "total": len(found)})


def _sections(body: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The optional Domain sections of a provisioning body, checked."""
    sections: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    if "downstreamAddresses" in body:
        sections["downstream"], bad = downstream(body["downstreamAddresses"], limit=100)
        problems += [(f"downstreamAddresses.{w}".rstrip("."), words) for w, words in bad]
    for key in ("admins", "aliases"):
        if key in body:
            if isinstance(body[key], list) and all(isinstance(v, str) for v in body[key]):
                sections[key] = list(body[key])
            else:
                problems.append((key, "must be a list of strings"))
    if "settings" in body:
        if isinstance(body["settings"], dict):
            sections["settings"] = dict(body["settings"])
        else:
            problems.append(("settings", "must be an object"))
    return sections, problems


async def provision(store: Store, request: Request, caller: Caller) -> Payload:
    """POST /domains[?overwrite=true] Domain: 201 new, 200 already this customer's, 409 another customer's."""
    body = await _json(request)
    if not isinstance(body, dict):
        return _bad_request([("", "the body must be a Domain object")])
    problems = [(k, "is required") for k in ("domain", "subscriptionHandle") if not body.get(k)]
    name = hostname(body.get("domain"))
    if body.get("domain") and name is None:
        problems.append(("domain", "is not a valid domain name"))
    sections, bad = _sections(body)
    if problems or bad or name is None:
        return _bad_request(problems + bad)
    with store.lock:
        existing = store.domains.get(name)
        if existing is not None and not _visible(existing, caller):
            return _error(409, "The domain is already provisioned, and is associated with a different customer.")
        if existing is not None:
            if request.query_params.get("overwrite", "").lower() == "true":
                for key, value in sections.items():
                    setattr(existing, key, value)
            return json_payload(200, existing.json())
        created = InboundDomain(name=name, owner=caller.fingerprint, subscription=str(body["subscriptionHandle"]))
        for key, value in sections.items():
            setattr(created, key, value)
        store.domains[name] = created
        return json_payload(201, created.json())


def _owned(store: Store, request: Request, caller: Caller) -> tuple[InboundDomain | None, Payload | None]:
    name = hostname(request.path_params["domain"])
    if name is None:
        return None, _bad_request([("domain", "is not a valid domain name")])
    domain = store.domains.get(name)
    if domain is None:
        return None, _error(*_NO_DOMAIN)
    return (domain, None) if _visible(domain, caller) else (None, _error(*_NOT_YOURS))


async def delete_domain(store: Store, request: Request, caller: Caller) -> Payload:
    """DELETE /domains/{domain} → 204."""
    with store.lock:
        domain, refusal = _owned(store, request, caller)
        if domain is not None:
            del store.domains[domain.name]
    return refusal or empty(204)


async def get_downstream(store: Store, request: Request, caller: Caller) -> Payload:
    """GET /domains/{domain}/downstream-address[?limit=&offset=] → {"records": [...]}."""
    limit = query_int(request.query_params.get("limit"), 10)
    offset = query_int(request.query_params.get("offset"), 0)
    if limit is None or limit < 1 or offset is None or offset < 0:
        return _bad_request([("limit", "must be 1 or more"), ("offset", "must be 0 or more")])
    with store.lock:
        domain, refusal = _owned(store, request, caller)
        records = [dict(a) for a in domain.downstream[offset : offset + limit]] if domain is not None else []
    return refusal or json_payload(200, {"records": records})


async def put_downstream(store: Store, request: Request, caller: Caller) -> Payload:
    """PUT /domains/{domain}/downstream-address {"records": [...]} → 201 with the new list (replaces it)."""
    with store.lock:
        domain, refusal = _owned(store, request, caller)
    if domain is None:
        return refusal or _error(*_NO_DOMAIN)
    body = await _json(request)
    if not isinstance(body, dict) or set(body) != {"records"}:
        return _bad_request([("", 'the body must be {"records": [...]}')])
    records, bad = downstream(body["records"])
    if bad:
        return _bad_request([(f"records.{w}".rstrip("."), words) for w, words in bad])
    with store.lock:
        domain.downstream = records
    return json_payload(201, {"records": records})


async def subscriptions(store: Store, request: Request, caller: Caller) -> Payload:
    """GET /subscriptions: the one subscription every simulated customer has."""
    with store.lock:
        count = sum(1 for d in store.domains.values() if d.owner == caller.fingerprint)
    plan = {"handle": "inbound", "name": "MailChannels Inbound (vendor_sim)"}
    return json_payload(
        200, [{"handle": SUBSCRIPTION, "active": True, "plan": plan, "limits": [], "activeAccountsCount": count}]
    )


async def no_route(store: Store, request: Request, caller: Caller) -> Payload:
    """Any other path under the API."""
    return _error(404, "Not Found")


def routes(store: Store) -> list[Route]:
    """The API routes, each through the shared vendor pipeline."""
    return serving.routes(
        VENDOR,
        PREFIX,
        store,
        [
            ("/domains", list_domains, ["GET"]),
            ("/domains", provision, ["POST"]),
            ("/domains/{domain}", delete_domain, ["DELETE"]),
            ("/domains/{domain}/downstream-address", get_downstream, ["GET"]),
            ("/domains/{domain}/downstream-address", put_downstream, ["PUT"]),
            ("/subscriptions", subscriptions, ["GET"]),
            ("/{rest:path}", no_route, serving.ALL_METHODS),
        ],
    )
