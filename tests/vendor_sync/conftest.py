"""Fixtures for the vendor HTTP kit, RDAP and simulator tests: a private redis-server and a live simulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mspctl.ports import free_port
from mspctl.threaded_server import ThreadedServer
from vendor_sim.app import create_app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rdap"


@pytest.fixture(scope="session")
def kit_redis_url(stack_env: dict[str, str]) -> str:
    """A Redis database of the private test stack's own server (never the machine's 6379)."""
    return stack_env["MSP_REDIS_URL"].rsplit("/", 1)[0] + "/5"


@pytest.fixture(scope="session")
def _sim_server() -> Iterator[str]:
    served = ThreadedServer(create_app(), free_port(), lifespan="auto").start()
    yield served.url
    served.stop()


@pytest.fixture
def sim_url(_sim_server: str) -> str:
    """Base URL of a live vendor_sim (uvicorn in a thread), reset before each test."""
    httpx.post(f"{_sim_server}/_sim/reset", timeout=5).raise_for_status()
    return _sim_server
