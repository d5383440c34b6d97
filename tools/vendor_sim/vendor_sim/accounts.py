"""Several customers at one simulated vendor: the shared account, and accounts of their own for given keys.

A real Cloudflare or GoDaddy key sees only its own customer's zones or domains. The simulator keeps a
shared account, which `PUT /_sim/{vendor}/state` sets and every key reaches (so a test needs no key to
seed it), and, for keys named by their fingerprint (`sha256(key)[:12]`, never the key itself), accounts of
their own: `PUT /_sim/{vendor}/accounts/{fingerprint}/state`. A call with such a key reads and writes only
its account; any other key still gets the shared one. The demo data gives each demo client's key its own
account, so one client's sync never sees another client's zones.

MailChannels is not split this way: its domains are one set, each owned by the key that provisioned it
(its state's `key_fingerprint`), which is how it answers 409 for a domain another customer holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vendor_sim import serving
from vendor_sim.keys import fingerprint
from vendor_sim.state import SimState, StateStore
from vendor_sim.validate import Problems, fingerprint_field, json_body

# The fingerprint of the key of the vendor call being answered (None: no key, or not a vendor call).
CALLER: ContextVar[str | None] = ContextVar("vendor_sim_caller", default=None)
ACCOUNTS_FIELD = "accounts"


class Accounts:
    """A vendor's accounts; attribute reads go to the calling key's account, so the vendor's handlers are unchanged.

    As a StateStore it shows and replaces the shared account, plus `accounts: {fingerprint: state}` when
    any key has its own (left out otherwise, so the shape is the contract's for a simulator without any).
    """

    def __init__(self, make: Callable[[], StateStore]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._shared: Any = make()
        self._keyed: dict[str, Any] = {}

    def current(self) -> Any:
        """The account of the key being answered: its own if it has one, else the shared one."""
        caller = CALLER.get()
        with self._lock:
            return self._keyed.get(caller, self._shared) if caller is not None else self._shared

    def __getattr__(self, name: str) -> Any:
        # Only called for names this class lacks: the vendor's store attributes (lock, zones, get, update, ...).
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.current(), name)

    def snapshot(self) -> dict[str, Any]:
        """The shared account's state, and each keyed account's under `accounts` (fingerprints only)."""
        with self._lock:
            shared, keyed = self._shared, dict(self._keyed)
        state = dict(shared.snapshot())
        if keyed:
            state[ACCOUNTS_FIELD] = {fp: keyed[fp].snapshot() for fp in sorted(keyed)}
        return state

    def replace(self, body: Any) -> Problems:
        """Replace the shared account and every keyed one (none when `accounts` is left out); all or nothing."""
        accounts: Any = {}
        if isinstance(body, dict) and ACCOUNTS_FIELD in body:
            accounts = body[ACCOUNTS_FIELD]
            body = {k: v for k, v in body.items() if k != ACCOUNTS_FIELD}
        shared = self._make()
        problems = shared.replace(body)
        keyed: dict[str, StateStore] = {}
        if not isinstance(accounts, dict):
            problems.add(ACCOUNTS_FIELD, "must be an object of key fingerprints to account states")
        else:
            for name, state in accounts.items():
                if fingerprint_field(Problems(), "", name) is None:
                    # The name is not echoed: a key given where its fingerprint belongs stays unshown.
                    problems.add(ACCOUNTS_FIELD, "each name must be a key fingerprint (12 lower-case hex digits)")
                    continue
                account, found = self._build(state)
                for item in found.items:
                    problems.add(f"{ACCOUNTS_FIELD}.{name}.{item['field']}".removesuffix(".body"), item["detail"])
                keyed[name] = account
        if not problems:
            with self._lock:
                self._shared, self._keyed = shared, keyed
        return problems

    def reset(self) -> None:
        """An empty shared account and no keyed ones."""
        shared = self._make()
        with self._lock:
            self._shared, self._keyed = shared, {}

    def fingerprints(self) -> list[str]:
        """The fingerprints of the keys that have an account of their own."""
        with self._lock:
            return sorted(self._keyed)

    def account(self, key_fingerprint: str) -> StateStore | None:
        """One key's own account, or None."""
        with self._lock:
            found: StateStore | None = self._keyed.get(key_fingerprint)
            return found

    def put_account(self, key_fingerprint: str, body: Any) -> tuple[StateStore, Problems]:
        """Create or replace one key's account from a state body; nothing changes on any problem."""
        account, problems = self._build(body)
        if not problems:
            with self._lock:
                self._keyed[key_fingerprint] = account
        return account, problems

    def _build(self, body: Any) -> tuple[StateStore, Problems]:
        account = self._make()
        return account, account.replace(body)


def keyed_routes(vendor: serving.Vendor, routes: list[Route]) -> list[Route]:
    """The vendor's routes, each answering with CALLER set to the fingerprint of the key it was called with."""

    def keyed(route: Route) -> Route:
        inner = route.endpoint

        async def endpoint(request: Request) -> Response:
            # The vendor's own check reads the key (a header or the query); refusing it stays serve()'s job.
            credential, _ = vendor.authenticate(request)
            token = CALLER.set(fingerprint(credential) if credential else None)
            try:
                response: Response = await inner(request)
                return response
            finally:
                CALLER.reset(token)

        return Route(route.path, endpoint, methods=sorted(route.methods or ()), name=route.name)

    return [keyed(route) for route in routes]


def _sim(request: Request) -> SimState:
    sim: SimState = request.app.state.sim
    return sim


def _accounts(request: Request) -> tuple[Accounts | None, Response | None]:
    name = request.path_params["vendor"]
    store = _sim(request).vendors.get(name)
    if isinstance(store, Accounts):
        return store, None
    split = ", ".join(sorted(n for n, s in _sim(request).vendors.items() if isinstance(s, Accounts)))
    detail = f"no simulated vendor by that name keeps accounts per key (those that do: {split})"
    if store is not None:
        detail = f"{name} keeps one set of domains, each owned by a key fingerprint: see /_sim/{name}/state"
    return None, JSONResponse({"error": "not_found", "detail": detail}, status_code=404)


def _fingerprint(request: Request) -> tuple[str | None, Problems]:
    problems = Problems()
    return fingerprint_field(problems, "key_fingerprint", request.path_params["fingerprint"]), problems


async def accounts_get(request: Request) -> Response:
    """GET /_sim/{vendor}/accounts: the fingerprints of the keys with an account of their own."""
    accounts, refusal = _accounts(request)
    if accounts is None:
        return refusal or Response(status_code=404)
    return JSONResponse({"items": accounts.fingerprints()})


async def account_state_get(request: Request) -> Response:
    """GET /_sim/{vendor}/accounts/{fingerprint}/state: that key's account, as the vendor's state shape."""
    accounts, refusal = _accounts(request)
    if accounts is None:
        return refusal or Response(status_code=404)
    key_fingerprint, problems = _fingerprint(request)
    if key_fingerprint is None:
        return problems.response()
    account = accounts.account(key_fingerprint)
    if account is None:
        return JSONResponse({"error": "not_found", "detail": "that key has no account of its own"}, status_code=404)
    return JSONResponse(account.snapshot())


async def account_state_put(request: Request) -> Response:
    """PUT /_sim/{vendor}/accounts/{fingerprint}/state: create or replace that key's account (400 on any bad field)."""
    accounts, refusal = _accounts(request)
    if accounts is None:
        return refusal or Response(status_code=404)
    key_fingerprint, problems = _fingerprint(request)
    body, found = await json_body(request)
    problems.items += found.items
    if key_fingerprint is None or problems:
        return problems.response()
    account, problems = accounts.put_account(key_fingerprint, body)
    return problems.response() if problems else JSONResponse(account.snapshot())


def routes() -> list[Route]:
    """The control routes for keyed accounts (beside control.py's /_sim/{vendor}/state)."""
    return [
        Route("/_sim/{vendor}/accounts", accounts_get, methods=["GET"]),
        Route("/_sim/{vendor}/accounts/{fingerprint}/state", account_state_get, methods=["GET"]),
        Route("/_sim/{vendor}/accounts/{fingerprint}/state", account_state_put, methods=["PUT"]),
    ]
