"""pytest plugin: a session-scoped `devstack` fixture running the infra parts in a temp dir.

Enable it with `pytest_plugins = ["mspctl.pytest_stack"]` in the top-level conftest.py. The stack
uses its own temporary devstack dir and free ports, so it runs beside a `make up` stack. Set
`MSP_DATABASE_URL`, `MSP_REDIS_URL` or `MSP_VAULT_ADDR` (+ `MSP_VAULT_BOOTSTRAP_TOKEN`) to use real
servers instead; set `MSPCTL_KEEP_DEVSTACK=1` to keep the dir (and its logs) after the session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from mspctl.parts import TEST_INFRA
from mspctl.stack import Stack
from mspctl.tokens import mint


class DevStack:
    """What a test gets: the dir, the env values, tokens, and per-part control for fault tests."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.dir: Path = stack.root

    @property
    def env(self) -> dict[str, str]:
        """The `<devstack>/env` values (MSP_DATABASE_URL, MSP_REDIS_URL, MSP_VAULT_ADDR, ...)."""
        return self.stack.env

    def token(
        self,
        *,
        role: str,
        sub: str,
        client_id: str | None = None,
        aud: list[str] | None = None,
        ttl: int = 3600,
    ) -> str:
        """A JWT from the dev issuer (same as `mspctl token`)."""
        return mint(self.dir, role=role, sub=sub, client_id=client_id, aud=aud, ttl=ttl)

    def service_env(self, service: str) -> dict[str, str]:
        """The env a service's processes get (its DB URL and client secret included)."""
        return self.stack.service_env(service)

    def mint_wrapped_secret_id(self, role: str) -> tuple[str, str]:
        """(role_id, wrapping token) for a broker AppRole, as the launcher makes them."""
        from mspctl.bao import mint_wrapped_secret_id

        return mint_wrapped_secret_id(self.dir, role)


def start_infra(
    root: Path | None = None,
    *,
    parts: tuple[str, ...] = TEST_INFRA,
    externals: Mapping[str, str] | None = None,
) -> DevStack:
    """Start the given parts in a (new temporary) devstack dir with free ports; down on failure."""
    if root is None:
        # Not pytest's tmp_path: pytest resets its base dir to 0700 at each session start, which would
        # lock the postgres system user out of a stack another session is still running.
        root = Path(tempfile.mkdtemp(prefix="mspctl-"))
    stack = Stack(root, ports="auto", externals=externals)
    try:
        stack.up(only=list(parts))
    except BaseException:
        stack.down()
        raise
    return DevStack(stack)


def stop_infra(devstack: DevStack, *, remove: bool = True) -> list[int]:
    """Stop the stack (no process left) and remove its dir unless MSPCTL_KEEP_DEVSTACK is set."""
    forced = devstack.stack.down()
    if remove and not os.environ.get("MSPCTL_KEEP_DEVSTACK"):
        shutil.rmtree(devstack.dir, ignore_errors=True)
    return forced


@pytest.fixture(scope="session")
def devstack() -> Iterator[DevStack]:
    """Session-wide infra (postgres, redis, openbao, issuer, mail), torn down at the end."""
    handle = start_infra()
    try:
        yield handle
    finally:
        stop_infra(handle)
