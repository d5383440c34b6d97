"""Unit tests for provisioning's pure decisions: information disclosures, and service releases for a task.

Every rule both ways and their order, on views built here (no intake, no database).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from secrets_broker.ledger.policy import (
    APPROVAL_EXPIRED,
    APPROVAL_NOT_APPROVED,
    APPROVAL_NOT_FOR_TASK,
    APPROVAL_NOT_FOR_VENDOR,
    CATEGORIES_NOT_APPROVED,
    DISCLOSURE_RULES_IN_ORDER,
    decide_disclosure,
)
from secrets_broker.release.policy import (
    CALLER_NOT_ASSIGNEE,
    CLIENT_MISMATCH,
    CLIENT_NOT_ACTIVE,
    NOT_API_KEY,
    OUT_OF_SCOPE,
    SERVICE_TASK_RULES_IN_ORDER,
    SERVICE_WITH_TASK_RULES_IN_ORDER,
    TASK_NOT_IN_PROGRESS,
    VENDOR_ACCOUNT_MISMATCH,
    CredentialMeta,
    decide_service,
    service_task_rule,
)
from secrets_broker.task_auth import Approval, Recipient, Scope, TaskAuth, parse_task_auth

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SERVICE = "svc:vendor_sync"
TASK_ID = UUID("11111111-1111-4111-8111-111111111111")
CLIENT_ID = UUID("22222222-2222-4222-8222-222222222222")
OTHER_CLIENT_ID = UUID("33333333-3333-4333-8333-333333333333")
ACCOUNT_ID = UUID("44444444-4444-4444-8444-444444444444")
CREDENTIAL_ID = UUID("55555555-5555-4555-8555-555555555555")
APPROVAL_ID = UUID("66666666-6666-4666-8666-666666666666")
VENDOR_ID = UUID("77777777-7777-4777-8777-777777777777")
OTHER_VENDOR_ID = UUID("88888888-8888-4888-8888-888888888888")
OTHER_TASK_ID = UUID("99999999-9999-4999-8999-999999999999")
CATEGORIES = ("domain", "mail_routing")


def make_approval(*, vendor_id: UUID | None = VENDOR_ID, **overrides: Any) -> Approval:
    fields: dict[str, Any] = {
        "id": APPROVAL_ID,
        "task_id": TASK_ID,
        "client_id": CLIENT_ID,
        "status": "approved",
        "recipient": Recipient(
            name="MailChannels", contact_email=None, party_category="provider_for_msp", vendor_id=vendor_id
        ),
        "information_categories": frozenset({"domain", "mail_routing", "contact_info"}),
        "credential_ids": frozenset(),
        "expires_at": NOW + timedelta(days=14),
    }
    fields.update(overrides)
    return Approval(**fields)


def make_task(**overrides: Any) -> TaskAuth:
    fields: dict[str, Any] = {
        "task_id": TASK_ID,
        "status": "in_progress",
        "assignee": SERVICE,
        "assigned_by": SERVICE,
        "client_id": CLIENT_ID,
        "client_status": "active",
        "scope": Scope(
            credential_categories=frozenset({"spam_filter", "dns_host"}), vendor_account_ids=frozenset({ACCOUNT_ID})
        ),
        "approvals": (make_approval(),),
        "updated_at": NOW - timedelta(minutes=1),
    }
    fields.update(overrides)
    return TaskAuth(**fields)


def disclose(task: TaskAuth, **overrides: Any) -> str | None:
    kwargs: dict[str, Any] = {
        "caller": SERVICE,
        "approval_id": APPROVAL_ID,
        "vendor_id": VENDOR_ID,
        "categories": CATEGORIES,
        "now": NOW,
    }
    kwargs.update(overrides)
    return decide_disclosure(task, **kwargs)


# --- information disclosures ---------------------------------------------------------------------


def test_an_approved_unexpired_approval_for_this_task_vendor_and_categories_allows() -> None:
    assert disclose(make_task()) is None
    # Any subset of what the client approved.
    assert disclose(make_task(), categories=["contact_info"]) is None
    assert disclose(make_task(), categories=["contact_info", "domain", "mail_routing"]) is None


@pytest.mark.parametrize(
    ("task", "asks", "rule"),
    [
        (make_task(assignee=None), {}, CALLER_NOT_ASSIGNEE),
        (make_task(assignee="tech-alice"), {}, CALLER_NOT_ASSIGNEE),
        (make_task(), {"caller": "svc:intake"}, CALLER_NOT_ASSIGNEE),
        (make_task(status="ready"), {}, TASK_NOT_IN_PROGRESS),
        (make_task(status="on_hold"), {}, TASK_NOT_IN_PROGRESS),
        (make_task(status="done"), {}, TASK_NOT_IN_PROGRESS),
        (make_task(client_status="inactive"), {}, CLIENT_NOT_ACTIVE),
        (make_task(client_status="closed"), {}, CLIENT_NOT_ACTIVE),
        (make_task(approvals=()), {}, APPROVAL_NOT_FOR_TASK),
        (make_task(), {"approval_id": OTHER_TASK_ID}, APPROVAL_NOT_FOR_TASK),
        (make_task(approvals=(make_approval(task_id=OTHER_TASK_ID),)), {}, APPROVAL_NOT_FOR_TASK),
        (make_task(approvals=(make_approval(client_id=OTHER_CLIENT_ID),)), {}, APPROVAL_NOT_FOR_TASK),
        (make_task(approvals=(make_approval(status="pending"),)), {}, APPROVAL_NOT_APPROVED),
        (make_task(approvals=(make_approval(status="rejected"),)), {}, APPROVAL_NOT_APPROVED),
        (make_task(approvals=(make_approval(status="expired"),)), {}, APPROVAL_EXPIRED),
        (make_task(approvals=(make_approval(expires_at=NOW),)), {}, APPROVAL_EXPIRED),
        (make_task(), {"now": NOW + timedelta(days=15)}, APPROVAL_EXPIRED),
        (make_task(), {"vendor_id": OTHER_VENDOR_ID}, APPROVAL_NOT_FOR_VENDOR),
        (make_task(approvals=(make_approval(vendor_id=None),)), {}, APPROVAL_NOT_FOR_VENDOR),
        (make_task(), {"categories": ["billing"]}, CATEGORIES_NOT_APPROVED),
        (make_task(), {"categories": ["domain", "service_address"]}, CATEGORIES_NOT_APPROVED),
        (make_task(), {"categories": []}, CATEGORIES_NOT_APPROVED),
    ],
)
def test_each_rule_refuses_naming_itself(task: TaskAuth, asks: dict[str, Any], rule: str) -> None:
    assert disclose(task, **asks) == rule


# Each rule's breach, on the view's task, its approval or the ask, in the order the rules are checked.
BREACHES: list[tuple[str, str, dict[str, Any]]] = [
    (CALLER_NOT_ASSIGNEE, "task", {"assignee": "tech-alice"}),
    (TASK_NOT_IN_PROGRESS, "task", {"status": "on_hold"}),
    (CLIENT_NOT_ACTIVE, "task", {"client_status": "inactive"}),
    (APPROVAL_NOT_FOR_TASK, "approval", {"task_id": OTHER_TASK_ID}),
    (APPROVAL_NOT_APPROVED, "approval", {"status": "pending"}),
    (APPROVAL_EXPIRED, "approval", {"expires_at": NOW - timedelta(seconds=1)}),
    (APPROVAL_NOT_FOR_VENDOR, "approval", {"vendor_id": OTHER_VENDOR_ID}),
    (CATEGORIES_NOT_APPROVED, "ask", {"categories": ["billing"]}),
]


def test_the_first_failing_rule_is_named_in_order() -> None:
    """Break every rule, then mend them one by one: the named rule walks down the order."""
    assert [rule for rule, _, _ in BREACHES] == list(DISCLOSURE_RULES_IN_ORDER)
    parts: dict[str, dict[str, Any]] = {"task": {}, "approval": {}, "ask": {}}
    for _, where, fields in BREACHES:
        parts[where].update(fields)

    for rule, where, fields in BREACHES:
        view = make_task(approvals=(make_approval(**parts["approval"]),), **parts["task"])
        assert disclose(view, **parts["ask"]) == rule
        for name in fields:
            del parts[where][name]

    assert disclose(make_task(approvals=(make_approval(**parts["approval"]),), **parts["task"])) is None


def test_a_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        disclose(make_task(), now=NOW.replace(tzinfo=None))


def test_the_recipients_vendor_is_read_from_intakes_view_and_absent_means_none() -> None:
    view = make_task().model_dump(mode="json")
    parsed = parse_task_auth(view)
    assert parsed.approvals[0].recipient.vendor_id == VENDOR_ID
    del view["approvals"][0]["recipient"]["vendor_id"]
    assert parse_task_auth(view).approvals[0].recipient.vendor_id is None
    view["approvals"][0]["recipient"]["vendor_id"] = None
    assert disclose(parse_task_auth(view)) == APPROVAL_NOT_FOR_VENDOR


# --- service releases and credentials for a task --------------------------------------------------


def make_credential(**overrides: Any) -> CredentialMeta:
    fields: dict[str, Any] = {
        "id": CREDENTIAL_ID,
        "client_id": CLIENT_ID,
        "vendor_account_id": ACCOUNT_ID,
        "kind": "api_key",
        "owner": "msp",
        "category": "spam_filter",
        "status": "active",
    }
    fields.update(overrides)
    return CredentialMeta(**fields)


def test_a_task_claimed_by_vendor_sync_naming_the_account_allows() -> None:
    assert service_task_rule(make_task(), service=SERVICE, client_id=CLIENT_ID, vendor_account_id=ACCOUNT_ID) is None
    assert decide_service(make_credential(), ACCOUNT_ID, "active", make_task(), service=SERVICE).allowed


@pytest.mark.parametrize(
    ("task", "client_id", "account", "rule"),
    [
        (make_task(assignee=None), CLIENT_ID, ACCOUNT_ID, CALLER_NOT_ASSIGNEE),
        (make_task(assignee="tech-alice"), CLIENT_ID, ACCOUNT_ID, CALLER_NOT_ASSIGNEE),
        (make_task(status="ready"), CLIENT_ID, ACCOUNT_ID, TASK_NOT_IN_PROGRESS),
        (make_task(status="done"), CLIENT_ID, ACCOUNT_ID, TASK_NOT_IN_PROGRESS),
        (make_task(), OTHER_CLIENT_ID, ACCOUNT_ID, CLIENT_MISMATCH),
        (make_task(client_status="inactive"), CLIENT_ID, ACCOUNT_ID, CLIENT_NOT_ACTIVE),
        (make_task(), CLIENT_ID, VENDOR_ID, OUT_OF_SCOPE),
        (make_task(), CLIENT_ID, None, OUT_OF_SCOPE),
        # A category alone never names an account.
        (make_task(scope=Scope(credential_categories=frozenset({"spam_filter"}))), CLIENT_ID, ACCOUNT_ID, OUT_OF_SCOPE),
    ],
)
def test_each_task_rule_refuses_naming_itself(task: TaskAuth, client_id: UUID, account: UUID | None, rule: str) -> None:
    assert service_task_rule(task, service=SERVICE, client_id=client_id, vendor_account_id=account) == rule


def test_a_service_release_for_a_task_checks_the_credential_first_then_the_task() -> None:
    unclaimed = make_task(assignee=None)
    assert decide_service(make_credential(kind="password"), ACCOUNT_ID, "active", unclaimed).rule == NOT_API_KEY
    assert decide_service(make_credential(), VENDOR_ID, "active", unclaimed).rule == VENDOR_ACCOUNT_MISMATCH
    assert decide_service(make_credential(), ACCOUNT_ID, "active", unclaimed).rule == CALLER_NOT_ASSIGNEE
    # With a task, its view's client status decides (the one given for the no-task path is not read).
    inactive = make_task(client_status="inactive")
    assert decide_service(make_credential(), ACCOUNT_ID, "active", inactive).rule == CLIENT_NOT_ACTIVE
    assert decide_service(make_credential(), ACCOUNT_ID, None, make_task()).allowed
    assert SERVICE_WITH_TASK_RULES_IN_ORDER == (NOT_API_KEY, VENDOR_ACCOUNT_MISMATCH, *SERVICE_TASK_RULES_IN_ORDER)


def test_without_a_task_the_service_release_keeps_its_rules() -> None:
    assert decide_service(make_credential(), ACCOUNT_ID, "active").allowed
    assert decide_service(make_credential(), ACCOUNT_ID, "closed").rule == CLIENT_NOT_ACTIVE
    assert decide_service(make_credential(), ACCOUNT_ID, None).rule == CLIENT_NOT_ACTIVE
