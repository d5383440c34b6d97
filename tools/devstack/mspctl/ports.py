"""Free-port picking and the record of ports chosen for a devstack."""

from __future__ import annotations

import socket
from collections.abc import Iterable

HOST = "127.0.0.1"

# The APIs' well-known ports for `make up`; everything else always gets a free port.
FIXED_API_PORTS = {"intake": 8001, "secrets_broker": 8002, "vendor_sync": 8003}


class PortInUseError(RuntimeError):
    """A fixed port that a part needs is taken."""


def free_port(avoid: Iterable[int] = ()) -> int:
    """A TCP port on 127.0.0.1 that is free right now (and not in `avoid`)."""
    avoided = set(avoid)
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if port not in avoided:
            return port
    raise RuntimeError("could not find a free port")


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port (or the wildcard address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # SO_REUSEADDR: a port in TIME_WAIT from our own previous run is usable, like uvicorn sees it.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def assign_ports(
    recorded: dict[str, int],
    names: Iterable[str],
    *,
    mode: str,
    needed_fixed: Iterable[str],
) -> dict[str, int]:
    """Choose a port per name: reuse recorded free ones, fixed API ports unless mode is 'auto'.

    Raises PortInUseError when a fixed port of a part in `needed_fixed` is taken.
    """
    if mode not in ("auto", "fixed"):
        raise ValueError(f"ports mode must be 'auto' or 'fixed', not {mode!r}")
    needed = set(needed_fixed)
    chosen: dict[str, int] = {}
    for name in names:
        fixed = FIXED_API_PORTS.get(name) if mode == "fixed" else None
        if fixed is not None:
            if name in needed and not port_is_free(fixed):
                raise PortInUseError(
                    f"port {fixed} for {name} is already in use; stop whatever holds it "
                    f"or use `mspctl up --ports auto` (MSP_DEVSTACK_PORTS=auto)"
                )
            chosen[name] = fixed
            continue
        old = recorded.get(name)
        taken = set(chosen.values()) | set(FIXED_API_PORTS.values())
        if old and old not in taken and port_is_free(old):
            chosen[name] = old
        else:
            chosen[name] = free_port(avoid=taken)
    return chosen
