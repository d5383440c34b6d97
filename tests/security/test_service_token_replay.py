"""One service token per target: a token one service obtained for another cannot be replayed elsewhere.

Tokens come from the dev issuer's real client-credentials grant (each service's own client secret),
in whatever shape the stack's token profile gives them (`dev` or `entra`). Each replay is sent to a
route whose allowlist names the caller, so only the audience can refuse it; the same caller's token
for that route's own service is the control that gets past authentication.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parents[1] / "secrets_broker"))

import broker_fixtures

from mspctl.layout import Layout
from mspctl.tokens import shape, sign
from mspkit.auth import SHARED_SERVICE_TOKEN
from mspkit.service_tokens import ServiceTokenSource

broker_app = broker_fixtures.broker_app
vault_addr = broker_fixtures.vault_addr

SERVICES = ("intake", "secrets_broker", "vendor_sync")
NOT_FOR_US = {"error": "unauthenticated", "detail": "token is not meant for this service"}
SHARED = {"error": "unauthenticated", "detail": SHARED_SERVICE_TOKEN}


class Route(NamedTuple):
    """A service-callable route of one service, the caller its allowlist names, and its answer to that caller."""

    method: str
    path: str
    caller: str
    accepted: int
    body: dict[str, str] | None = None


# Each route's allowlist names `caller`; an unknown id gives the status the allowed caller gets.
CREDENTIAL, ACCOUNT = uuid.uuid4(), uuid.uuid4()
ROUTES = {
    "intake": [
        Route("GET", "/internal/tasks?limit=1", "secrets_broker", 200),
        Route("GET", f"/internal/requests/{uuid.uuid4()}", "vendor_sync", 404),
    ],
    "secrets_broker": [
        Route(
            "POST",
            "/internal/service-releases",
            "vendor_sync",
            404,
            {"credential_id": str(CREDENTIAL), "vendor_account_id": str(ACCOUNT), "job_id": "replay-test"},
        ),
        Route("GET", f"/internal/credentials/{uuid.uuid4()}", "intake", 404),
    ],
    "vendor_sync": [
        Route("GET", f"/v1/vendor-accounts/{uuid.uuid4()}", "intake", 404),
        Route("GET", f"/v1/vendor-accounts/{uuid.uuid4()}", "secrets_broker", 404),
    ],
}
# A person's token may name several services (the contract's default for `mspctl token`).
PERSON_READS = {
    "intake": "/v1/clients?limit=1",
    "secrets_broker": "/v1/audit?limit=1",
    "vendor_sync": "/v1/vendors?limit=1",
}


@pytest.fixture(scope="module")
def apps(broker_app: Any) -> Iterator[dict[str, TestClient]]:
    """The three real APIs in-process (no lifespan: no background threads)."""
    from intake.main import app as intake_app
    from vendor_sync.api import app as vendor_sync_app

    clients = {
        "intake": TestClient(intake_app, raise_server_exceptions=False),
        "secrets_broker": TestClient(broker_app, raise_server_exceptions=False),
        "vendor_sync": TestClient(vendor_sync_app, raise_server_exceptions=False),
    }
    yield clients
    for client in clients.values():
        client.close()


@pytest.fixture(scope="module")
def grant(stack_env: dict[str, str]) -> Callable[[str, str], str]:
    """(caller, target) -> the token the issuer's client-credentials grant gives that service for that target."""
    sources = {
        svc: ServiceTokenSource(
            token_url=stack_env["MSP_TOKEN_URL"],
            client_id=f"svc:{svc}",
            client_secret=stack_env[f"{svc.upper()}_SERVICE_CLIENT_SECRET"],
        )
        for svc in SERVICES
    }
    return lambda caller, target: sources[caller].token(target)


def _call(apps: dict[str, TestClient], service: str, route: Route, token: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    return apps[service].request(route.method, route.path, headers=headers, json=route.body)


def _broker_traces(admin_engine: Any) -> tuple[int, int]:
    """Releases and audit entries the broker holds for the test's credential (none may appear)."""
    query = "SELECT count(*) FROM secrets_broker.{} WHERE credential_id = :c"
    with admin_engine.connect() as conn:
        releases, audit = (
            conn.execute(text(query.format(table)), {"c": CREDENTIAL}).scalar_one()
            for table in ("releases", "audit_entries")
        )
    return releases, audit


REPLAYS = [(minted_for, sent_to) for minted_for in SERVICES for sent_to in SERVICES if minted_for != sent_to]


@pytest.mark.parametrize(("minted_for", "sent_to"), REPLAYS, ids=[f"{a}-token-at-{b}" for a, b in REPLAYS])
def test_a_replayed_service_token_from_one_service_is_401_at_every_other_service(
    apps, grant, admin_engine, minted_for, sent_to
):
    for route in ROUTES[sent_to]:
        control = _call(apps, sent_to, route, grant(route.caller, sent_to))
        assert control.status_code == route.accepted, control.text  # the allowlisted caller gets past auth
        replayed = _call(apps, sent_to, route, grant(route.caller, minted_for))
        assert (replayed.status_code, replayed.json()) == (401, NOT_FOR_US)
    assert _broker_traces(admin_engine) == (0, 0)


def _multi_aud_service_token(devstack_dir: Path, stack_env: dict[str, str], caller: str, aud: list[str]) -> str:
    """A service token naming several services, as a careless IdP would sign it (mspctl refuses to)."""
    now = int(time.time())
    claims = {
        "iss": stack_env["MSP_JWT_ISSUER"],
        "sub": f"svc:{caller}",
        "role": "service",
        "aud": aud,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
    }
    return sign(Layout(devstack_dir), shape(claims, stack_env.get("MSP_DEV_TOKEN_PROFILE") or "dev"))


@pytest.mark.parametrize("sent_to", SERVICES)
def test_a_service_token_naming_several_services_is_401_everywhere(
    apps, devstack_dir, stack_env, admin_engine, sent_to
):
    others = [svc for svc in SERVICES if svc != sent_to]
    for route in ROUTES[sent_to]:
        for aud in ([sent_to, others[0]], [others[1], sent_to], list(SERVICES)):
            token = _multi_aud_service_token(devstack_dir, stack_env, route.caller, aud)
            response = _call(apps, sent_to, route, token)
            assert (response.status_code, response.json()) == (401, SHARED), aud
    assert _broker_traces(admin_engine) == (0, 0)


def test_a_person_token_naming_every_service_works_at_each(apps, mint_token):
    token = mint_token("admin", "replay-admin")  # default aud: all three services
    for service, path in PERSON_READS.items():
        response = apps[service].get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, (service, response.text)
        assert "items" in response.json()
