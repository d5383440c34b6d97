"""The simulator's ASGI app: RDAP and vendor endpoints, /healthz and the /_sim admin API."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vendor_sim import (
    accounts,
    cloudflare,
    connectwise,
    connectwise_control,
    connectwise_model,
    control,
    faults,
    godaddy,
    mailchannels,
    namecheap,
    rdap,
    serving,
)
from vendor_sim.payload import Payload
from vendor_sim.rdap_state import domain_name
from vendor_sim.serving import Caller
from vendor_sim.state import FaultSpecError, SimState
from vendor_sim.state_file import StateFile, path_from_env

# Under uvicorn (how the simulator runs), its error logger is the one that reaches the part's log.
log = logging.getLogger("uvicorn.error")


def _state(request: Request) -> SimState:
    state: SimState = request.app.state.sim
    return state


def _rdap_over_limit(retry_after: int) -> Payload:
    error = rdap.error_object(429, "Too Many Requests", "Query rate limit exceeded")
    return Payload(error.status, error.body, error.media_type, {"Retry-After": str(retry_after)})


RDAP = serving.Vendor(
    name="rdap",
    authenticate=serving.no_credential,
    over_limit=_rdap_over_limit,
    fault_error=faults.rdap_error,
    media=rdap.RDAP_MEDIA,
)


async def rdap_domain(request: Request) -> Response:
    """GET /rdap/domain/{name}: a changed, added or recorded registry answer, or an RDAP 404."""
    name = request.path_params["name"]

    async def answer(request: Request, _: Caller) -> Payload:
        base = str(request.base_url)
        changed = _state(request).rdap.answer(domain_name(name) or name.lower(), base)
        return Payload(200, changed, rdap.RDAP_MEDIA) if changed is not None else rdap.domain(name, base)

    return await serving.serve(request, RDAP, answer)


async def registrar_domain(request: Request) -> Response:
    """GET /rdap-registrar/domain/{name}: the registrar answer behind google.com's related link."""
    name = request.path_params["name"]

    async def answer(request: Request, _: Caller) -> Payload:
        return rdap.registrar_domain(name, str(request.base_url))

    return await serving.serve(request, RDAP, answer)


async def rdap_bootstrap(request: Request) -> Response:
    """GET /rdap/bootstrap/dns.json: TLDs mapped to this simulator's own /rdap/ base URL."""

    async def answer(request: Request, _: Caller) -> Payload:
        return rdap.bootstrap(str(request.base_url), _state(request).rdap.tlds())

    return await serving.serve(request, RDAP, answer)


async def rdap_other(request: Request) -> Response:
    """Any other RDAP path: an RDAP 404 error object."""

    async def answer(request: Request, _: Caller) -> Payload:
        return rdap.error_object(404, "Not Found", "Unsupported RDAP query")

    return await serving.serve(request, RDAP, answer)


async def healthz(request: Request) -> Response:
    """Liveness."""
    return JSONResponse({"status": "ok"})


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    return json.loads(raw)


async def faults_post(request: Request) -> Response:
    """POST /_sim/faults: add a fault rule."""
    try:
        fault = _state(request).add_fault(await _json_body(request))
    except (FaultSpecError, ValueError) as exc:
        return JSONResponse({"error": "validation_error", "detail": str(exc)}, status_code=422)
    return JSONResponse(fault.public(), status_code=201)


async def faults_get(request: Request) -> Response:
    """GET /_sim/faults: the active rules."""
    return JSONResponse({"items": [f.public() for f in _state(request).faults]})


async def faults_delete(request: Request) -> Response:
    """DELETE /_sim/faults[?path_prefix=]: remove rules."""
    removed = _state(request).clear_faults(request.query_params.get("path_prefix"))
    return JSONResponse({"removed": removed})


async def latency_post(request: Request) -> Response:
    """POST /_sim/latency {"ms": N}: added latency for every vendor request."""
    try:
        body = await _json_body(request)
    except ValueError:
        body = None
    ms = body.get("ms") if isinstance(body, dict) else None
    if isinstance(ms, bool) or not isinstance(ms, int | float) or not 0 <= ms <= 600_000:
        return JSONResponse({"error": "validation_error", "detail": "ms must be 0..600000", "field": "ms"}, 422)
    _state(request).latency_ms = float(ms)
    return JSONResponse({"ms": float(ms)})


async def latency_get(request: Request) -> Response:
    """GET /_sim/latency."""
    return JSONResponse({"ms": _state(request).latency_ms})


async def requests_get(request: Request) -> Response:
    """GET /_sim/requests[?path_prefix=]: the request log, oldest first, `t` in epoch seconds."""
    return JSONResponse({"items": _state(request).logged(request.query_params.get("path_prefix"))})


async def requests_delete(request: Request) -> Response:
    """DELETE /_sim/requests: empty the log."""
    _state(request).clear_log()
    return JSONResponse({"cleared": True})


async def reset(request: Request) -> Response:
    """POST /_sim/reset: no faults, empty log, default latency, no rate limits, recorded RDAP, empty vendors."""
    _state(request).reset()
    return JSONResponse({"reset": True})


# `/_sim` answers only a loopback Host: a page on another site (DNS rebinding) cannot drive it.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class DevOnlyRefused(RuntimeError):
    """vendor_sim was asked to start outside MSP_ENV=dev."""


def require_dev_env(env: dict[str, str] | None = None) -> None:
    """Raise DevOnlyRefused unless MSP_ENV=dev: the simulator takes any API key and is never deployed."""
    value = (os.environ if env is None else env).get("MSP_ENV", "")
    if value != "dev":
        raise DevOnlyRefused(
            f"vendor_sim refuses to start: MSP_ENV is {value or 'unset'!r}; it runs only with MSP_ENV=dev"
        )


