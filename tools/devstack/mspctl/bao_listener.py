"""Supervisor event listener: re-bootstrap OpenBao after every (re)start of the in-memory dev server.

`bao server -dev` forgets everything when it stops, so each time the `openbao` program enters
RUNNING this listener bootstraps it again and restarts the broker programs that were launched
against the previous instance (their AppRole tokens died with it).
"""

from __future__ import annotations

import sys
import time
import xmlrpc.client

import httpx

from mspctl.bao import BaoError, bootstrap, wait_unsealed
from mspctl.envfile import read_env
from mspctl.layout import Layout, devstack_dir
from mspctl.supervisor_rpc import SupervisorError, proxy

BROKER_PROGRAMS = ("secrets_broker", "secrets_broker-worker")


def _log(message: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} openbao-bootstrap: {message}\n")
    sys.stderr.flush()


def rebootstrap(layout: Layout) -> None:
    """Bootstrap the running OpenBao, then restart broker programs older than it."""
    addr = read_env(layout.env_file)["MSP_VAULT_ADDR"]
    wait_unsealed(addr, timeout=60)
    bootstrap(addr, layout.root_token.read_text().strip(), layout)
    _log("bootstrapped")
    server = proxy(layout).supervisor
    bao_start = server.getProcessInfo("openbao")["start"]
    for name in BROKER_PROGRAMS:
        try:
            info = server.getProcessInfo(name)
        except xmlrpc.client.Fault:
            continue
        # A program in BACKOFF retries by itself and will get a fresh secret id then.
        if info["statename"] in ("RUNNING", "STARTING") and info["start"] < bao_start:
            _log(f"restarting {name} for fresh AppRole credentials")
            server.stopProcess(name)
            server.startProcess(name, False)
        elif info["statename"] == "FATAL":
            server.startProcess(name, False)


def main() -> None:
    """The event listener loop (supervisor protocol on stdin/stdout)."""
    layout = Layout(devstack_dir())
    while True:
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        header = dict(token.split(":", 1) for token in sys.stdin.readline().split())
        payload = sys.stdin.read(int(header.get("len", "0")))
        fields = dict(token.split(":", 1) for token in payload.split("\n", 1)[0].split())
        if header.get("eventname") == "PROCESS_STATE_RUNNING" and fields.get("processname") == "openbao":
            try:
                rebootstrap(layout)
            except (BaoError, httpx.HTTPError, OSError, KeyError, SupervisorError, xmlrpc.client.Error) as exc:
                _log(f"bootstrap failed: {type(exc).__name__}: {exc}")
        sys.stdout.write("RESULT 2\nOK")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
