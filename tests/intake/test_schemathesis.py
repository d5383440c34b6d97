"""Schemathesis (4.x) in-process over intake's OpenAPI: all checks, >= 100 examples per operation, per role.

Each user role runs every public operation with its own token, and each service its internal ones.
Cases get fix-ups the schema cannot express, each keeping a case exactly as valid or invalid as
generated: a client role's body never carries a well-formed `client_id` (the contract refuses it
with 422) and an admin's always does (the contract requires it); well-formed ids point at seeded
objects half of the time, so the deeper paths (transitions, decisions, approvals) are exercised; and
half of the well-formed person subjects (assignees, staff subs) name the seeded technician.
Each operation runs inside its own rolled-back transaction (the `api` fixture).
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from intake_factories import assign, create_request, get_task, isp_body, make_client, move, purchase_body
from schemathesis.generation.meta import negated_parameters
from schemathesis.specs.openapi.checks import positive_data_acceptance

from intake.main import app

# The broker, served for real: the scope route checks the credentials it is given there.
sys.path.insert(0, str(Path(__file__).parents[1] / "secrets_broker"))
import broker_fixtures

broker_app = broker_fixtures.broker_app
broker_live = broker_fixtures.broker_live

EXAMPLES = int(os.environ.get("INTAKE_SCHEMATHESIS_EXAMPLES", "100"))

schema = schemathesis.openapi.from_asgi("/openapi.json", app)
public = schema.exclude(path_regex="^/internal/")
broker_ops = schema.include(path_regex=r"^/internal/(tasks(/\{task_id\}/authorization)?|staff/\{sub\})$", method="GET")
vendor_sync_ops = schema.include(
    path_regex=r"^/internal/(requests/\{request_id\}|tasks|tasks/\{task_id\}/(steps|claim|scope)|staff/\{sub\})$",
    method=["GET", "POST"],
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


def _credential(broker_url: str, auth: Any, client_id: str, account_id: str) -> str:
    body = {
        "client_id": client_id,
        "vendor_account_id": account_id,
        "kind": "password",
        "owner": "client",
        "category": "registrar",
        "name": "Registrar portal",
        "username": "st-admin@client.example",
        "secret": f"st-{uuid.uuid4().hex}",
    }
    headers = auth("admin", "st-admin", aud=["secrets_broker"])
    response = httpx.post(f"{broker_url}/v1/credentials", json=body, headers=headers, timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def seeded(api, admin_h, auth, tech_h, vs_h, monkeypatch, registry, devstack_dir, broker_live) -> dict[str, Any]:
    """A client with a ready task, a waiting task (with its pending approval) and a task in progress.

    The task in progress carries a pending human step, so step decisions reach past the 404.
    """
    client = make_client(api, admin_h, purchase_approval_threshold_cents=100_000)
    account = _vendor_account(registry, client["id"])
    credential = _credential(broker_live, auth, client["id"], account["id"])
    user = auth("client_user", ROLE_SUBS["client_user"], client["id"])
    ready = create_request(api, user, purchase_body())
    waiting = create_request(api, user, isp_body())
    working = create_request(api, user, purchase_body())["task_ids"][0]
    tech = auth("technician", TECH)
    assert assign(api, tech, working, TECH).status_code == 200
    assert move(api, tech, working, "in_progress").status_code == 200
    approval = get_task(api, admin_h, waiting["task_ids"][0])["approvals"][0]["id"]
    step = api.post(
        f"/internal/tasks/{working}/steps",
        json={"name": "Confirm with the client", "status": "pending", "human": True, "idempotency_key": "st-step"},
        headers=vs_h,
    )
    assert step.status_code == 201, step.text
    from mspctl.tokens import mint

    tokens = {
        role: mint(devstack_dir, role=role, sub=sub, client_id=client["id"] if role.startswith("client") else None)
        for role, sub in ROLE_SUBS.items()
    }
    tokens["svc:secrets_broker"] = mint(devstack_dir, role="service", sub="svc:secrets_broker", aud=["intake"])
    tokens["svc:vendor_sync"] = mint(devstack_dir, role="service", sub="svc:vendor_sync", aud=["intake"])
    return {
        "client_id": client["id"],
        "tokens": tokens,
        "step_tasks": {step.json()["id"]: working},
        "ids": {
            "client_id": [client["id"]],
            "request_id": [ready["id"], waiting["id"]],
            "task_id": [ready["task_ids"][0], waiting["task_ids"][0], working],
            "approval_id": [approval],
            "step_id": [step.json()["id"]],
            "vendor_account_id": [account["id"]],
            "vendor_id": [account["vendor_id"]],
            "credential_id": [credential],
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


_SUBJECT = re.compile(r"^[!-~]{1,255}$")


def _pick_sub(value: Any) -> str | None:
    """The seeded technician for half of the well-formed person subjects (deterministic in the value)."""
    if not isinstance(value, str) or not _SUBJECT.match(value) or value.startswith("svc:"):
        return None
    return TECH if sum(value.encode()) % 2 == 0 else None


def _fix_up(case: Any, role: str, seeded: dict[str, Any]) -> None:
    """Swap well-formed ids for seeded ones and settle `client_id`; a malformed value is left for the check.

    Every change keeps the case exactly as valid or invalid as it was generated, whatever its mode.
    """
    for name, value in list((case.path_parameters or {}).items()):
        if name in seeded["ids"] and (replacement := _pick(value, seeded["ids"][name])):
            case.path_parameters[name] = replacement
    # A seeded step is reached only through its own task (both ids stay well-formed).
    path = case.path_parameters or {}
    if path.get("step_id") in seeded["step_tasks"] and _well_formed(path.get("task_id")):
        path["task_id"] = seeded["step_tasks"][path["step_id"]]
    if "sub" in path and (replacement := _pick_sub(path["sub"])):
        path["sub"] = replacement
    body = case.body
    if not isinstance(body, dict):
        return
    if case.path.endswith("/assign") and (replacement := _pick_sub(body.get("assignee"))):
        body["assignee"] = replacement
    if case.path.startswith("/v1/staff") and isinstance(body.get("client_ids"), list):
        # Only a client that exists may be named (no schema can say which do): well-formed ids become one.
        body["client_ids"] = [seeded["client_id"] if _well_formed(v) else v for v in body["client_ids"]]
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
    recipient = body.get("recipient")
    if case.path == APPROVALS_PATH and isinstance(recipient, dict) and isinstance(recipient.get("vendor_id"), str):
        recipient["vendor_id"] = _pick(recipient["vendor_id"], seeded["ids"]["vendor_id"]) or recipient["vendor_id"]
    if case.path in SCOPE_PATHS and isinstance(body.get("add"), dict):
        for part, kind in (("vendor_account_ids", "vendor_account_id"), ("credential_ids", "credential_id")):
            values = body["add"].get(part)
            if isinstance(values, list):
                body["add"][part] = [(_pick(v, seeded["ids"][kind]) or v) if isinstance(v, str) else v for v in values]


SCOPE_PATH = "/v1/tasks/{task_id}/scope"
# vendor_sync's own scope route: adding the credentials it stored for the task.
SCOPE_PATHS = (SCOPE_PATH, "/internal/tasks/{task_id}/scope")
APPROVALS_PATH = "/v1/tasks/{task_id}/approvals"
# The 422s the contract gives a well-formed scope change: an id that is not the task's client's (no
# schema can know who owns an id), a value both added and removed, and (vendor_sync's route) a
# credential the broker says vendor_sync did not store for this task.
_SCOPE_REFUSALS = (
    "of the task's client",
    "is also being added",
    "was not stored by vendor_sync",
    "was stored for another task",
)
# The 422 of an approval naming a vendor the registry does not know (no schema can know which exist).
_VENDOR_REFUSAL = "recipient.vendor_id: is not a vendor of the registry"


def scope_positive_data_acceptance(ctx: Any, response: Any, case: Any) -> bool | None:
    """`positive_data_acceptance`, except for the refusals that only an id's owner can decide."""
    if response.status_code == 422:
        problems = response.json().get("errors") or []
        if problems and all(
            p["field"].split(".")[0] in ("add", "remove") and p["detail"].endswith(_SCOPE_REFUSALS) for p in problems
        ):
            return None
        if problems and all(p["detail"] == _VENDOR_REFUSAL for p in problems):
            return None
    return positive_data_acceptance(ctx, response, case)


