"""Cloudflare API v4 (zones, DNS records) under /cloudflare/client/v4: envelope, paging, auth and error codes.

Codes as Cloudflare sends them: 1001 unknown zone (tests/fixtures/cloudflare/zone_GET_404.json), 81044 unknown
record, 81057 duplicate record, 81053 CNAME clash, 1004 validation with an `error_chain`
(error_with_error_chain.json), 9106/9107 missing credentials, 6003/6111 malformed Authorization, 10000 a refused
token (HTTP 403), 971 over the rate limit (HTTP 429). The 9xxx codes inside a validation chain are approximations.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from vendor_sim import serving
from vendor_sim.cloudflare_model import Record, Store, Zone, caa_data, check, clash, stamp
from vendor_sim.keys import refused
from vendor_sim.payload import Payload, json_payload
from vendor_sim.serving import Caller
from vendor_sim.validate import query_int

PREFIX = "/cloudflare/client/v4"
ZONES_PER_PAGE = (20, 50)  # default and maximum of GET /zones
RECORDS_PER_PAGE = (100, 100)  # what vendor_sync's adapter asks for
MIN_PER_PAGE = 5
NAME_SERVERS = ("anna.ns.cloudflare.com", "john.ns.cloudflare.com")
_NO_ZONE = (404, 1001, "Invalid zone identifier")
_NO_RECORD = (404, 81044, "Record does not exist.")
_MX_PRIORITY = [{"code": 9100, "message": "priority is required for an MX record"}]


def _envelope(success: bool, result: Any, errors: list[dict[str, Any]], info: dict[str, int] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"success": success, "errors": errors, "messages": [], "result": result}
    if info is not None:
        body["result_info"] = info
    return body


def _ok(result: Any, info: dict[str, int] | None = None) -> Payload:
    return json_payload(200, _envelope(True, result, [], info))


def _error(
    status: int,
    code: int,
    message: str,
    chain: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Payload:
    error: dict[str, Any] = {"code": code, "message": message}
    if chain:
        error["error_chain"] = chain
    return json_payload(status, _envelope(False, None, [error], None), headers=headers)


def _authenticate(request: Request) -> tuple[str | None, Payload | None]:
    header = request.headers.get("authorization")
    if header is None:
        missing = [{"code": 9106, "message": "Missing X-Auth-Email header"}]
        missing.append({"code": 9107, "message": "Missing X-Auth-Key header"})
        return None, json_payload(400, _envelope(False, None, missing, None))
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or " " in token.strip():
        chain = [{"code": 6111, "message": "Invalid format for Authorization header"}]
        return None, _error(400, 6003, "Invalid request headers", chain)
    token = token.strip()
    return token, _error(403, 10000, "Authentication error") if refused(token) else None


_THROTTLED = (971, "Please wait and consider throttling your request speed")


def _fault(status: int, title: str) -> Payload:
    # A status fault stands in for an edge or upstream failure: the envelope carries the fault's title.
    return _error(status, *(_THROTTLED if status == 429 else (status, title)))


VENDOR = serving.Vendor(
    name="cloudflare",
    authenticate=_authenticate,
    over_limit=lambda wait: _error(429, *_THROTTLED, headers={"Retry-After": str(wait)}),
    fault_error=_fault,
)


def _zone_json(zone: Zone) -> dict[str, Any]:
    return {
        "id": zone.id,
        "name": zone.name,
        "status": "active",
        "paused": False,
        "type": "full",
        "development_mode": 0,
        "name_servers": list(NAME_SERVERS),
        "original_name_servers": None,
        "original_registrar": None,
        "original_dnshost": None,
        "modified_on": zone.created_on,
        "created_on": zone.created_on,
        "activated_on": zone.created_on,
        "account": {"id": "0" * 32, "name": "vendor_sim account"},
        "permissions": ["#dns_records:edit", "#dns_records:read", "#zone:read"],
        "plan": {"id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website", "price": 0, "currency": "USD"},
    }


def _record_json(zone: Zone, record: Record) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": record.id,
        "zone_id": zone.id,
        "zone_name": zone.name,
        "name": record.name,
        "type": record.type,
        "content": record.content,
        "proxiable": record.type in ("A", "AAAA", "CNAME"),
        "proxied": record.proxied,
        "ttl": record.ttl,
        "locked": False,
        "meta": {"auto_added": False, "managed_by_apps": False, "managed_by_argo_tunnel": False},
        "comment": None,
        "tags": [],
        "created_on": record.created_on,
        "modified_on": record.modified_on,
    }
    if record.priority is not None:
        item["priority"] = record.priority
    data = caa_data(record.content) if record.type == "CAA" else None
    if data is not None:
        # As Cloudflare answers a CAA record: tab-joined content beside its `data`.
        item["content"] = f"{data['flags']}\t{data['tag']}\t{data['value']}"
        item["data"] = data
    return item


def _page(request: Request, items: list[Any], sizes: tuple[int, int]) -> tuple[list[Any], dict[str, int]]:
    """One page and its result_info; out-of-range sizes are clamped, non-numbers take the defaults."""
    page = max(1, query_int(request.query_params.get("page"), 1) or 1)
    per_page = query_int(request.query_params.get("per_page"), sizes[0]) or sizes[0]
    per_page = min(max(per_page, MIN_PER_PAGE), sizes[1])
    chunk = items[(page - 1) * per_page : page * per_page]
    total_pages = math.ceil(len(items) / per_page)
    info = {
        "page": page,
        "per_page": per_page,
        "count": len(chunk),
        "total_count": len(items),
        "total_pages": total_pages,
    }
    return chunk, info


def _matches(request: Request, item: dict[str, Any], names: tuple[str, ...]) -> bool:
    return all(
        str(item.get(n, "")).lower() == request.query_params[n].lower() for n in names if n in request.query_params
    )


async def list_zones(store: Store, request: Request, caller: Caller) -> Payload:
    """GET /zones[?name=&status=]: the account's zones by name, paged."""
    with store.lock:
        zones = [_zone_json(z) for z in sorted(store.zones.values(), key=lambda z: z.name)]
    chunk, info = _page(request, [z for z in zones if _matches(request, z, ("name", "status"))], ZONES_PER_PAGE)
    return _ok(chunk, info)


