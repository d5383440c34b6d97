"""A daemon thread that runs one function every few seconds, for the broker's background upkeep."""

from __future__ import annotations

import threading
from collections.abc import Callable

from mspkit.logging import get_logger

log = get_logger("secrets_broker.periodic")


class Periodic:
    """Calls `fn` every `interval_s` seconds in a daemon thread until `stop`; a failing round is logged.

    `run_first`: the first round runs at once rather than after one interval (work may have waited
    while no process ran it).
    """

    def __init__(self, name: str, fn: Callable[[], object], *, interval_s: float, run_first: bool = False) -> None:
        self.name = name
        self._fn = fn
        self._interval_s = interval_s
        self._run_first = run_first
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the thread and wait for it briefly."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None

    def _run(self) -> None:
        if self._run_first:
            self._round()
        while not self._stop.wait(self._interval_s):
            self._round()

    def _round(self) -> None:
        try:
            self._fn()
        except Exception as exc:  # noqa: BLE001 - the thread must survive any single round
            log.warning("periodic_round_failed", thread=self.name, error=type(exc).__name__)
