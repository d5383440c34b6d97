"""Broker fixtures, shared by tests/secrets_broker (through conftest) and the broker's fault and
security modules (which import them by name after putting tests/secrets_broker on sys.path).

The gateway logs in with a wrapped secret id minted by `mspctl.bao.mint_wrapped_secret_id`, as the
launcher would; its source mints a fresh one on every login, so re-login paths can be exercised.
Each test makes its own client (fresh UUIDs), so tests never see each other's data.
"""

from __future__ import annotations

import os
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


@pytest.fixture
def broker(broker_app: Any, intake_live: str) -> Iterator[Any]:
    """A TestClient on the broker (no lifespan: no background threads); overrides reset after."""
    from fastapi.testclient import TestClient

    with_client = TestClient(broker_app, raise_server_exceptions=False)
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
def world(broker: Any, intake_live: str, auth: Callable[..., dict[str, str]], devstack_dir: Path) -> Iterator[World]:
    """Helpers bound to this test's broker client and the live intake."""
    w = World(broker, intake_live, auth, devstack_dir)
    yield w
    w.intake.close()
