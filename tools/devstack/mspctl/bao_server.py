"""Exec `bao server -dev` with the root token id taken from its 0600 file (never argv or config).

Run by supervisor as `python -m mspctl.bao_server --devstack D --port P`; it execs, so the PID is bao's.
"""

from __future__ import annotations

import argparse
import os

from mspctl.bao import server_command
from mspctl.layout import Layout, devstack_dir


def main() -> None:
    """Exec the OpenBao dev server."""
    parser = argparse.ArgumentParser(description="exec the devstack's OpenBao dev server")
    parser.add_argument("--devstack", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    layout = Layout(devstack_dir(args.devstack))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["BAO_DEV_ROOT_TOKEN_ID"] = layout.root_token.read_text().strip()
    # Belt and braces: even if a token helper ran, it would write below the devstack, not ~/.vault-token.
    env["HOME"] = str(layout.bao_dir)
    cmd = server_command(args.port, layout)
    os.execve(cmd[0], cmd, env)  # noqa: S606 - exec keeps the PID supervisor watches


if __name__ == "__main__":
    main()
