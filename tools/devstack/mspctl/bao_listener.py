"""Supervisor event listener: after OpenBao (re)starts, start broker programs that gave up meanwhile.

OpenBao keeps its state in raft storage and unseals itself, so a restart changes nothing in it: the
broker's AppRole tokens and the launcher token survive, and running broker programs are left alone.
But a broker program that (re)started while OpenBao was down could not get a secret id and may have
gone FATAL after its retries; this listener starts those again once OpenBao is unsealed.
"""

from __future__ import annotations

import sys
import time
import xmlrpc.client

import httpx

from mspctl.bao import BaoError, wait_unsealed
from mspctl.envfile import read_env
from mspctl.layout import Layout, devstack_dir
from mspctl.supervisor_rpc import SupervisorError, proxy

BROKER_PROGRAMS = ("secrets_broker", "secrets_broker-worker")


def _log(message: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} openbao-bootstrap: {message}\n")
    sys.stderr.flush()


def restart_fatal_brokers(layout: Layout) -> None:
    """Wait until the running OpenBao is unsealed, then start the broker programs that are FATAL."""
    wait_unsealed(read_env(layout.env_file)["MSP_VAULT_ADDR"], timeout=120)
    server = proxy(layout).supervisor
    for name in BROKER_PROGRAMS:
        try:
            info = server.getProcessInfo(name)
        except xmlrpc.client.Fault:
            continue
        if info["statename"] == "FATAL":
            _log(f"starting {name} again (it gave up while OpenBao was away)")
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
                restart_fatal_brokers(layout)
            except (BaoError, httpx.HTTPError, OSError, KeyError, SupervisorError, xmlrpc.client.Error) as exc:
                _log(f"failed: {type(exc).__name__}: {exc}")
        sys.stdout.write("RESULT 2\nOK")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
