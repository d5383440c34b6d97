"""Unit tests for the pure release decision: every rule both ways, the order, and view parsing."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from secrets_broker.release.policy import (
    CALLER_NOT_ASSIGNEE,
    CLIENT_MISMATCH,
    CLIENT_NOT_ACTIVE,
    NOT_API_KEY,
    OUT_OF_SCOPE,
    QUOTA_EXCEEDED,
    REASON_TOO_SHORT,
    RECHECK_RULES_IN_ORDER,
    RULES_IN_ORDER,
    SERVICE_RULES_IN_ORDER,
    TASK_NOT_IN_PROGRESS,
    THIRD_PARTY_NOT_APPROVED,
    VENDOR_ACCOUNT_MISMATCH,
    Caller,
    CredentialMeta,
    Decision,
    decide,
    decide_service,
    recheck,
)
from secrets_broker.task_auth import Approval, MalformedAuthorization, Recipient, Scope, TaskAuth, parse_task_auth

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TECH = "tech-alice"
GOOD_REASON = "rotate ISP portal password for ticket 4711"

TASK_ID = UUID("11111111-1111-4111-8111-111111111111")
CLIENT_ID = UUID("22222222-2222-4222-8222-222222222222")
OTHER_CLIENT_ID = UUID("33333333-3333-4333-8333-333333333333")
VENDOR_ACCOUNT_ID = UUID("44444444-4444-4444-8444-444444444444")
CREDENTIAL_ID = UUID("55555555-5555-4555-8555-555555555555")
APPROVAL_ID = UUID("66666666-6666-4666-8666-666666666666")


# --- factories ---------------------------------------------------------------------------------


def make_credential(**overrides: Any) -> CredentialMeta:
    fields: dict[str, Any] = {
        "id": CREDENTIAL_ID,
        "client_id": CLIENT_ID,
        "vendor_account_id": VENDOR_ACCOUNT_ID,
        "kind": "password",
        "owner": "client",
        "category": "isp",
        "status": "active",
    }
    fields.update(overrides)
    return CredentialMeta(**fields)


def make_approval(**overrides: Any) -> Approval:
    fields: dict[str, Any] = {
        "id": APPROVAL_ID,
        "task_id": TASK_ID,
        "client_id": CLIENT_ID,
        "status": "approved",
        "recipient": Recipient(
            name="Acme ISP", contact_email="noc@acme-isp.example", party_category="provider_for_client"
        ),
        "information_categories": frozenset({"credentials", "contact_info"}),
        "credential_ids": frozenset({CREDENTIAL_ID}),
        "expires_at": NOW + timedelta(days=1),
    }
    fields.update(overrides)
    return Approval(**fields)


def make_task(**overrides: Any) -> TaskAuth:
    fields: dict[str, Any] = {
        "task_id": TASK_ID,
        "status": "in_progress",
        "assignee": TECH,
        "assigned_by": "admin-bob",
        "client_id": CLIENT_ID,
        "client_status": "active",
        "scope": Scope(
            credential_categories=frozenset({"isp"}),
            vendor_account_ids=frozenset({VENDOR_ACCOUNT_ID}),
            credential_ids=frozenset(),
        ),
        "approvals": (make_approval(),),
        "updated_at": NOW - timedelta(minutes=5),
    }
    fields.update(overrides)
    return TaskAuth(**fields)


def make_caller(**overrides: Any) -> Caller:
    fields: dict[str, Any] = {"sub": TECH, "role": "technician", "client_id": None}
    fields.update(overrides)
    return Caller(**fields)


class Case:
    """A mutable bundle of decide's inputs, starting from a release that every rule allows."""

    def __init__(self) -> None:
        self.task = make_task()
        self.credential = make_credential()
        self.caller = make_caller()
        self.approval: UUID | Approval | None = APPROVAL_ID
        self.releases_last_hour = 0
        self.now = NOW
        self.reason = GOOD_REASON

    def run(self, **kwargs: Any) -> Decision:
        return decide(
            self.task,
            self.credential,
            self.caller,
            self.approval,
            self.releases_last_hour,
            self.now,
            reason=self.reason,
            **kwargs,
        )


def _replace_task(case: Case, **changes: Any) -> None:
    case.task = case.task.model_copy(update=changes)


def _replace_approval(case: Case, **changes: Any) -> None:
    approvals = tuple(a.model_copy(update=changes) for a in case.task.approvals)
    _replace_task(case, approvals=approvals)