def _host_name(host: str) -> str:
    if host.startswith("["):  # [::1]:8080
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class ControlGuard:
    """`/_sim/*`: a loopback `Host` only, and writes only with no body or an `application/json` one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (scope["path"] == "/_sim" or scope["path"].startswith("/_sim/")):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope["method"], headers)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, error, detail = refusal
        await JSONResponse({"error": error, "detail": detail}, status_code=status)(scope, receive, send)

    @staticmethod
    def _refusal(method: str, headers: Headers) -> tuple[int, str, str] | None:
        if _host_name(headers.get("host", "").strip().lower()) not in LOOPBACK_HOSTS:
            return 403, "forbidden", "the /_sim control API answers only a loopback Host"
        if method not in WRITE_METHODS:
            return None
        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        has_body = headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers
        if (media or has_body) and media != "application/json":
            return 415, "unsupported_media_type", "/_sim writes take an application/json body only"
        return None


# Requests that may change a vendor's state: /_sim writes, vendor writes, and any Namecheap command
# (its writes, such as namecheap.domains.dns.setCustom, come as GET too).
VENDOR_PREFIXES = ("/cloudflare/", "/godaddy/", "/namecheap/", "/mailchannels/", "/connectwise/")


def _may_change_vendors(method: str, path: str) -> bool:
    if path.startswith("/namecheap/"):
        return True
    return method in WRITE_METHODS and (path.startswith("/_sim/") or path.startswith(VENDOR_PREFIXES))


class SaveVendorState:
    """With a state file: after a request that may have changed a vendor, save before the answer goes out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state_file: StateFile | None = None
        if scope["type"] == "http" and _may_change_vendors(scope["method"], scope["path"]):
            state_file = getattr(scope["app"].state, "state_file", None)
        if state_file is None:
            await self.app(scope, receive, send)
            return
        saver = state_file

        async def send_after_saving(message: Message) -> None:
            # The handler has made its change by the time it starts its answer: the caller hears back
            # only once the change is on disk.
            if message["type"] == "http.response.start":
                try:
                    saver.save()
                except OSError:
                    # Kept in memory; the next change tries again. The answer still goes out.
                    log.exception("vendor_sim could not save its state file %s", saver.path)
            await send(message)

        await self.app(scope, receive, send_after_saving)


@asynccontextmanager
async def _lifespan(application: Starlette) -> AsyncIterator[None]:
    require_dev_env()
    path: Path | None = application.state.state_file_path
    if path is not None:
        state_file = StateFile(path, application.state.sim.vendors)
        loaded = state_file.load()
        log.info("vendor_sim state file %s (%s)", path, "loaded" if loaded else "none yet: starting empty")
        application.state.state_file = state_file
    yield


def create_app(
    *,
    latency_ms: float | None = None,
    sleep: faults.Sleep = asyncio.sleep,
    state_file: str | os.PathLike[str] | None = None,
) -> Starlette:
    """Build a simulator with its own state (tests build one each, and may pass a recording `sleep`).

    `state_file` (default: VENDOR_SIM_STATE_FILE, unset for none) keeps the vendors' state across restarts
    (vendor_sim/state_file.py); it is read when the app starts.
    """
    routes = [
        Route("/healthz", healthz),
        Route("/rdap/bootstrap/dns.json", rdap_bootstrap),
        Route("/rdap/domain/{name}", rdap_domain),
        Route("/rdap-registrar/domain/{name}", registrar_domain),
        Route("/rdap/{rest:path}", rdap_other),
        Route("/rdap-registrar/{rest:path}", rdap_other),
        Route("/_sim/faults", faults_post, methods=["POST"]),
        Route("/_sim/faults", faults_get, methods=["GET"]),
        Route("/_sim/faults", faults_delete, methods=["DELETE"]),
        Route("/_sim/latency", latency_post, methods=["POST"]),
        Route("/_sim/latency", latency_get, methods=["GET"]),
        Route("/_sim/requests", requests_get, methods=["GET"]),
        Route("/_sim/requests", requests_delete, methods=["DELETE"]),
        Route("/_sim/reset", reset, methods=["POST"]),
        *accounts.routes(),
        *control.routes(),
        *connectwise_control.routes(),
    ]
    sim = SimState(latency_ms)
    # Cloudflare and the registrars hold an account per key given one (vendor_sim/accounts.py).
    for keyed in (cloudflare, godaddy, namecheap):
        vendor_accounts = accounts.Accounts(keyed.Store)
        sim.vendors[keyed.VENDOR.name] = vendor_accounts
        # The handlers take the vendor's Store; Accounts answers for the calling key's one.
        routes.extend(accounts.keyed_routes(keyed.VENDOR, keyed.routes(vendor_accounts)))
    mail_store = mailchannels.Store()
    sim.vendors[mailchannels.VENDOR.name] = mail_store
    routes.extend(mailchannels.routes(mail_store))
    # ConnectWise PSA: tickets, notes, callback registrations and the callback signing key.
    psa_store = connectwise_model.Store()
    sim.vendors[connectwise.VENDOR.name] = psa_store
    routes.extend(connectwise.routes(psa_store))
    application = Starlette(routes=routes, lifespan=_lifespan)
    application.add_middleware(ControlGuard)
    application.add_middleware(SaveVendorState)
    application.state.sim = sim
    application.state.sleep = sleep
    application.state.state_file_path = Path(state_file) if state_file is not None else path_from_env()
    return application


app = create_app()
