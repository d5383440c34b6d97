"""Stateful property test: `decide` against an independent oracle over evolving task state.

The machine keeps its own plain model (names, not UUIDs; sets of strings; a clock) and mutates it
the way the world does: status changes, reassignment, scope edits, client status, approvals being
asked, decided and expiring, the clock moving and releases filling the hourly quota. After every
step the model is rendered as intake's JSON view, parsed, and `decide` must agree with the oracle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from secrets_broker.release.policy import Caller, CredentialMeta, decide
from secrets_broker.task_auth import parse_task_auth

STATUSES = ["new", "awaiting_approval", "ready", "in_progress", "on_hold", "done", "rejected", "cancelled"]
CLIENT_STATUSES = ["active", "inactive", "closed"]
APPROVAL_STATUSES = ["pending", "approved", "rejected", "expired"]
SUBS = ["tech-a", "tech-b", "admin-z"]
ROLES = ["technician", "admin", "client_admin", "service"]
CATEGORIES = ["isp", "registrar", "dns_host"]
VENDOR_ACCOUNTS = ["va1", "va2"]
CREDENTIALS = ["cred", "other-cred"]
INFO_CATEGORIES = ["credentials", "contact_info", "billing"]
APPROVAL_NAMES = ["ap1", "ap2", "ap3"]

# Stable ids for the model's names; the oracle never looks at them.
IDS: dict[str, UUID] = {
    name: UUID(int=i + 1)
    for i, name in enumerate(
        ["task", "other-task", "client", "other-client", *VENDOR_ACCOUNTS, *CREDENTIALS, *APPROVAL_NAMES, "unknown"]
    )
}
START = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)

reasons = st.one_of(
    st.text(alphabet="ab \t\n\u3000", max_size=16),
    st.sampled_from(["x" * 9, "x" * 10, "  " + "x" * 9 + "  ", " " * 12, "renew ISP contract"]),
)


@dataclass
class ApprovalModel:
    status: str
    for_this_task: bool
    own_client: bool
    info: set[str]
    names_credentials: set[str]
    expires_at: datetime


@dataclass
class World:
    """Plain-data model of everything decide depends on, starting from an allowed release."""

    status: str = "in_progress"
    assignee: str | None = "tech-a"
    caller_sub: str = "tech-a"
    caller_role: str = "technician"
    client_status: str = "active"
    cred_own_client: bool = True
    cred_vendor: str | None = "va1"
    cred_category: str = "isp"
    scope_categories: set[str] = field(default_factory=lambda: {"isp"})
    scope_vendors: set[str] = field(default_factory=lambda: {"va1"})
    scope_credentials: set[str] = field(default_factory=set)
    approvals: dict[str, ApprovalModel] = field(default_factory=dict)
    requested: str | None = None
    releases: int = 0
    quota: int = 10
    now: datetime = START
    reason: str = "renew ISP contract"


SPOILERS = ["other_task", "other_client", "no_credentials_category", "other_credential", "pending", "expired"]


def spoil(approval: ApprovalModel, spoiler: str) -> None:
    """Make one condition of an approval fail."""
    if spoiler == "other_task":
        approval.for_this_task = False
    elif spoiler == "other_client":
        approval.own_client = False
    elif spoiler == "no_credentials_category":
        approval.info = {"contact_info", "billing"}
    elif spoiler == "other_credential":
        approval.names_credentials = {"other-cred"}
    else:
        approval.status = spoiler


def trimmed_length(text: str) -> int:
    """Length after dropping leading and trailing whitespace, counted by hand."""
    start, end = 0, len(text)
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return end - start


def third_party_ok(w: World) -> bool:
    if w.requested is None:
        return True
    found = w.approvals.get(w.requested)  # "unknown" is never a key
    if found is None:
        return False
    return all(
        [
            found.status == "approved",
            w.now < found.expires_at,
            found.for_this_task,
            found.own_client,
            "credentials" in found.info,
            "cred" in found.names_credentials,
        ]
    )


def scope_ok(w: World) -> bool:
    by_id = "cred" in w.scope_credentials
    by_account = w.cred_vendor in w.scope_vendors and w.cred_category in w.scope_categories
    return by_id or (w.cred_vendor is not None and by_account)


ORACLE: list[tuple[str, Callable[[World], bool]]] = [
    # (rule id, "this rule holds") in the contract's order
    ("caller_not_assignee", lambda w: w.caller_role == "technician" and w.assignee == w.caller_sub is not None),
    ("task_not_in_progress", lambda w: w.status == "in_progress"),
    ("client_mismatch", lambda w: w.cred_own_client),
    ("client_not_active", lambda w: w.client_status == "active"),
    ("out_of_scope", scope_ok),
    ("reason_too_short", lambda w: trimmed_length(w.reason) >= 10),
    ("third_party_not_approved", third_party_ok),
    ("quota_exceeded", lambda w: w.releases < w.quota),
]


def oracle(w: World) -> str | None:
    failing = [rule_id for rule_id, holds in ORACLE if not holds(w)]
    return failing[0] if failing else None


def render_view(w: World) -> dict[str, Any]:
    """The world as intake's JSON authorization view."""
    approvals = [
        {
            "id": str(IDS[name]),
            "task_id": str(IDS["task" if a.for_this_task else "other-task"]),
            "client_id": str(IDS["client" if a.own_client else "other-client"]),
            "status": a.status,
            "recipient": {"name": "Acme", "contact_email": None, "party_category": "provider_for_client"},
            "information_categories": sorted(a.info),
            "credential_ids": [str(IDS[c]) for c in sorted(a.names_credentials)],
            "expires_at": a.expires_at.isoformat().replace("+00:00", "Z"),
        }
        for name, a in w.approvals.items()
    ]
    return {
        "task_id": str(IDS["task"]),
        "status": w.status,
        "assignee": w.assignee,
        "assigned_by": "admin-z",
        "client_id": str(IDS["client"]),
        "client_status": w.client_status,
        "scope": {
            "credential_categories": sorted(w.scope_categories),
            "vendor_account_ids": [str(IDS[v]) for v in sorted(w.scope_vendors)],
            "credential_ids": [str(IDS[c]) for c in sorted(w.scope_credentials)],
        },
        "approvals": approvals,
        "updated_at": w.now.isoformat(),
    }


