"""`mspctl run-with-secret-id ROLE -- CMD`: start a broker process with a wrapped AppRole secret id."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NoReturn

from mspctl.bao import ROLES, mint_wrapped_secret_id
from mspctl.layout import Layout, devstack_dir

# Env names that would hand a process a ready Vault token; the broker must log in by AppRole only.
FORBIDDEN_VARS = ("VAULT_TOKEN", "BAO_TOKEN", "MSP_VAULT_BOOTSTRAP_TOKEN")


class LaunchRefusedError(RuntimeError):
    """The launcher will not start this command."""


def check_environment(env: Mapping[str, str], role: str, root_token: str | None) -> None:
    """Refuse an unknown role, a Vault token variable, or any value holding the root token."""
    if role not in ROLES:
        raise LaunchRefusedError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    for name in FORBIDDEN_VARS:
        if name in env:
            raise LaunchRefusedError(f"refusing to start: {name} is set in the environment; unset it")
    if root_token:
        for name, value in env.items():
            if root_token in value:
                raise LaunchRefusedError(f"refusing to start: environment variable {name} holds the root token")


def _root_token(root: Layout) -> str | None:
    try:
        return root.root_token.read_text().strip() or None
    except FileNotFoundError:
        return None


def run_with_secret_id(devstack: str | None, role: str, cmd: list[str]) -> NoReturn:
    """Check the environment, mint a wrapped secret id, then exec `cmd` (same PID, for supervisor)."""
    if not cmd:
        raise LaunchRefusedError("no command given after `--`")
    layout = Layout(devstack_dir(devstack))
    env = dict(os.environ)
    check_environment(env, role, _root_token(layout))
    role_id, wrapped = mint_wrapped_secret_id(layout.root, role)
    env.update(
        {
            "SECRETS_BROKER_VAULT_ROLE": role,
            "SECRETS_BROKER_VAULT_ROLE_ID": role_id,
            "SECRETS_BROKER_VAULT_WRAPPED_SECRET_ID": wrapped,
        }
    )
    os.execvpe(cmd[0], cmd, env)  # noqa: S606 - exec keeps the PID supervisor watches
