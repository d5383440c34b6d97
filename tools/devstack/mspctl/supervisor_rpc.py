"""Talk to the devstack's supervisord over XML-RPC; start it daemonized."""

from __future__ import annotations

import configparser
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

import psutil
from supervisor.xmlrpc import SupervisorTransport

from mspctl.layout import Layout


class SupervisorError(RuntimeError):
    """supervisord could not be started or reached."""


def _endpoint(layout: Layout) -> tuple[str, str | None, str | None]:
    parser = configparser.RawConfigParser()
    parser.read(layout.supervisor_conf)
    if not parser.has_section("supervisorctl"):
        raise SupervisorError(f"no supervisor config at {layout.supervisor_conf}")
    section = parser["supervisorctl"]
    return section["serverurl"], section.get("username"), section.get("password")


def proxy(layout: Layout) -> Any:
    """An XML-RPC proxy to supervisord (use `.supervisor.<method>`)."""
    serverurl, username, password = _endpoint(layout)
    transport = SupervisorTransport(username, password, serverurl)
    # The URL is ignored for unix sockets; the transport knows where to go.
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def daemon_pid(layout: Layout) -> int | None:
    """supervisord's PID when its pidfile names a live supervisord, else None."""
    try:
        pid = int(layout.supervisor_pid.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        proc = psutil.Process(pid)
        if "supervisord" not in " ".join(proc.cmdline()):
            return None
    except psutil.Error:
        return None
    return pid


def is_running(layout: Layout) -> bool:
    """True when supervisord is alive and answers RPC."""
    if daemon_pid(layout) is None:
        return False
    try:
        state = proxy(layout).supervisor.getState()
    except (OSError, xmlrpc.client.Error, SupervisorError):
        return False
    return bool(state.get("statename") == "RUNNING")


def _binary() -> str:
    local = Path(sys.executable).parent / "supervisord"
    return str(local) if local.exists() else "supervisord"


def start_daemon(layout: Layout, env: dict[str, str], timeout: float = 20.0) -> None:
    """Start supervisord daemonized with the devstack's config and wait until it answers."""
    result = subprocess.run(
        [_binary(), "-c", str(layout.supervisor_conf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise SupervisorError(f"supervisord failed to start: {(result.stderr or result.stdout).strip()}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_running(layout):
            layout.log("supervisord").chmod(0o600)
            return
        time.sleep(0.1)
    raise SupervisorError(f"supervisord did not answer (see {layout.log('supervisord')})")


def reload(layout: Layout) -> None:
    """Apply a changed config: re-add changed groups, add new ones, drop removed ones."""
    server = proxy(layout).supervisor
    added, changed, removed = server.reloadConfig()[0]
    for name in changed + removed:
        server.stopProcessGroup(name)
        server.removeProcessGroup(name)
    for name in changed + added:
        server.addProcessGroup(name)
