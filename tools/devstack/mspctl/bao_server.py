"""Exec `bao server -config=<devstack>/bao.hcl` with a clean environment.

Run by supervisor as `python -m mspctl.bao_server --devstack D`; it execs, so the PID is bao's.
"""

from __future__ import annotations

import argparse
import os

from mspctl.bao import server_command
from mspctl.layout import Layout, devstack_dir


def main() -> None:
    """Exec the devstack's OpenBao server."""
    parser = argparse.ArgumentParser(description="exec the devstack's OpenBao server")
    parser.add_argument("--devstack", required=True)
    args = parser.parse_args()
    layout = Layout(devstack_dir(args.devstack))
    # BAO_*/VAULT_* variables override the config file (BAO_API_ADDR, BAO_SEAL_TYPE, ...): none get through.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    # Belt and braces: even if a token helper ran, it would write below the devstack, not ~/.vault-token.
    env["HOME"] = str(layout.bao_dir)
    cmd = server_command(layout)
    os.execve(cmd[0], cmd, env)  # noqa: S606 - exec keeps the PID supervisor watches


if __name__ == "__main__":
    main()
