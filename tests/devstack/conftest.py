"""Fixtures for the dev stack's own tests: one infra stack per session, in a temp dir on free ports."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mspctl.pytest_stack import DevStack, start_infra, stop_infra

VAULT_TOKEN_FILE = Path.home() / ".vault-token"


def _vault_token_state() -> tuple[bool, float | None]:
    try:
        return True, VAULT_TOKEN_FILE.stat().st_mtime
    except FileNotFoundError:
        return False, None


@pytest.fixture(scope="session")
def vault_token_before() -> tuple[bool, float | None]:
    """~/.vault-token's existence and mtime before any OpenBao of ours started."""
    return _vault_token_state()


@pytest.fixture(scope="session")
def infra(vault_token_before: tuple[bool, float | None]) -> Iterator[DevStack]:
    """postgres, redis, openbao, issuer and mail, always local (externals ignored) so every check applies."""
    handle = start_infra(externals={})
    try:
        yield handle
    finally:
        stop_infra(handle)


def _run_mspctl(
    devstack_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MSP_", "VAULT_", "BAO_"))}
    base["MSP_DEVSTACK_DIR"] = str(devstack_dir)
    if env:
        base.update(env)
    return subprocess.run(
        [sys.executable, "-m", "mspctl", *args], capture_output=True, text=True, env=base, timeout=timeout
    )


@pytest.fixture(scope="session")
def mspctl() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the mspctl CLI against a devstack dir, with a clean MSP_/VAULT_ environment."""
    return _run_mspctl
