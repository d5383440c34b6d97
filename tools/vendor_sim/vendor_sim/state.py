"""In-process simulator state: faults, latency, the request log, rate limits, the registry and vendor state."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from vendor_sim.keys import RateLimits
from vendor_sim.rdap_state import RdapRegistry
from vendor_sim.validate import Problems

FAULT_MODES = ("delay", "drip", "429", "503", "error", "malformed", "html", "redirect", "huge")
MAX_LOG = 100_000


class FaultSpecError(ValueError):
    """A fault request body is invalid."""


@dataclass
class Fault:
    """One fault rule: applies to the next `remaining` requests under `path_prefix` (None = until cleared)."""

    id: int
    mode: str
    path_prefix: str = "/"
    remaining: int | None = None
    seconds: float = 1.0
    retry_after: str | None = None
    location: str | None = None
    status: int = 500
    size_mb: float = 50.0
    chunks: int = 60
    declare_length: bool = False

    def public(self) -> dict[str, Any]:
        """JSON view of the rule."""
        return asdict(self)


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise FaultSpecError(f"{key} must be a number in [{low}, {high}]")
    return float(value)


def parse_fault(body: Any, fault_id: int) -> Fault:
    """Validate a POST /_sim/faults body into a Fault."""
    if not isinstance(body, dict):
        raise FaultSpecError("body must be a JSON object")
    unknown = set(body) - {
        "mode",
        "path_prefix",
        "count",
        "seconds",
        "retry_after",
        "location",
        "status",
        "size_mb",
        "chunks",
        "declare_length",
    }
    if unknown:
        raise FaultSpecError(f"unknown fields: {sorted(unknown)}")
    mode = body.get("mode")
    if mode not in FAULT_MODES:
        raise FaultSpecError(f"mode must be one of {list(FAULT_MODES)}")
    prefix = body.get("path_prefix", "/")
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise FaultSpecError("path_prefix must be a string starting with /")
    count = body.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise FaultSpecError("count must be a positive integer or null")
    retry_after = body.get("retry_after")
    if retry_after is not None:
        if isinstance(retry_after, bool) or not isinstance(retry_after, int | float | str):
            raise FaultSpecError("retry_after must be seconds or an HTTP-date string")
        retry_after = str(int(retry_after)) if isinstance(retry_after, int | float) else retry_after
    location = body.get("location")
    if mode == "redirect" and not isinstance(location, str):
        raise FaultSpecError("redirect needs a location")
    declare = body.get("declare_length", False)
    if not isinstance(declare, bool):
        raise FaultSpecError("declare_length must be a boolean")
    return Fault(
        id=fault_id,
        mode=mode,
        path_prefix=prefix,
        remaining=count,
        seconds=_number(body, "seconds", 1.0, 0, 600),
        retry_after=retry_after,
        location=location if isinstance(location, str) else None,
        status=int(_number(body, "status", 500, 100, 599)),
        size_mb=_number(body, "size_mb", 50.0, 0, 1024),
        chunks=int(_number(body, "chunks", 60, 1, 100_000)),
        declare_length=declare,
    )


class StateStore(Protocol):
    """One simulated vendor's state as GET/PUT /_sim/{vendor}/state see it."""

    def snapshot(self) -> dict[str, Any]:
        """The state as JSON (keys as fingerprints only)."""
        ...

    def replace(self, body: Any) -> Problems:
        """Validate and replace the state; nothing changes when any problem is returned."""
        ...

    def reset(self) -> None:
        """Back to empty."""
        ...


class SimState:
    """Mutable simulator state, guarded by a lock (uvicorn runs one worker; TestClient uses a thread)."""

    def __init__(self, latency_ms: float | None = None) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.default_latency_ms = (
            float(os.environ.get("VENDOR_SIM_LATENCY_MS", "0") or 0) if latency_ms is None else latency_ms
        )
        self.latency_ms = self.default_latency_ms
        self.faults: list[Fault] = []
        self.requests: deque[dict[str, Any]] = deque(maxlen=MAX_LOG)
        self.limits = RateLimits()
        self.rdap = RdapRegistry()
        # Filled by create_app: one store per simulated vendor, named as in /_sim/{vendor}/state.
        self.vendors: dict[str, StateStore] = {}

    def add_fault(self, body: Any) -> Fault:
        """Validate and append a fault rule."""
        with self._lock:
            fault = parse_fault(body, next(self._ids))
            self.faults.append(fault)
            return fault

    def clear_faults(self, path_prefix: str | None = None) -> int:
        """Remove all faults (or those with exactly this prefix); returns how many were removed."""
        with self._lock:
            before = len(self.faults)
            self.faults = [f for f in self.faults if path_prefix is not None and f.path_prefix != path_prefix]
            return before - len(self.faults)

    def take_fault(self, path: str) -> Fault | None:
        """The first fault matching the path, consuming one of its uses."""
        with self._lock:
            for fault in self.faults:
                if path.startswith(fault.path_prefix) and (fault.remaining is None or fault.remaining > 0):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self.faults.remove(fault)
                    return fault
            return None

    def log(self, method: str, path: str, host: str) -> dict[str, Any]:
        """Record a request with its arrival time (epoch seconds); returns the entry to complete."""
        entry: dict[str, Any] = {"t": time.time(), "method": method, "path": path, "host": host}
        with self._lock:
            self.requests.append(entry)
        return entry

    def logged(self, path_prefix: str | None = None) -> list[dict[str, Any]]:
        """A copy of the request log, optionally filtered by path prefix."""
        with self._lock:
            return [dict(e) for e in self.requests if path_prefix is None or e["path"].startswith(path_prefix)]

    def clear_log(self) -> None:
        """Empty the request log."""
        with self._lock:
            self.requests.clear()

    def reset(self) -> None:
        """Back to start: no faults, empty log, default latency, no rate limits, recorded RDAP, empty vendors."""
        with self._lock:
            self.faults.clear()
            self.requests.clear()
            self.latency_ms = self.default_latency_ms
        self.limits.reset()
        self.rdap.reset()
        for store in self.vendors.values():
            store.reset()
