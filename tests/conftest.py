"""Test session: a private dev stack (real PostgreSQL, Redis, OpenBao, issuer, mail) on free ports.

The stack starts in `pytest_configure`, before collection, because the services read their settings
(database URL, JWKS URL, ...) when their modules are imported. It lives in a temporary devstack dir,
so it never collides with a `make up` stack. `MSP_DATABASE_URL`, `MSP_REDIS_URL` and `MSP_VAULT_ADDR`
point the suite at outside servers instead, as for `mspctl up`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from mspctl.ports import free_port

INFRA_PARTS = ["postgres", "redis", "openbao", "issuer", "mail"]
_state: dict[str, Any] = {}


def _start_stack() -> None:
    from mspctl.stack import Stack

    # The token profile asked for (`MSP_DEV_TOKEN_PROFILE=entra` runs the suite on Entra-shaped tokens),
    # kept apart from what the stack then reports, so a test can tell that the stack really honoured it.
    _state["requested_profile"] = os.environ.get("MSP_DEV_TOKEN_PROFILE") or "dev"
    keep = os.environ.get("MSP_TEST_DEVSTACK_DIR")
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="msp-test-stack-"))
    stack = Stack(root, ports="auto")
    stack.up(only=INFRA_PARTS)
    _state.update(stack=stack, root=root, owned=not keep)
    env = dict(stack.env)
    for service in ("intake", "vendor_sync", "secrets_broker", "portal"):
        env.update(stack.service_env(service))
    # The three APIs run in-process in tests, on ports chosen now so every setting is known up front.
    # The portal's port is the stack's own (MSP_PORTAL_URL, a free port in "auto" mode): the issuer
    # registers `<MSP_PORTAL_URL>/auth/callback` as the portal's redirect URI.
    for name in ("INTAKE", "SECRETS_BROKER", "VENDOR_SYNC"):
        env[f"MSP_{name}_URL"] = f"http://127.0.0.1:{free_port()}"
    env["MSP_ENV"] = "dev"
    # The stack's intake talks to the simulator's ConnectWise, which the in-process tests do not run:
    # their intake has no PSA unless a test configures one (tests/intake/test_psa_*.py).
    env["INTAKE_PSA_PROVIDER"] = "none"
    os.environ.update(env)
    os.environ["MSP_DEVSTACK_DIR"] = str(root)
    _state["env"] = env


def _migrate() -> None:
    import intake.migrate
    import portal.migrate
    import secrets_broker.migrate
    import vendor_sync.migrate

    for module in (intake.migrate, vendor_sync.migrate, secrets_broker.migrate, portal.migrate):
        getattr(module, "main", lambda: None)()  # a service without migrations yet has no main


def pytest_configure(config: pytest.Config) -> None:
    """Start the private stack and migrate every schema before any test module is imported."""
    if hasattr(config, "workerinput") or os.environ.get("MSP_TEST_NO_STACK"):
        return
    try:
        _start_stack()
        _migrate()
    except BaseException:
        pytest_unconfigure(config)
        raise


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the private stack and remove its directory."""
    for server in _state.get("servers", []):
        server.should_exit = True
    stack = _state.get("stack")
    if stack is not None and not os.environ.get("MSP_TEST_KEEP_STACK"):
        stack.down()
        if _state.get("owned"):
            shutil.rmtree(_state["root"], ignore_errors=True)


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    """The environment of the private stack (MSP_* URLs, per-service database URLs and secrets)."""
    return dict(_state["env"])


@pytest.fixture(scope="session")
def devstack_dir() -> Path:
    """The private stack's devstack dir."""
    return Path(_state["root"])


@pytest.fixture(scope="session")
def stack() -> Any:
    """The private stack's controller (`mspctl.stack.Stack`)."""
    return _state["stack"]


@pytest.fixture(scope="session")
def token_profile() -> str:
    """The dev issuer's token profile this run asked for (`dev` or `entra`)."""
    return str(_state["requested_profile"])


@pytest.fixture(scope="session")
def mint_token(devstack_dir: Path) -> Callable[..., str]:
    """Factory: a JWT signed by the private stack's dev issuer, in the stack's token profile's shape."""
    from mspctl.tokens import mint

    def _mint(role: str, sub: str, client_id: Any = None, aud: list[str] | None = None, ttl: int = 3600) -> str:
        return mint(devstack_dir, role=role, sub=sub, client_id=str(client_id) if client_id else None, aud=aud, ttl=ttl)

    return _mint


