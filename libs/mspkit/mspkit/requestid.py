"""Request ids: the caller's well-formed `X-Request-ID` or a new one, carried through the work a request causes.

The id lives in one context variable for the request (set by `mspkit.accesslog`) and is bound into
structlog's contextvars as `request_id`, so every log line of the request carries it. Events written
meanwhile carry it in their envelope (`ENVELOPE_KEY`, next to the contract's keys), jobs published
meanwhile in a Celery header (`CELERY_HEADER`); a worker binds it again while it handles either
(`mspkit.queue`), so its log lines, and the events and jobs it causes in turn, carry the same id.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar, Token
from typing import Any

import structlog

HEADER = b"x-request-id"
LOG_KEY = "request_id"
# Not `request_id`: intake's task events already carry `data.request_id`, the service request's id.
ENVELOPE_KEY = "http_request_id"
CELERY_HEADER = "http_request_id"

# Well-formed: 1-128 of [A-Za-z0-9_:-]. That covers UUIDs, hex ids, ULIDs, W3C trace ids and the ids
# proxies make (nginx, Envoy, Heroku, Cloudflare), and nothing that could split a header, break a JSON
# line or bloat logs and messages. No dot: every JWT and every Vault/OpenBao token (`hvs.`, `s.`) holds
# one, so a credential pasted into the header by mistake is replaced, never logged or copied into events.
_WELL_FORMED = re.compile(rb"[A-Za-z0-9_:-]{1,128}")


class RequestContext:
    """What the kit knows about the request being handled: its id and, once authenticated, the caller's sub."""

    __slots__ = ("request_id", "sub")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.sub: str | None = None


_current: ContextVar[RequestContext | None] = ContextVar("mspkit_request", default=None)


def accepted_id(raw: bytes | str | None) -> str | None:
    """The id as given if well-formed, else None (the caller's value is then replaced)."""
    if raw is None:
        return None
    value = raw.encode("latin-1", "replace") if isinstance(raw, str) else raw
    return value.decode("ascii") if _WELL_FORMED.fullmatch(value) else None


def new_request_id() -> str:
    """A fresh id (32 hex digits)."""
    return uuid.uuid4().hex


def current() -> RequestContext | None:
    """The request (or job) being handled in this context, if any."""
    return _current.get()


def current_request_id() -> str | None:
    """The id of the request (or of the request that caused the job) being handled, if any."""
    ctx = _current.get()
    return ctx.request_id if ctx is not None else None


def note_sub(sub: str) -> None:
    """Record the verified caller's subject for the access-log line (called by `mspkit.auth`)."""
    ctx = _current.get()
    if ctx is not None:
        ctx.sub = sub


class Binding:
    """An id bound to this context (kit context variable and structlog); `leave` undoes exactly that."""

    __slots__ = ("_log_tokens", "_token", "context")

    def __init__(self, request_id: str) -> None:
        self.context = RequestContext(request_id)
        self._token: Token[RequestContext | None] = _current.set(self.context)
        self._log_tokens: Any = structlog.contextvars.bind_contextvars(**{LOG_KEY: request_id})

    def leave(self) -> None:
        """Restore what was bound before (a request handled in the caller's own context leaks nothing)."""
        structlog.contextvars.reset_contextvars(**self._log_tokens)
        _current.reset(self._token)


def enter(request_id: str) -> Binding:
    """Bind `request_id` for the work about to run in this context; call `.leave()` when it ends."""
    return Binding(request_id)


def from_message(headers_value: Any, args: Any) -> str | None:
    """The id a Celery message carries: its header (jobs), else its envelope argument (events)."""
    rid = accepted_id(headers_value) if isinstance(headers_value, str | bytes) else None
    if rid is None and args and isinstance(args[0], dict):
        value = args[0].get(ENVELOPE_KEY)
        rid = accepted_id(value) if isinstance(value, str) else None
    return rid