# One breaker per rule; each breaks only its own rule, so any combination fails exactly those rules.
BREAKERS: dict[str, Callable[[Case], None]] = {
    CALLER_NOT_ASSIGNEE: lambda c: setattr(c, "caller", make_caller(sub="tech-mallory")),
    TASK_NOT_IN_PROGRESS: lambda c: _replace_task(c, status="on_hold"),
    CLIENT_MISMATCH: lambda c: setattr(c, "credential", c.credential.model_copy(update={"client_id": OTHER_CLIENT_ID})),
    CLIENT_NOT_ACTIVE: lambda c: _replace_task(c, client_status="inactive"),
    OUT_OF_SCOPE: lambda c: _replace_task(c, scope=Scope()),
    REASON_TOO_SHORT: lambda c: setattr(c, "reason", "too short"),
    THIRD_PARTY_NOT_APPROVED: lambda c: _replace_approval(c, status="pending"),
    QUOTA_EXCEEDED: lambda c: setattr(c, "releases_last_hour", 10),
}


def test_rule_ids_are_the_contract_ids_in_order() -> None:
    assert RULES_IN_ORDER == (
        "caller_not_assignee",
        "task_not_in_progress",
        "client_mismatch",
        "client_not_active",
        "out_of_scope",
        "reason_too_short",
        "third_party_not_approved",
        "quota_exceeded",
    )
    assert set(BREAKERS) == set(RULES_IN_ORDER)


def test_all_good_is_allowed_with_and_without_approval() -> None:
    case = Case()
    assert case.run() == Decision(allowed=True, rule=None)
    case.approval = None
    assert case.run() == Decision.allow()


@pytest.mark.parametrize("rule", RULES_IN_ORDER)
def test_each_rule_alone_denies_with_its_id(rule: str) -> None:
    case = Case()
    BREAKERS[rule](case)
    assert case.run() == Decision(allowed=False, rule=rule)


@pytest.mark.parametrize(("first", "second"), list(itertools.combinations(RULES_IN_ORDER, 2)))
def test_earlier_rule_wins_over_later(first: str, second: str) -> None:
    case = Case()
    # Break the later rule first so the order of breaking cannot matter.
    BREAKERS[second](case)
    BREAKERS[first](case)
    assert case.run().rule == first


def test_every_combination_names_the_first_failing_rule() -> None:
    for size in range(1, len(RULES_IN_ORDER) + 1):
        for combo in itertools.combinations(RULES_IN_ORDER, size):
            case = Case()
            for rule in reversed(combo):
                BREAKERS[rule](case)
            assert case.run().rule == combo[0], combo


# --- caller_not_assignee ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("assignee", "caller"),
    [
        (None, make_caller()),
        ("tech-bob", make_caller()),
        (TECH, make_caller(role="admin")),
        (TECH, make_caller(role="client_admin", client_id=CLIENT_ID)),
        (TECH, make_caller(role="service", sub=TECH)),
        (TECH, make_caller(sub=TECH.upper())),
    ],
)
def test_caller_must_be_the_technician_assigned(assignee: str | None, caller: Caller) -> None:
    case = Case()
    _replace_task(case, assignee=assignee)
    case.caller = caller
    assert case.run().rule == CALLER_NOT_ASSIGNEE


# --- task_not_in_progress -----------------------------------------------------------------------


@pytest.mark.parametrize("status", ["new", "awaiting_approval", "ready", "on_hold", "done", "rejected", "cancelled"])
def test_only_in_progress_tasks_release(status: str) -> None:
    case = Case()
    _replace_task(case, status=status)
    assert case.run().rule == TASK_NOT_IN_PROGRESS


# --- client rules -------------------------------------------------------------------------------


def test_credential_of_another_client_is_a_mismatch_even_when_named_in_scope() -> None:
    case = Case()
    case.credential = make_credential(client_id=OTHER_CLIENT_ID)
    _replace_task(case, scope=Scope(credential_ids=frozenset({CREDENTIAL_ID})))
    assert case.run().rule == CLIENT_MISMATCH


@pytest.mark.parametrize("status", ["inactive", "closed"])
def test_inactive_or_closed_client_is_refused(status: str) -> None:
    case = Case()
    _replace_task(case, client_status=status)
    assert case.run().rule == CLIENT_NOT_ACTIVE


