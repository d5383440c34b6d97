"""Portal test fixtures: the live portal (real issuer, real PostgreSQL) and its runtime for direct checks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

# --import-mode=importlib puts no test dir on sys.path; the test modules import portal_helpers.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def portal_rt(portal_live: str) -> Any:
    """The runtime (settings, engine, session box, OIDC client) of the served portal app."""
    from portal.main import app

    return app.state.runtime


@pytest.fixture(scope="session")
def people(devstack_dir: Path) -> dict[str, Any]:
    """The demo people the test stack's issuer offers (clients' people recorded with fresh client ids)."""
    from portal_helpers import ensure_people

    return ensure_people(devstack_dir)
