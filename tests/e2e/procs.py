"""Real processes for the end-to-end tests: intake and the broker under uvicorn, the broker's Celery
worker started as the launcher starts it, the broker's relay, and intake's relay in a stoppable thread.

Every process logs to `<devstack>/logs/e2e-*.log`, so the canary sweep reads those logs too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import httpx
import requests

PY = sys.executable
# Only what a process needs from the runner's own environment; the service settings come explicitly.
_PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH")


def process_env(stack_env: Mapping[str, str], **extra: str) -> dict[str, str]:
    """The stack's values (MSP_* and per-service) plus `extra`, and nothing else from this process."""
    env = {k: os.environ[k] for k in _PASSTHROUGH if k in os.environ}
    env.update(stack_env)
    env["MSP_ENV"] = "dev"
    env.update(extra)
    return env


class Proc:
    """A subprocess whose stdout and stderr go to one log file."""

    def __init__(self, name: str, cmd: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.cmd = cmd
        self.env = dict(env)
        self.log_path = log_dir / f"e2e-{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> Proc:
        """Start it (appending to its log)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(self.cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        return self

    @property
    def alive(self) -> bool:
        """True while it runs."""
        return self.popen is not None and self.popen.poll() is None

    def log_text(self) -> str:
        """Everything it logged so far."""
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (warm shutdown), then SIGKILL after `timeout`."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None


def wait_ready(url: str, proc: Proc, timeout: float = 60) -> None:
    """Wait for GET url/readyz to answer 200, or fail with the process's log tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive:
            raise RuntimeError(f"{proc.name} exited:\n{proc.log_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} not ready at {url}:\n{proc.log_text()[-3000:]}")


def wait_log(proc: Proc, needle: str, timeout: float = 60) -> None:
    """Wait until the process logged `needle`, or fail with the log tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in proc.log_text():
            return
        if not proc.alive:
            break
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} did not log {needle!r}:\n{proc.log_text()[-3000:]}")


def uvicorn(name: str, app: str, port: int, env: Mapping[str, str], log_dir: Path) -> Proc:
    """An API under uvicorn (no access log: query strings are not ours to print)."""
    return Proc(name, [PY, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
                       "--log-level", "warning"], env, log_dir)


class IntakeRelay:
    """intake's outbox relay (the real `mspkit.relay.Relay` with intake's routes) in a thread."""

    def __init__(self) -> None:
        from intake.celery_app import app as celery_app
        from intake.db import KIT, get_engine
        from intake.events import ROUTES
        from intake.settings import get_settings
        from mspkit.relay import Relay

        self.relay = Relay(engine=get_engine(), tables=KIT, celery_app=celery_app, routes=ROUTES,
                           redis_url=get_settings().redis_url)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start publishing."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.relay.run, args=(self._stop,), kwargs={"idle_sleep_s": 0.05},
                                        name="intake-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop publishing (events stay in intake's outbox, in flight)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def pending(self) -> int:
        """intake's unsent outbox rows."""
        from mspkit.relay import pending_count

        return pending_count(self.relay.engine, self.relay.tables)


def wrap_gone(vault_addr: str, token: str) -> bool:
    """True when Vault no longer knows the wrapping token (a lookup, which never consumes it)."""
    return requests.post(f"{vault_addr}/v1/sys/wrapping/lookup", json={"token": token}, timeout=5).status_code == 400


def wait_all_gone(vault_addr: str, tokens: list[str], started: float, timeout: float = 10.0) -> float | None:
    """Seconds from `started` (a monotonic time) until every token is gone at Vault, or None."""
    left = list(tokens)
    while True:
        left = [t for t in left if not wrap_gone(vault_addr, t)]
        now = time.monotonic()
        if not left:
            return now - started
        if now - started > timeout:
            return None
        time.sleep(0.02)


def json_line(path: Path, record: Mapping[str, Any]) -> None:
    """Append one JSON record to a results file (measured delays, race figures)."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(json.dumps(record, default=str) + "\n")