# The staff directory decides what no schema can: who may be assigned (an active staff member who
# works for the task's client), and whether a sub or a PSA member id is already someone's.
_DIRECTORY_REFUSALS = (
    "assignee is not an active staff member; add them at /v1/staff first",
    "assignee does not work for this task's client (see their client_ids)",
)


def directory_positive_data_acceptance(ctx: Any, response: Any, case: Any) -> bool | None:
    """`positive_data_acceptance`, except for the staff directory's refusals of schema-valid bodies."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code == 422 and all(p.get("detail") in _DIRECTORY_REFUSALS for p in body.get("errors") or [{}]):
        return None
    if response.status_code == 409 and case.path.startswith("/v1/staff"):
        field = str(body.get("field", ""))
        if field == "sub" or field.startswith("psa_member_ids"):
            return None
    return positive_data_acceptance(ctx, response, case)


DIRECTORY_PATHS = ("/v1/tasks/{task_id}/assign", "/v1/staff", "/v1/staff/{sub}")


@pytest.mark.slow
@pytest.mark.parametrize("role", list(ROLE_SUBS))
@public.parametrize()
@SETTINGS
def test_public_api(case, role, seeded):
    _fix_up(case, role, seeded)
    _authorize(case, seeded["tokens"][role])
    if case.path in (SCOPE_PATH, APPROVALS_PATH):
        case.call_and_validate(
            excluded_checks=[positive_data_acceptance], additional_checks=[scope_positive_data_acceptance]
        )
    elif case.path in DIRECTORY_PATHS:
        case.call_and_validate(
            excluded_checks=[positive_data_acceptance], additional_checks=[directory_positive_data_acceptance]
        )
    else:
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
    if case.path in SCOPE_PATHS:
        case.call_and_validate(
            excluded_checks=[positive_data_acceptance], additional_checks=[scope_positive_data_acceptance]
        )
    else:
        case.call_and_validate()
    CALLS["svc:vendor_sync " + case.operation.label] += 1
