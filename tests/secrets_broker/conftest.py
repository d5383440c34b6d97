"""Broker test fixtures (defined in broker_fixtures, shared with the broker's fault and security tests)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# --import-mode=importlib puts no test dir on sys.path; the test modules import broker_helpers.
sys.path.insert(0, str(Path(__file__).parent))

from broker_fixtures import (  # noqa: F401
    broker,
    broker_app,
    broker_live,
    engine,
    gateway,
    vault_addr,
    world,
)


@pytest.fixture(scope="session")
def auth(auth_for: Callable[[str | None], Callable[..., dict[str, str]]]) -> Callable[..., dict[str, str]]:
    """As the root `auth`, with service tokens meant for the broker (one token per target service)."""
    return auth_for("secrets_broker")