# --- out_of_scope -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [
        # a category alone never suffices
        (Scope(credential_categories=frozenset({"isp"})), False),
        # a vendor account without the credential's category does not suffice
        (Scope(vendor_account_ids=frozenset({VENDOR_ACCOUNT_ID})), False),
        (
            Scope(credential_categories=frozenset({"registrar"}), vendor_account_ids=frozenset({VENDOR_ACCOUNT_ID})),
            False,
        ),
        # the category with another vendor account does not suffice
        (Scope(credential_categories=frozenset({"isp"}), vendor_account_ids=frozenset({uuid4()})), False),
        # another credential id does not suffice
        (Scope(credential_ids=frozenset({uuid4()})), False),
        (Scope(), False),
        # the credential id suffices on its own
        (Scope(credential_ids=frozenset({CREDENTIAL_ID})), True),
        # vendor account and category together suffice
        (Scope(credential_categories=frozenset({"isp"}), vendor_account_ids=frozenset({VENDOR_ACCOUNT_ID})), True),
    ],
)
def test_scope_rules(scope: Scope, allowed: bool) -> None:
    case = Case()
    _replace_task(case, scope=scope)
    assert case.run() == (Decision.allow() if allowed else Decision.deny(OUT_OF_SCOPE))


def test_credential_without_vendor_account_needs_its_id_in_scope() -> None:
    case = Case()
    case.credential = make_credential(vendor_account_id=None)
    assert case.run().rule == OUT_OF_SCOPE
    _replace_task(case, scope=Scope(credential_ids=frozenset({CREDENTIAL_ID})))
    assert case.run().allowed


# --- reason_too_short ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "allowed"),
    [
        ("x" * 9, False),
        ("x" * 10, True),
        ("", False),
        (" " * 40, False),
        ("\t\n  \u3000 \n", False),
        ("   " + "x" * 9 + "   ", False),
        ("   " + "x" * 10 + "   ", True),
        ("ticket #42", True),
        ("ü" * 10, True),
    ],
)
def test_reason_length_boundary(reason: str, allowed: bool) -> None:
    case = Case()
    case.reason = reason
    assert case.run() == (Decision.allow() if allowed else Decision.deny(REASON_TOO_SHORT))


# --- third_party_not_approved -------------------------------------------------------------------


# Each change alone makes an otherwise permitting approval refuse the credential.
APPROVAL_BREAKS: list[dict[str, Any]] = [
    {"status": "pending"},
    {"status": "rejected"},
    {"status": "expired"},
    {"expires_at": NOW},  # expiry is exclusive
    {"expires_at": NOW - timedelta(seconds=1)},
    {"task_id": uuid4()},
    {"client_id": OTHER_CLIENT_ID},
    {"information_categories": frozenset({"contact_info", "billing"})},
    {"information_categories": frozenset()},
    {"credential_ids": frozenset({uuid4()})},
    {"credential_ids": frozenset()},
]


def _approval_ids(changes: dict[str, Any]) -> str:
    return "-".join(f"{k}={v}" for k, v in changes.items())


@pytest.mark.parametrize("changes", APPROVAL_BREAKS, ids=_approval_ids)
def test_approval_that_does_not_permit_is_refused(changes: dict[str, Any]) -> None:
    case = Case()
    _replace_approval(case, **changes)
    assert case.run().rule == THIRD_PARTY_NOT_APPROVED


def test_approval_just_before_expiry_permits() -> None:
    case = Case()
    _replace_approval(case, expires_at=NOW + timedelta(microseconds=1))
    assert case.run().allowed


def test_approval_id_not_in_task_view_is_refused() -> None:
    case = Case()
    case.approval = uuid4()
    assert case.run().rule == THIRD_PARTY_NOT_APPROVED
    _replace_task(case, approvals=())
    case.approval = APPROVAL_ID
    assert case.run().rule == THIRD_PARTY_NOT_APPROVED


def test_caller_supplied_approval_copy_is_ignored_for_the_live_one() -> None:
    case = Case()
    _replace_approval(case, status="rejected")
    # A stale copy that still says approved must not win over the live view.
    case.approval = make_approval(status="approved")
    assert case.run().rule == THIRD_PARTY_NOT_APPROVED
    # And the reverse: a live approval is used even when the supplied copy looks bad.
    case = Case()
    case.approval = make_approval(status="pending")
    assert case.run().allowed


def test_without_approval_the_approvals_do_not_matter() -> None:
    case = Case()
    _replace_approval(case, status="rejected")
    case.approval = None
    assert case.run().allowed