SEED_STAFF = text(
    "INSERT INTO intake.staff (sub, id, display_name, email, role, active, client_ids, created_at, updated_at)"
    " VALUES (:sub, :id, :sub, :email, 'technician', true, NULL, now(), now()) ON CONFLICT (sub) DO NOTHING"
)


@pytest.fixture(scope="session")
def seed_staff(admin_engine: Any) -> Callable[[str], None]:
    """Give a technician a staff row (active, every client) unless they already have one, committed."""
    import uuid

    def _seed(sub: str) -> None:
        with admin_engine.begin() as connection:
            connection.execute(SEED_STAFF, {"sub": sub, "id": uuid.uuid4(), "email": "staff@msp.example"})

    return _seed


@pytest.fixture(scope="session")
def auth_for(
    mint_token: Callable[..., str], seed_staff: Callable[[str], None]
) -> Callable[[str | None], Callable[..., dict[str, str]]]:
    """Factory of `auth` factories whose service tokens are, unless told otherwise, for one target service.

    A service token names exactly one `aud` (one token per target): a service's test dir overrides
    `auth` with `auth_for("<that service>")`, so its call sites need not name the audience. A
    technician's header comes with a staff row for them (the contract: tests that mint technician
    tokens seed one first); `staff=False` leaves them without, and a test that wants a technician
    limited to some clients gives a sub of its own a row through `POST /v1/staff` first.
    """

    def _for(service_aud: str | None) -> Callable[..., dict[str, str]]:
        def _auth(
            role: str, sub: str = "user", client_id: Any = None, *, aud: list[str] | None = None, staff: bool = True
        ) -> dict[str, str]:
            if aud is None and role == "service" and service_aud:
                aud = [service_aud]
            if role == "technician" and staff:
                seed_staff(sub)
            return {"Authorization": f"Bearer {mint_token(role, sub, client_id, aud=aud)}"}

        return _auth

    return _for


@pytest.fixture(scope="session")
def auth(auth_for: Callable[[str | None], Callable[..., dict[str, str]]]) -> Callable[..., dict[str, str]]:
    """Factory: an Authorization header for a role/sub/client (a service token must name its one `aud`)."""
    return auth_for(None)


@pytest.fixture(scope="session")
def admin_engine(stack_env: dict[str, str]) -> Iterator[Any]:
    """A superuser engine for test setup and SQL-level tampering."""
    from sqlalchemy import create_engine

    engine = create_engine(stack_env["MSP_DATABASE_URL"])
    yield engine
    engine.dispose()


def serve_in_thread(app: Any, url: str, *, lifespan: str = "on") -> Any:
    """Run an ASGI app with uvicorn in a daemon thread at `url` (http://127.0.0.1:PORT); wait until up."""
    from mspctl.threaded_server import ThreadedServer

    served = ThreadedServer(app, int(url.rsplit(":", 1)[1]), lifespan=lifespan).start()
    _state.setdefault("servers", []).append(served.server)
    return served.server


@pytest.fixture(scope="session")
def intake_live(stack_env: dict[str, str]) -> str:
    """The real intake app served over HTTP at MSP_INTAKE_URL (for services that call it)."""
    from intake.main import app

    serve_in_thread(app, stack_env["MSP_INTAKE_URL"])
    return stack_env["MSP_INTAKE_URL"]


@pytest.fixture(scope="session")
def vendor_sync_live(stack_env: dict[str, str], intake_live: str) -> str:
    """The real vendor_sync API served over HTTP at MSP_VENDOR_SYNC_URL (with the intake it asks about clients)."""
    from vendor_sync.api import app

    serve_in_thread(app, stack_env["MSP_VENDOR_SYNC_URL"])
    return stack_env["MSP_VENDOR_SYNC_URL"]


@pytest.fixture(scope="session")
def secrets_broker_live(stack_env: dict[str, str]) -> str:
    """The real secrets_broker API served over HTTP at MSP_SECRETS_BROKER_URL (the only server on that port).

    Without its lifespan: in-process tests run no maintenance threads. Tests that reach Vault
    through it use `broker_live` (tests/secrets_broker/broker_fixtures.py), which logs it in first.
    """
    from secrets_broker.main import app

    serve_in_thread(app, stack_env["MSP_SECRETS_BROKER_URL"], lifespan="off")
    return stack_env["MSP_SECRETS_BROKER_URL"]


@pytest.fixture(scope="session")
def portal_live(stack_env: dict[str, str]) -> str:
    """The real portal app served over HTTP at MSP_PORTAL_URL (the URL the stack's issuer redirects back to)."""
    from portal.main import app

    serve_in_thread(app, stack_env["MSP_PORTAL_URL"])
    return stack_env["MSP_PORTAL_URL"]
