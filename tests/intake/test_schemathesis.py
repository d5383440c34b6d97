"""Schemathesis (4.x) in-process over intake's OpenAPI: all checks, >= 100 examples per operation, per role.

Each user role runs every public operation with its own token, and each service its internal ones.
Cases get two fix-ups the schema cannot express, each keeping a case exactly as valid or invalid as
generated: a client role's body never carries a well-formed `client_id` (the contract refuses it
with 422) and an admin's always does (the contract requires it); and well-formed ids point at seeded
objects half of the time, so the deeper paths (transitions, decisions, approvals) are exercised.
Each operation runs inside its own rolled-back transaction (the `api` fixture).
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from intake_factories import assign, create_request, get_task, isp_body, make_client, move, purchase_body
from schemathesis.generation.meta import negated_parameters

from intake.main import app

EXAMPLES = int(os.environ.get("INTAKE_SCHEMATHESIS_EXAMPLES", "100"))

schema = schemathesis.openapi.from_asgi("/openapi.json", app)
public = schema.exclude(path_regex="^/internal/")
broker_ops = schema.include(path_regex=r"^/internal/tasks(/\{task_id\}/authorization)?$", method="GET")
vendor_sync_ops = schema.include(
    path_regex=r"^/internal/(requests/\{request_id\}|tasks|tasks/\{task_id\}/steps)$", method=["GET", "POST"]
).exclude(path_regex=r"^/internal/tasks$", method="GET")

SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
TECH = "st-tech"
ROLE_SUBS = {
    "admin": "st-admin",
    "technician": TECH,
    "client_admin": "st-client-admin",
    "client_user": "st-client-user",
}


@pytest.fixture(scope="module")
def registry(vendor_sync_live, auth):
    """An admin client of the live vendor_sync registry."""
    with httpx.Client(base_url=vendor_sync_live, headers=auth("admin", "st-vs-admin"), timeout=10) as http:
        yield http


def _vendor_account(registry, client_id: str) -> dict[str, Any]:
    vendor = registry.post(
        "/v1/vendors",
        json={
            "name": f"ST vendor {uuid.uuid4().hex[:12]}",
            "kind": "registrar",
            "support_email": "help@registrar.example",
        },
    )
    assert vendor.status_code == 201, vendor.text
    account = registry.post(
        f"/v1/clients/{client_id}/vendor-accounts",
        json={"vendor_id": vendor.json()["id"], "account_number": "ST-1", "contacts": [{"name": "C", "role": "admin"}]},
    )
    assert account.status_code == 201, account.text
    return account.json()


@pytest.fixture
def seeded(api, admin_h, auth, tech_h, monkeypatch, registry, devstack_dir) -> dict[str, Any]:
    """A client with a ready task, a waiting task (with its pending approval) and a task in progress."""
    from pydantic import SecretStr

    from intake.settings import get_settings

    monkeypatch.setitem(get_settings().psa_webhook_secrets, "connectwise", SecretStr("st-webhook-secret-0123"))
    client = make_client(api, admin_h, purchase_approval_threshold_cents=100_000)
    account = _vendor_account(registry, client["id"])
    user = auth("client_user", ROLE_SUBS["client_user"], client["id"])
    ready = create_request(api, user, purchase_body())
    waiting = create_request(api, user, isp_body())
    working = create_request(api, user, purchase_body())["task_ids"][0]
    tech = auth("technician", TECH)
    assert assign(api, tech, working, TECH).status_code == 200
    assert move(api, tech, working, "in_progress").status_code == 200
    approval = get_task(api, admin_h, waiting["task_ids"][0])["approvals"][0]["id"]
    from mspctl.tokens import mint

    tokens = {
        role: mint(devstack_dir, role=role, sub=sub, client_id=client["id"] if role.startswith("client") else None)
        for role, sub in ROLE_SUBS.items()
    }
    tokens["svc:secrets_broker"] = mint(devstack_dir, role="service", sub="svc:secrets_broker")
    tokens["svc:vendor_sync"] = mint(devstack_dir, role="service", sub="svc:vendor_sync")
    return {
        "client_id": client["id"],
        "tokens": tokens,
        "ids": {
            "client_id": [client["id"]],
            "request_id": [ready["id"], waiting["id"]],
            "task_id": [ready["task_ids"][0], waiting["task_ids"][0], working],
            "approval_id": [approval],
            "vendor_account_id": [account["id"]],
            "contact_id": [c["id"] for c in account["contacts"]],
        },
    }


CALLS: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def examples_per_operation():
    """After the module: every operation ran at least EXAMPLES cases for each role that called it."""
    yield CALLS
    if CALLS:
        low = {label: n for label, n in CALLS.items() if n < EXAMPLES}
        summary = ", ".join(f"{label}={n}" for label, n in sorted(CALLS.items()))
        print(f"\nschemathesis cases per operation and role: {summary}")
        assert not low, f"operations under {EXAMPLES} cases: {low}"


def _authorize(case: Any, token: str) -> None:
    """Put the role's token in every case, except one that deliberately drops or mangles Authorization."""
    if any(name.lower() == "authorization" for name, _ in negated_parameters(case.meta)):
        return
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


