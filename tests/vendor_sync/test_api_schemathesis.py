"""Schemathesis (4.x) in-process over vendor_sync's OpenAPI: all checks, for the admin and a technician.

Well-formed ids in paths point at seeded objects half of the time, so reads and refreshes reach the
deep paths, not only the 404s. One fix-up the schema cannot express: IDNA validity is not a regular
language, so the `name` pattern of a new domain admits a superset; a positive case whose name IDNA
refuses gets a valid name instead (still a positive case). The refusal itself is tested in
test_api_domains.py. The broker is served for real: a vendor account's `api_key_credential_id` is
checked there, and no schema can know which credential ids are an account's own api keys.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.generation.meta import negated_parameters
from schemathesis.specs.openapi.checks import positive_data_acceptance

from vendor_sync.api import app
from vendor_sync.domains.names import InvalidDomainName, normalize_domain_name

sys.path.insert(0, str(Path(__file__).parents[1] / "secrets_broker"))
import broker_fixtures

broker_app = broker_fixtures.broker_app
broker_live = broker_fixtures.broker_live

EXAMPLES = int(os.environ.get("VENDOR_SYNC_SCHEMATHESIS_EXAMPLES", "100"))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def credential_positive_data_acceptance(ctx: Any, response: Any, case: Any) -> bool | None:
    """`positive_data_acceptance`, except for a 422 naming only `api_key_credential_id` (the broker decides it)."""
    if response.status_code == 422:
        problems = response.json().get("errors") or []
        if problems and all(p.get("field") == "api_key_credential_id" for p in problems):
            return None
    return positive_data_acceptance(ctx, response, case)


@pytest.fixture(scope="module")
def seeded(mint_token, intake_live, seed_staff, broker_live) -> dict[str, Any]:
    """A vendor, an account with a contact, a domain and its refresh run, all for one client (known to intake).

    The technician has a staff row for every client, so need-to-know lets them reach the deep paths too.
    """
    import httpx
    from fastapi.testclient import TestClient

    admin = {"Authorization": f"Bearer {mint_token('admin', 'st-admin', aud=['vendor_sync'])}"}
    intake_admin = {"Authorization": f"Bearer {mint_token('admin', 'st-admin', aud=['intake'])}"}
    suffix = uuid.uuid4().hex[:10]
    created = httpx.post(
        f"{intake_live}/v1/clients",
        json={
            "name": f"ST {suffix}",
            "primary_domain": f"st{suffix}.example.com",
            "approver_emails": [f"boss@st{suffix}.example.com"],
            "purchase_approval_threshold_cents": 0,
        },
        headers=intake_admin,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    client_id = created.json()["id"]
    with TestClient(app) as api:
        vendor = api.post("/v1/vendors", json={"name": f"ST {uuid.uuid4().hex}", "kind": "dns_host"}, headers=admin)
        account = api.post(
            f"/v1/clients/{client_id}/vendor-accounts",
            json={"vendor_id": vendor.json()["id"], "account_number": "ST-1", "contacts": [{"name": "C", "role": "r"}]},
            headers=admin,
        )
        domain = api.post(
            f"/v1/clients/{client_id}/domains", json={"name": f"st-{uuid.uuid4().hex[:8]}.example"}, headers=admin
        )
        run = api.post(f"/v1/domains/{domain.json()['id']}/refresh", headers=admin)
    seed_staff("st-technician")
    tokens = {role: mint_token(role, f"st-{role}", aud=["vendor_sync"]) for role in ("admin", "technician")}
    return {
        "tokens": tokens,
        "ids": {
            "client_id": [client_id],
            "vendor_id": [vendor.json()["id"]],
            "account_id": [account.json()["id"]],
            "domain_id": [domain.json()["id"]],
            "run_id": [run.json()["sync_run_id"]],
        },
    }


def _pick(value: Any, choices: list[str]) -> str | None:
    try:
        parsed = uuid.UUID(str(value))
    except ValueError:
        return None
    return None if parsed.int % 2 else choices[parsed.int % len(choices)]


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", "technician"])
@schema.parametrize()
@SETTINGS
def test_api_conforms_to_its_schema(case, role, seeded):
    for name, value in list((case.path_parameters or {}).items()):
        if name in seeded["ids"] and (replacement := _pick(value, seeded["ids"][name])):
            case.path_parameters[name] = replacement
    body = case.body
    positive = case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE
    if positive and case.path.endswith("/domains") and isinstance(body, dict) and isinstance(body.get("name"), str):
        try:
            normalize_domain_name(body["name"])
        except InvalidDomainName:
            body["name"] = f"st-{uuid.uuid5(uuid.NAMESPACE_DNS, body['name']).hex[:12]}.example"
    if not any(name.lower() == "authorization" for name, _ in negated_parameters(case.meta)):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {seeded['tokens'][role]}"}
    if case.method == "PATCH" and case.path == "/v1/vendor-accounts/{account_id}":
        case.call_and_validate(
            excluded_checks=[positive_data_acceptance], additional_checks=[credential_positive_data_acceptance]
        )
        return
    case.call_and_validate()
