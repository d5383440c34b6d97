"""Broker fixtures, shared by tests/secrets_broker (through conftest) and the broker's fault and
security modules (which import them by name after putting tests/secrets_broker on sys.path).

The gateway logs in with a wrapped secret id minted by `mspctl.bao.mint_wrapped_secret_id`, as the
launcher would; its source mints a fresh one on every login, so re-login paths can be exercised.
Each test makes its own client (fresh UUIDs), so tests never see each other's data.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from broker_helpers import MintingSource, World

# A lost token must not SIGTERM the test process.
os.environ["SECRETS_BROKER_VAULT_RESTART_ON_TOKEN_LOSS"] = "false"


@pytest.fixture(scope="session")
def vault_addr(stack_env: dict[str, str]) -> str:
    """The private OpenBao."""
    return stack_env["MSP_VAULT_ADDR"]


@pytest.fixture(scope="session")
def broker_app(devstack_dir: Path) -> Any:
    """The broker app with its process gateway logged in to the private OpenBao."""
    from secrets_broker import deps
    from secrets_broker.settings import get_settings

    get_settings.cache_clear()
    deps.get_gateway.cache_clear()
    gateway = deps.get_gateway()
    gateway.use_source(MintingSource(devstack_dir))
    gateway.login()
    from secrets_broker.main import app

    return app


@pytest.fixture(scope="session")
def broker_live(broker_app: Any, secrets_broker_live: str) -> str:
    """The broker app, logged in to OpenBao, served over HTTP at MSP_SECRETS_BROKER_URL (for intake's calls to it)."""
    return secrets_broker_live


@pytest.fixture
def broker(broker_app: Any, intake_live: str) -> Iterator[Any]:
    """A TestClient on the broker (no lifespan: no background threads); overrides reset after.

    Each test calls from its own address: the reveal rate limit counts per address in the shared
    Redis, so one test's reveals (or the fuzzer's) never spend another test's allowance.
    """
    from fastapi.testclient import TestClient

    address = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}"
    with_client = TestClient(broker_app, raise_server_exceptions=False, client=(address, 50000))
    yield with_client
    broker_app.dependency_overrides.clear()


@pytest.fixture
def gateway(broker_app: Any) -> Any:
    """The process gateway (logged in)."""
    from secrets_broker.vault.gateway import get_gateway

    return get_gateway()


@pytest.fixture
def engine() -> Any:
    """The broker's own engine (its non-superuser role)."""
    from secrets_broker.db import get_engine

    return get_engine()


@pytest.fixture
def world(
    broker: Any,
    broker_live: str,
    intake_live: str,
    vendor_sync_live: str,
    auth: Callable[..., dict[str, str]],
    devstack_dir: Path,
) -> Iterator[World]:
    """Helpers bound to this test's broker client, the live intake and the live vendor_sync registry.

    The broker is served over HTTP as well: intake checks the credentials an admin adds to a task's
    scope there.
    """
    w = World(broker, intake_live, auth, devstack_dir, vendor_sync_url=vendor_sync_live)
    yield w
    w.intake.close()
    if w.registry is not None:
        w.registry.close()