def _pick(value: str, choices: list[str]) -> str | None:
    """A seeded id for half of the well-formed generated ids (deterministic in the generated value)."""
    try:
        parsed = uuid.UUID(str(value))
    except ValueError:
        return None
    if parsed.int % 2:
        return None
    return choices[parsed.int % len(choices)]


def _well_formed(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _fix_up(case: Any, role: str, seeded: dict[str, Any]) -> None:
    """Swap well-formed ids for seeded ones and settle `client_id`; a malformed value is left for the check.

    Every change keeps the case exactly as valid or invalid as it was generated, whatever its mode.
    """
    for name, value in list((case.path_parameters or {}).items()):
        if name in seeded["ids"] and (replacement := _pick(value, seeded["ids"][name])):
            case.path_parameters[name] = replacement
    body = case.body
    if not isinstance(body, dict):
        return
    if case.path == "/v1/requests" and case.method.upper() == "POST":
        if role.startswith("client") and (body.get("client_id") is None or _well_formed(body["client_id"])):
            body.pop("client_id", None)
        elif role == "admin":
            body["client_id"] = (
                _pick(body.get("client_id") or "0" * 32, seeded["ids"]["client_id"])
                or body.get("client_id")
                or seeded["client_id"]
            )
    if body.get("type") == "vendor_contact_update" and isinstance(body.get("vendor_account_id"), str):
        body["vendor_account_id"] = (
            _pick(body["vendor_account_id"], seeded["ids"]["vendor_account_id"]) or body["vendor_account_id"]
        )
    if case.path == "/internal/tasks" and "client_id" in body:
        body["client_id"] = _pick(body["client_id"], seeded["ids"]["client_id"]) or body["client_id"]


@pytest.mark.slow
@pytest.mark.parametrize("role", list(ROLE_SUBS))
@public.parametrize()
@SETTINGS
def test_public_api(case, role, seeded):
    _fix_up(case, role, seeded)
    _authorize(case, seeded["tokens"][role])
    case.call_and_validate()
    CALLS[f"{role} {case.operation.label}"] += 1


@pytest.mark.slow
@broker_ops.parametrize()
@SETTINGS
def test_internal_broker_api(case, seeded):
    _fix_up(case, "svc:secrets_broker", seeded)
    _authorize(case, seeded["tokens"]["svc:secrets_broker"])
    case.call_and_validate()
    CALLS["svc:secrets_broker " + case.operation.label] += 1


@pytest.mark.slow
@vendor_sync_ops.parametrize()
@SETTINGS
def test_internal_vendor_sync_api(case, seeded):
    _fix_up(case, "svc:vendor_sync", seeded)
    _authorize(case, seeded["tokens"]["svc:vendor_sync"])
    case.call_and_validate()
    CALLS["svc:vendor_sync " + case.operation.label] += 1