def test_approval_is_found_among_several() -> None:
    other = make_approval(id=uuid4(), status="rejected")
    case = Case()
    _replace_task(case, approvals=(other, make_approval()))
    assert case.run().allowed
    case.approval = other.id
    assert case.run().rule == THIRD_PARTY_NOT_APPROVED


# --- quota_exceeded -----------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "allowed"), [(0, True), (9, True), (10, False), (11, False), (1000, False)])
def test_quota_boundary_with_default_of_ten(count: int, allowed: bool) -> None:
    case = Case()
    case.releases_last_hour = count
    assert case.run() == (Decision.allow() if allowed else Decision.deny(QUOTA_EXCEEDED))


def test_quota_setting_is_honoured() -> None:
    case = Case()
    case.releases_last_hour = 2
    assert case.run(quota_per_hour=3).allowed
    assert case.run(quota_per_hour=2).rule == QUOTA_EXCEEDED
    case.releases_last_hour = 0
    assert case.run(quota_per_hour=0).rule == QUOTA_EXCEEDED


# --- misc ---------------------------------------------------------------------------------------


def test_naive_now_is_a_programming_error() -> None:
    case = Case()
    case.now = NOW.replace(tzinfo=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        case.run()


def test_decision_invariant() -> None:
    with pytest.raises(ValueError):
        Decision(allowed=True, rule=QUOTA_EXCEEDED)
    with pytest.raises(ValueError):
        Decision(allowed=False, rule=None)


def test_inputs_are_frozen() -> None:
    task = make_task()
    with pytest.raises(ValueError):
        task.status = "done"  # type: ignore[misc]


# --- recheck (unwrap and reveal) ---------------------------------------------------------------


def run_recheck(case: Case) -> Decision:
    approval_id = case.approval.id if isinstance(case.approval, Approval) else case.approval
    return recheck(case.task, case.credential, case.caller.sub, approval_id, case.now)


RECHECK_RULES = [rule for rule in RULES_IN_ORDER if rule not in {REASON_TOO_SHORT, QUOTA_EXCEEDED}]


def test_recheck_rules_are_the_release_rules_without_reason_and_quota_in_the_same_order() -> None:
    assert RECHECK_RULES_IN_ORDER == (
        "caller_not_assignee",
        "task_not_in_progress",
        "client_mismatch",
        "client_not_active",
        "out_of_scope",
        "third_party_not_approved",
    )


def test_recheck_allows_a_release_that_still_stands_with_and_without_approval() -> None:
    case = Case()
    assert run_recheck(case) == Decision.allow()
    case.approval = None
    assert run_recheck(case) == Decision.allow()


@pytest.mark.parametrize("rule", RECHECK_RULES)
def test_recheck_each_rule_alone_denies_with_its_id(rule: str) -> None:
    case = Case()
    BREAKERS[rule](case)
    assert run_recheck(case) == Decision.deny(rule)


@pytest.mark.parametrize("rule", [REASON_TOO_SHORT, QUOTA_EXCEEDED])
def test_recheck_ignores_the_reason_and_the_quota(rule: str) -> None:
    # Both belong to the request and were judged when the release was granted.
    case = Case()
    BREAKERS[rule](case)
    assert case.run().rule == rule
    assert run_recheck(case) == Decision.allow()


def test_recheck_names_the_first_failing_rule_of_every_combination_and_agrees_with_decide() -> None:
    for size in range(1, len(RECHECK_RULES) + 1):
        for combo in itertools.combinations(RECHECK_RULES, size):
            case = Case()
            for rule in reversed(combo):
                BREAKERS[rule](case)
            assert run_recheck(case) == Decision.deny(combo[0]), combo
            # With a good reason and no releases counted, a technician's release gets the same answer.
            assert case.run() == run_recheck(case), combo


@pytest.mark.parametrize("assignee", [None, "tech-bob", TECH.upper()])
def test_recheck_needs_the_release_technician_to_still_be_the_assignee(assignee: str | None) -> None:
    case = Case()
    _replace_task(case, assignee=assignee)
    assert run_recheck(case).rule == CALLER_NOT_ASSIGNEE


@pytest.mark.parametrize("status", ["new", "awaiting_approval", "ready", "on_hold", "done", "rejected", "cancelled"])
def test_recheck_needs_the_task_still_in_progress(status: str) -> None:
    case = Case()
    _replace_task(case, status=status)
    assert run_recheck(case).rule == TASK_NOT_IN_PROGRESS


@pytest.mark.parametrize("status", ["inactive", "closed"])
def test_recheck_needs_the_client_still_active(status: str) -> None:
    case = Case()
    _replace_task(case, client_status=status)
    assert run_recheck(case).rule == CLIENT_NOT_ACTIVE


def test_recheck_refuses_a_credential_of_another_client() -> None:
    case = Case()
    case.credential = make_credential(client_id=OTHER_CLIENT_ID)
    assert run_recheck(case).rule == CLIENT_MISMATCH


def test_recheck_refuses_a_credential_dropped_from_scope_and_a_category_alone() -> None:
    case = Case()
    _replace_task(case, scope=Scope(credential_categories=frozenset({"isp"})))
    assert run_recheck(case).rule == OUT_OF_SCOPE
    _replace_task(case, scope=Scope(credential_ids=frozenset({CREDENTIAL_ID})))
    assert run_recheck(case).allowed


@pytest.mark.parametrize("changes", APPROVAL_BREAKS, ids=_approval_ids)
def test_recheck_refuses_an_approval_that_no_longer_permits(changes: dict[str, Any]) -> None:
    case = Case()
    _replace_approval(case, **changes)
    assert run_recheck(case).rule == THIRD_PARTY_NOT_APPROVED


def test_recheck_refuses_an_approval_gone_from_the_view_but_ignores_approvals_of_a_technician_release() -> None:
    case = Case()
    _replace_task(case, approvals=())
    assert run_recheck(case).rule == THIRD_PARTY_NOT_APPROVED
    case.approval = None
    assert run_recheck(case).allowed


def test_recheck_approval_expiry_is_exclusive() -> None:
    case = Case()
    _replace_approval(case, expires_at=NOW + timedelta(microseconds=1))
    assert run_recheck(case).allowed
    _replace_approval(case, expires_at=NOW)
    assert run_recheck(case).rule == THIRD_PARTY_NOT_APPROVED


def test_recheck_refuses_a_naive_now() -> None:
    case = Case()
    case.now = NOW.replace(tzinfo=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        run_recheck(case)


# --- decide_service -----------------------------------------------------------------------------


def test_service_rule_ids() -> None:
    assert SERVICE_RULES_IN_ORDER == ("not_api_key", "vendor_account_mismatch", "client_not_active")


def test_service_release_allowed() -> None:
    credential = make_credential(kind="api_key", owner="msp")
    assert decide_service(credential, VENDOR_ACCOUNT_ID, "active") == Decision.allow()


@pytest.mark.parametrize(
    ("credential", "vendor_account_id", "client_status", "rule"),
    [
        (make_credential(kind="password"), VENDOR_ACCOUNT_ID, "active", NOT_API_KEY),
        (make_credential(kind="api_key"), uuid4(), "active", VENDOR_ACCOUNT_MISMATCH),
        (make_credential(kind="api_key", vendor_account_id=None), VENDOR_ACCOUNT_ID, "active", VENDOR_ACCOUNT_MISMATCH),
        (make_credential(kind="api_key"), VENDOR_ACCOUNT_ID, "inactive", CLIENT_NOT_ACTIVE),
        (make_credential(kind="api_key"), VENDOR_ACCOUNT_ID, "closed", CLIENT_NOT_ACTIVE),
        # order: the earlier rule wins
        (make_credential(kind="password"), uuid4(), "closed", NOT_API_KEY),
        (make_credential(kind="password"), VENDOR_ACCOUNT_ID, "closed", NOT_API_KEY),
        (make_credential(kind="api_key"), uuid4(), "closed", VENDOR_ACCOUNT_MISMATCH),
    ],
)
def test_service_release_rules(
    credential: CredentialMeta, vendor_account_id: UUID, client_status: str, rule: str
) -> None:
    assert decide_service(credential, vendor_account_id, client_status) == Decision.deny(rule)


# --- parsing intake's view ----------------------------------------------------------------------


def view_dict() -> dict[str, Any]:
    return {
        "task_id": str(TASK_ID),
        "status": "in_progress",
        "assignee": TECH,
        "assigned_by": "admin-bob",
        "client_id": str(CLIENT_ID),
        "client_status": "active",
        "scope": {
            "credential_categories": ["isp"],
            "vendor_account_ids": [str(VENDOR_ACCOUNT_ID)],
            "credential_ids": [],
        },
        "approvals": [
            {
                "id": str(APPROVAL_ID),
                "task_id": str(TASK_ID),
                "client_id": str(CLIENT_ID),
                "status": "approved",
                "recipient": {
                    "name": "Acme ISP",
                    "contact_email": "noc@acme-isp.example",
                    "party_category": "provider_for_client",
                    "legal_reference": None,
                },
                "information_categories": ["credentials", "contact_info"],
                "credential_ids": [str(CREDENTIAL_ID)],
                "expires_at": "2025-03-02T12:00:00Z",
                "decided_by": "client-admin-carol",
                "decided_at": "2025-03-01T10:00:00Z",
            }
        ],
        "updated_at": "2025-03-01T11:55:00+00:00",
    }


def test_parse_valid_view() -> None:
    task = parse_task_auth(view_dict())
    assert task == make_task()
    assert parse_task_auth(json.dumps(view_dict())) == task
    assert parse_task_auth(json.dumps(view_dict()).encode()) == task
    assert task.approvals[0].expires_at.tzinfo == UTC


def test_parse_normalises_offsets_to_utc() -> None:
    data = view_dict()
    data["updated_at"] = "2025-03-01T13:55:00+02:00"
    assert parse_task_auth(data).updated_at == datetime(2025, 3, 1, 11, 55, tzinfo=UTC)


def _set(path: str, value: Any) -> dict[str, Any]:
    data = view_dict()
    target: Any = data
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("task_id", _DELETE),
        ("task_id", "not-a-uuid"),
        ("task_id", 12345),
        ("status", "in-progress"),
        ("status", None),
        ("assignee", 7),
        ("assignee", _DELETE),
        ("client_id", None),
        ("client_status", "suspended"),
        ("scope", None),
        ("scope", []),
        ("scope.credential_ids", ["nope"]),
        ("scope.credential_categories", "isp"),
        ("scope.vendor_account_ids", None),
        ("approvals", None),
        ("approvals", {}),
        ("approvals.0.status", "granted"),
        ("approvals.0.expires_at", "2025-03-02T12:00:00"),  # naive
        ("approvals.0.expires_at", 1740916800),  # epoch seconds
        ("approvals.0.expires_at", "tomorrow"),
        ("approvals.0.credential_ids", [str(CREDENTIAL_ID), 5]),
        ("approvals.0.recipient", None),
        ("approvals.0.recipient.party_category", "friend"),
        ("approvals.0.recipient.name", _DELETE),
        ("approvals.0.information_categories", "credentials"),
        ("updated_at", _DELETE),
        ("updated_at", "2025-13-01T00:00:00Z"),
    ],
)
def test_parse_malformed_view_raises(path: str, value: Any) -> None:
    with pytest.raises(MalformedAuthorization):
        parse_task_auth(_set(path, value))


