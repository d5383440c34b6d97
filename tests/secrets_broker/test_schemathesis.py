"""Schemathesis (4.x) in-process over the broker's OpenAPI: all checks, per role, against real intake and OpenBao.

Every public operation runs with each person's role; `POST /internal/service-releases` and
`POST /internal/disclosures` with `svc:vendor_sync`. Well-formed ids in paths and bodies point at
seeded objects half of the time (a client, an API-key and a password credential, a task in progress
assigned to the fuzzing technician with both in scope, and one release), so the deep paths run:
decisions, Vault reads, audit appends.
One fix-up per body keeps every case exactly as valid or invalid as it was generated. A new
credential's `client_id` and `vendor_account_id` always name the seeded client and its account: the
broker answers 422 for ones that do not exist (tested in test_credentials.py), which positive data
must not get.

A schema-valid token or reveal code that the broker does not know is refused with 410 by contract
(`wrap_token_invalid`, `reveal_code_invalid`), so 410 joins the statuses positive data may get.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config._checks import POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES
from schemathesis.generation.meta import negated_parameters

from secrets_broker.main import app

EXAMPLES = int(os.environ.get("BROKER_SCHEMATHESIS_EXAMPLES", "100"))

schema = schemathesis.openapi.from_asgi("/openapi.json", app)
schema.config.checks.positive_data_acceptance.expected_statuses = [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "410"]
public = schema.exclude(path_regex="^/internal/")
service_ops = schema.include(path_regex="^/internal/(service-releases|disclosures)$")

SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
TECH = "st-broker-tech"
ROLES = ("admin", "technician", "client_admin", "client_user")
ID_FIELDS = ("client_id", "credential_id", "task_id", "release_id", "vendor_account_id", "approval_id")
# Ids a new credential must name as existing objects (the broker checks them with their owners).
REFERENCES = {"POST /v1/credentials": ("client_id", "vendor_account_id")}


@pytest.fixture
def seeded(world: Any, auth: Any) -> dict[str, Any]:
    """A client with two credentials in scope of an in-progress task of the fuzzing technician, and a release."""
    client_id = world.new_client()
    account_id = world.new_vendor_account(client_id)
    password_id, _ = world.new_credential(client_id)
    api_key_id, _ = world.new_credential(client_id, kind="api_key", category="dns_host")
    task_id = world.new_task(client_id, assignee=TECH, credential_ids=[password_id, api_key_id])
    released = world.release(TECH, task_id, password_id)
    assert released.status_code == 201, released.text
    subs = {"admin": "st-admin", "technician": TECH, "client_admin": "st-client-admin", "client_user": "st-user"}
    headers = {role: auth(role, sub, client_id if role.startswith("client") else None) for role, sub in subs.items()}
    headers["svc:vendor_sync"] = auth("service", "svc:vendor_sync")
    return {
        "headers": headers,
        "ids": {
            "client_id": [str(client_id)],
            "credential_id": [str(password_id), str(api_key_id)],
            "task_id": [str(task_id)],
            "release_id": [released.json()["release_id"]],
            "vendor_account_id": [str(account_id)],
            "approval_id": [],
        },
    }


CALLS: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def examples_per_operation():
    """After the module: every operation ran at least EXAMPLES cases for each role that called it."""
    yield CALLS
    if CALLS:
        low = {label: n for label, n in CALLS.items() if n < EXAMPLES}
        print("\nbroker schemathesis cases: " + ", ".join(f"{k}={v}" for k, v in sorted(CALLS.items())))
        assert not low, f"operations under {EXAMPLES} cases: {low}"


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _pick(value: Any, choices: list[str]) -> str | None:
    """A seeded id for half of the well-formed generated ids (deterministic in the generated value)."""
    try:
        parsed = uuid.UUID(str(value))
    except ValueError:
        return None
    if parsed.int % 2 or not choices:
        return None
    return choices[parsed.int % len(choices)]


def _fix_up(case: Any, seeded: dict[str, Any], headers: dict[str, str]) -> None:
    """Seeded ids for half the well-formed ones, and the role's token unless the case mangles Authorization."""
    for name, value in list((case.path_parameters or {}).items()):
        if name in seeded["ids"] and (replacement := _pick(value, seeded["ids"][name])):
            case.path_parameters[name] = replacement
    if isinstance(case.body, dict):
        references = REFERENCES.get(case.operation.label, ())
        for name in ID_FIELDS:
            value = case.body.get(name)
            if not isinstance(value, str):
                continue
            if name in references and _is_uuid(value):
                case.body[name] = seeded["ids"][name][0]
            elif replacement := _pick(value, seeded["ids"][name]):
                case.body[name] = replacement
    if not any(name.lower() == "authorization" for name, _ in negated_parameters(case.meta)):
        case.headers = {**(case.headers or {}), **headers}


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
@public.parametrize()
@SETTINGS
def test_public_api(case, role, seeded):
    _fix_up(case, seeded, seeded["headers"][role])
    case.call_and_validate()
    CALLS[f"{role} {case.operation.label}"] += 1


@pytest.mark.slow
@service_ops.parametrize()
@SETTINGS
def test_vendor_sync_api(case, seeded):
    _fix_up(case, seeded, seeded["headers"]["svc:vendor_sync"])
    case.call_and_validate()
    CALLS["svc:vendor_sync " + case.operation.label] += 1
