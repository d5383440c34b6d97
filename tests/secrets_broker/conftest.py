"""Broker test fixtures (defined in broker_fixtures, shared with the broker's fault and security tests)."""

from __future__ import annotations

import sys
from pathlib import Path

# --import-mode=importlib puts no test dir on sys.path; the test modules import broker_helpers.
sys.path.insert(0, str(Path(__file__).parent))

from broker_fixtures import (  # noqa: F401
    broker,
    broker_app,
    engine,
    gateway,
    vault_addr,
    world,
)
