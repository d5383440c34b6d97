"""structlog JSON logging that cannot leak: key and value redaction, no frame locals, quiet httpx."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from functools import lru_cache
from typing import Any

import structlog
from structlog.tracebacks import ExceptionDictTransformer

REDACTED = "[REDACTED]"
# Keys whose values are secret whatever they hold.
SECRET_KEYS = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|authorization|cookie|credential|private[_-]?key|notes|wrap)",
    re.IGNORECASE,
)
_URL_QUERY = re.compile(r"(https?://[^\s?#\"']+)\?[^\s#\"']*")
_URL_USERINFO = re.compile(r"(\w+://)[^/\s:@]+:[^/\s@]+@")
_known_secrets: set[str] = set()


def register_secret(*values: str) -> None:
    """Redact these exact values wherever they appear in a log event (e.g. SecretStr settings)."""
    for value in values:
        if value and len(value) >= 4:
            _known_secrets.add(value)


def redact_text(text: str) -> str:
    """Strip query strings and URL userinfo, and mask registered secret values."""
    # Both URL patterns need "://": most values (ids, statuses, routes) skip two regex passes.
    if "://" in text:
        text = _URL_USERINFO.sub(r"\1[REDACTED]@", text)
        text = _URL_QUERY.sub(r"\1?[REDACTED]", text)
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


@lru_cache(maxsize=4096)
def _is_secret_key(key: str) -> bool:
    # Log lines reuse a small set of keys: one regex search per key name, not per line.
    return SECRET_KEYS.search(key) is not None


def _redact_value(key: str, value: Any) -> Any:
    if _is_secret_key(key):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v) for v in value]
    return value


def strip_exception_messages(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Drop exception messages from rendered tracebacks: a message may quote a secret verbatim.

    The type, file, line and function of every frame stay, which is what a reader needs to debug.
    """
    exc = event_dict.get("exception")
    if isinstance(exc, list):
        for item in exc:
            if isinstance(item, dict):
                item["exc_value"] = "[withheld]"
                item.pop("syntax_error", None)
                for frame in item.get("frames", []) or []:
                    if isinstance(frame, dict):
                        frame.pop("locals", None)
                        frame.pop("line", None)
    return event_dict


def redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: redact secret keys, registered values and URL queries everywhere."""
    for key in list(event_dict.keys()):
        if key in {"event", "exception"}:
            event_dict[key] = _redact_value("", event_dict[key])
        else:
            event_dict[key] = _redact_value(key, event_dict[key])
    return event_dict


class _StdlibRedactFilter(logging.Filter):
    """Redacts records from third-party stdlib loggers (uvicorn, celery) before they are written."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not kill logging
            message = str(record.msg)
        record.msg = redact_text(message)
        record.args = ()
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks of third-party code would print exception messages verbatim.
            record.exc_text = f"{type(record.exc_info[1]).__name__}: [exception message withheld]"
            record.exc_info = None
        return True


def configure_logging(service: str, level: str = "INFO", *, secrets: Iterable[str] = ()) -> None:
    """Configure structlog and stdlib logging as one JSON stream on stderr."""
    register_secret(*secrets)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            # show_locals=False: a local named `secret` must never reach a log line.
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
            strip_exception_messages,
            redact_processor,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping().get(level, 20)),
        # WriteLogger writes each line in one call under a lock, so threads never interleave lines.
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_StdlibRedactFilter())
    handler.setFormatter(logging.Formatter('{"logger": "%(name)s", "level": "%(levelname)s", "event": %(message)r}'))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # httpx logs every URL (query strings included) at INFO.
    for noisy in ("httpx", "httpcore", "hvac", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> Any:
    """A structlog logger bound to a component name."""
    return structlog.get_logger(name) if name else structlog.get_logger()