def _zone(store: Store, request: Request) -> Zone | None:
    return store.zones.get(request.path_params["zone_id"])


async def get_zone(store: Store, request: Request, caller: Caller) -> Payload:
    """GET /zones/{id}."""
    with store.lock:
        zone = _zone(store, request)
        return _ok(_zone_json(zone)) if zone is not None else _error(*_NO_ZONE)


async def list_records(store: Store, request: Request, caller: Caller) -> Payload:
    """GET /zones/{id}/dns_records[?type=&name=&content=]: the zone's records, paged."""
    with store.lock:
        zone = _zone(store, request)
        if zone is None:
            return _error(*_NO_ZONE)
        items = [_record_json(zone, r) for r in zone.records.values()]
    chunk, info = _page(
        request, [r for r in items if _matches(request, r, ("type", "name", "content"))], RECORDS_PER_PAGE
    )
    return _ok(chunk, info)


async def _record_body(request: Request, zone: Zone, *, partial: bool) -> tuple[dict[str, Any], Payload | None]:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return {}, _error(400, 9207, "Request body is invalid.")
    values, bad = check(zone.name, body, state=False)
    given = set(body) | ({"content"} if values.get("type") == "CAA" and "data" in body else set())
    missing = [] if partial else [f for f in ("type", "name", "content") if f not in given]
    chain = [{"code": 9002 if f in missing else code, "message": words} for f, code, words in bad]
    chain += [{"code": 9002, "message": f"{f} is required"} for f in missing]
    if chain:
        return {}, _error(400, 1004, "DNS Validation Error", chain)
    return values, None


async def create_record(store: Store, request: Request, caller: Caller) -> Payload:
    """POST /zones/{id}/dns_records {type, name, content, ttl?, priority?, proxied?}."""
    with store.lock:
        zone = _zone(store, request)
    if zone is None:
        return _error(*_NO_ZONE)
    values, refusal = await _record_body(request, zone, partial=False)
    if refusal is not None:
        return refusal
    values.setdefault("ttl", 1)
    return _store(store, zone, Record(**values), None)


def _store(store: Store, zone: Zone, record: Record, replaces: str | None) -> Payload:
    """Keep the record unless it lacks an MX priority or clashes with another; Cloudflare's answer either way."""
    if record.type == "MX" and record.priority is None:
        return _error(400, 1004, "DNS Validation Error", _MX_PRIORITY)
    with store.lock:
        refusal = clash(zone, record, skip=replaces)
        if refusal is None:
            zone.records[record.id] = record
    return _ok(_record_json(zone, record)) if refusal is None else _error(400, *refusal)


async def get_record(store: Store, request: Request, caller: Caller) -> Payload:
    """GET /zones/{id}/dns_records/{record_id}."""
    with store.lock:
        zone = _zone(store, request)
        if zone is None:
            return _error(*_NO_ZONE)
        record = zone.records.get(request.path_params["record_id"])
        return _ok(_record_json(zone, record)) if record is not None else _error(*_NO_RECORD)


async def update_record(store: Store, request: Request, caller: Caller) -> Payload:
    """PUT (whole record) or PATCH (some fields) /zones/{id}/dns_records/{record_id}."""
    with store.lock:
        zone = _zone(store, request)
        record = zone.records.get(request.path_params["record_id"]) if zone is not None else None
    if zone is None or record is None:
        return _error(*(_NO_ZONE if zone is None else _NO_RECORD))
    values, refusal = await _record_body(request, zone, partial=request.method == "PATCH")
    if refusal is not None:
        return refusal
    if request.method == "PUT":
        values = {"ttl": 1, "priority": None, "proxied": False, **values}
    return _store(store, zone, Record(**{**record.__dict__, **values, "modified_on": stamp()}), record.id)


async def delete_record(store: Store, request: Request, caller: Caller) -> Payload:
    """DELETE /zones/{id}/dns_records/{record_id} → {"id"}."""
    with store.lock:
        zone = _zone(store, request)
        if zone is None:
            return _error(*_NO_ZONE)
        record = zone.records.pop(request.path_params["record_id"], None)
    return _ok({"id": record.id}) if record is not None else _error(*_NO_RECORD)


async def no_route(store: Store, request: Request, caller: Caller) -> Payload:
    """Any other path under the API."""
    return _error(404, 7000, "No route for that URI")


def routes(store: Store) -> list[Route]:
    """The API routes, each through the shared vendor pipeline."""
    return serving.routes(
        VENDOR,
        PREFIX,
        store,
        [
            ("/zones", list_zones, ["GET"]),
            ("/zones/{zone_id}", get_zone, ["GET"]),
            ("/zones/{zone_id}/dns_records", list_records, ["GET"]),
            ("/zones/{zone_id}/dns_records", create_record, ["POST"]),
            ("/zones/{zone_id}/dns_records/{record_id}", get_record, ["GET"]),
            ("/zones/{zone_id}/dns_records/{record_id}", update_record, ["PUT", "PATCH"]),
            ("/zones/{zone_id}/dns_records/{record_id}", delete_record, ["DELETE"]),
            ("/{rest:path}", no_route, serving.ALL_METHODS),
        ],
    )