def call_decide(w: World) -> str | None:
    credential = CredentialMeta(
        id=IDS["cred"],
        client_id=IDS["client" if w.cred_own_client else "other-client"],
        vendor_account_id=None if w.cred_vendor is None else IDS[w.cred_vendor],
        kind="password",
        owner="client",
        category=w.cred_category,
        status="active",
    )
    caller = Caller(sub=w.caller_sub, role=w.caller_role, client_id=None)
    approval = None if w.requested is None else IDS[w.requested]
    # Exercise the default quota as well as an explicit setting.
    extra: dict[str, Any] = {} if w.quota == 10 else {"quota_per_hour": w.quota}
    decision = decide(
        parse_task_auth(render_view(w)), credential, caller, approval, w.releases, w.now, reason=w.reason, **extra
    )
    assert decision.allowed == (decision.rule is None)
    return decision.rule


class ReleaseMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World()

    # --- the task -------------------------------------------------------------------------------

    @rule(status=st.sampled_from(STATUSES))
    def task_status_changes(self, status: str) -> None:
        self.world.status = status

    @rule(assignee=st.sampled_from([None, *SUBS]))
    def task_reassigned(self, assignee: str | None) -> None:
        self.world.assignee = assignee

    @rule(sub=st.sampled_from(SUBS), role=st.sampled_from(ROLES))
    def someone_else_asks(self, sub: str, role: str) -> None:
        self.world.caller_sub, self.world.caller_role = sub, role

    @rule()
    def assignee_asks(self) -> None:
        # Keeps the later rules reachable: most random callers fail the first rule.
        if self.world.assignee is not None:
            self.world.caller_sub, self.world.caller_role = self.world.assignee, "technician"

    @rule()
    def task_resumed(self) -> None:
        self.world.status = "in_progress"

    @rule(status=st.sampled_from(CLIENT_STATUSES))
    def client_status_changes(self, status: str) -> None:
        self.world.client_status = status

    @rule(reason=reasons)
    def reason_typed(self, reason: str) -> None:
        self.world.reason = reason

    # --- scope and credential -------------------------------------------------------------------

    @rule(category=st.sampled_from(CATEGORIES))
    def scope_category_toggled(self, category: str) -> None:
        self.world.scope_categories ^= {category}

    @rule(vendor=st.sampled_from(VENDOR_ACCOUNTS))
    def scope_vendor_toggled(self, vendor: str) -> None:
        self.world.scope_vendors ^= {vendor}

    @rule(credential=st.sampled_from(CREDENTIALS))
    def scope_credential_toggled(self, credential: str) -> None:
        self.world.scope_credentials ^= {credential}

    @rule(
        own_client=st.booleans(),
        vendor=st.sampled_from([None, *VENDOR_ACCOUNTS]),
        category=st.sampled_from(CATEGORIES),
    )
    def other_credential_requested(self, own_client: bool, vendor: str | None, category: str) -> None:
        self.world.cred_own_client, self.world.cred_vendor, self.world.cred_category = own_client, vendor, category

    # --- approvals ------------------------------------------------------------------------------

    @rule(
        name=st.sampled_from(APPROVAL_NAMES),
        status=st.sampled_from(APPROVAL_STATUSES),
        for_this_task=st.booleans(),
        own_client=st.booleans(),
        info=st.sets(st.sampled_from(INFO_CATEGORIES)),
        names=st.sets(st.sampled_from(CREDENTIALS)),
        expires_in=st.sampled_from([-3600, -1, 0, 1, 60, 3600, 14 * 86400]),
    )
    def approval_asked(
        self,
        name: str,
        status: str,
        for_this_task: bool,
        own_client: bool,
        info: set[str],
        names: set[str],
        expires_in: int,
    ) -> None:
        self.world.approvals[name] = ApprovalModel(
            status, for_this_task, own_client, info, names, self.world.now + timedelta(seconds=expires_in)
        )

    @rule(
        name=st.sampled_from(APPROVAL_NAMES),
        expires_in=st.sampled_from([0, 1, 60, 3600]),
        spoiler=st.sampled_from([None, *SPOILERS]),
    )
    def near_valid_approval_named(self, name: str, expires_in: int, spoiler: str | None) -> None:
        # Random approvals are rarely valid in every respect; this one is, or is spoiled in exactly
        # one respect, so that each condition (and the expiry edge, via the clock) is probed alone.
        approval = ApprovalModel(
            "approved", True, True, {"credentials"}, {"cred"}, self.world.now + timedelta(seconds=expires_in)
        )
        self.world.approvals[name] = approval
        self.world.requested = name
        if spoiler is not None:
            spoil(approval, spoiler)

    @rule(name=st.sampled_from(APPROVAL_NAMES), spoiler=st.sampled_from(SPOILERS))
    def approval_spoiled(self, name: str, spoiler: str) -> None:
        if name in self.world.approvals:
            spoil(self.world.approvals[name], spoiler)

    @rule(name=st.sampled_from(APPROVAL_NAMES), status=st.sampled_from(APPROVAL_STATUSES))
    def approval_decided(self, name: str, status: str) -> None:
        if name in self.world.approvals:
            self.world.approvals[name].status = status

    @rule(name=st.sampled_from(APPROVAL_NAMES))
    def approval_dropped_from_view(self, name: str) -> None:
        self.world.approvals.pop(name, None)

    @rule(requested=st.sampled_from([None, "unknown", *APPROVAL_NAMES]))
    def release_names_approval(self, requested: str | None) -> None:
        self.world.requested = requested

    # --- time and quota -------------------------------------------------------------------------

    @rule(seconds=st.sampled_from([0, 1, 59, 60, 3600, 86400]))
    def clock_moves(self, seconds: int) -> None:
        self.world.now += timedelta(seconds=seconds)

    @rule(quota=st.integers(min_value=0, max_value=12))
    def quota_setting_changes(self, quota: int) -> None:
        self.world.quota = quota

    @rule(count=st.integers(min_value=0, max_value=12))
    def releases_in_window(self, count: int) -> None:
        self.world.releases = count

    @rule()
    def release_attempted(self) -> None:
        # A granted release counts against the quota, as the service records it.
        if call_decide(self.world) is None:
            self.world.releases += 1

    # --- the property ---------------------------------------------------------------------------

    @invariant()
    def decide_agrees_with_oracle(self) -> None:
        got = call_decide(self.world)
        event(f"outcome: {got or 'allowed'}")
        assert got == oracle(self.world)


ReleaseMachine.TestCase.settings = settings(max_examples=2000, stateful_step_count=20, deadline=None)
TestReleaseMachine = ReleaseMachine.TestCase


def test_oracle_sanity() -> None:
    """The oracle itself starts from an allowed world, so the machine explores around it."""
    assert oracle(World()) is None
    assert call_decide(World()) is None