def test_parse_rejects_government_disclosure_without_legal_reference() -> None:
    data = _set("approvals.0.recipient.party_category", "government_legal_process")
    with pytest.raises(MalformedAuthorization):
        parse_task_auth(data)
    data["approvals"][0]["recipient"]["legal_reference"] = "Subpoena 2025-CV-17"
    assert parse_task_auth(data).approvals[0].recipient.legal_reference == "Subpoena 2025-CV-17"


def test_parse_rejects_duplicate_approval_ids() -> None:
    data = view_dict()
    data["approvals"].append(dict(data["approvals"][0], status="rejected"))
    with pytest.raises(MalformedAuthorization):
        parse_task_auth(data)


@pytest.mark.parametrize("raw", ["", "null", "[]", "{", b"\xff\xfe", '"text"'])
def test_parse_non_object_raises(raw: str | bytes) -> None:
    with pytest.raises(MalformedAuthorization):
        parse_task_auth(raw)


def test_parse_non_json_values_in_dict_raise() -> None:
    data = view_dict()
    data["assignee"] = object()
    with pytest.raises(MalformedAuthorization):
        parse_task_auth(data)
    data["assignee"] = float("nan")
    with pytest.raises(MalformedAuthorization):
        parse_task_auth(data)


def test_malformed_message_names_fields_but_not_values() -> None:
    data = _set("approvals.0.recipient.party_category", "friend of noc@acme-isp.example")
    with pytest.raises(MalformedAuthorization) as info:
        parse_task_auth(data)
    assert "approvals.0.recipient.party_category" in str(info.value)
    assert "acme" not in str(info.value)
