"""Provisioning's pure parts: the MX diff, the steps each request becomes and their words, the approval a
disclosure is made on, the ids kept from intake's task, the registrar contacts a contact update sends,
and intake's idempotency keys."""

from __future__ import annotations

import uuid

import pytest

from vendor_sync.adapters.dns_types import DnsRecord
from vendor_sync.adapters.mailchannels import INBOUND_MX_HOSTS
from vendor_sync.adapters.registrar_types import RegistrarContact
from vendor_sync.intake_client import StepReport
from vendor_sync.provisioning.contacts import registrar_contacts
from vendor_sync.provisioning.mx import after_changes, apex_mx, mx_changes, mx_values
from vendor_sync.provisioning.plans import (
    DETAIL_MAX,
    ISP_ADDRESS,
    ISP_ORDER,
    ISP_RECORD,
    ISP_SITE,
    clip,
    contact_change_lines,
    contacts_by_hand,
    isp_steps,
    pick_approval,
    task_view,
)
from vendor_sync.provisioning.steps import idempotency_key

APEX = "acme.example"


def mx(priority: int, host: str, *, name: str = APEX, record_id: str | None = None) -> DnsRecord:
    return DnsRecord(type="MX", name=name, content=host, ttl=300, priority=priority, id=record_id)


# ---- the MX diff ---------------------------------------------------------------------------------------


def test_old_mx_records_are_replaced_by_the_inbound_hosts_and_other_records_are_left_alone() -> None:
    records = [
        mx(10, "mx.old-host.example", record_id="old1"),
        mx(20, "mx2.old-host.example", record_id="old2"),
        DnsRecord(type="A", name=APEX, content="192.0.2.1", ttl=300, id="a1"),
        mx(10, "mx.sub.example", name=f"sub.{APEX}", record_id="sub1"),
    ]
    changes = mx_changes(records, APEX, INBOUND_MX_HOSTS, 3600)
    assert [(r.priority, r.content, r.name, r.ttl) for r in changes.create] == [
        (10, "mx1.mailchannels.net", APEX, 3600),
        (20, "mx2.mailchannels.net", APEX, 3600),
    ]
    # Only the apex MX goes: a subdomain's MX and the A record are not the domain's mail route.
    assert [r.id for r in changes.delete] == ["old1", "old2"]
    assert changes.keep == ()


def test_a_second_run_after_the_change_finds_nothing_to_do() -> None:
    records = [mx(10, "MX1.MailChannels.net.", record_id="n1"), mx(20, "mx2.mailchannels.net", record_id="n2")]
    changes = mx_changes(records, APEX, INBOUND_MX_HOSTS, 3600)
    assert changes.create == () and changes.delete == ()
    assert [r.id for r in changes.keep] == ["n1", "n2"]


def test_a_run_that_died_half_way_creates_only_what_is_missing_and_deletes_what_is_left() -> None:
    # Created mx1 and died before mx2 and before deleting the old record.
    records = [mx(10, "mx.old-host.example", record_id="old"), mx(10, "mx1.mailchannels.net", record_id="n1")]
    changes = mx_changes(records, APEX, INBOUND_MX_HOSTS, 3600)
    assert [(r.priority, r.content) for r in changes.create] == [(20, "mx2.mailchannels.net")]
    assert [r.id for r in changes.delete] == ["old"]
    assert [r.id for r in changes.keep] == ["n1"]


def test_a_wrong_priority_or_a_duplicate_is_replaced() -> None:
    records = [
        mx(5, "mx1.mailchannels.net", record_id="wrong"),
        mx(20, "mx2.mailchannels.net", record_id="keep"),
        mx(20, "mx2.mailchannels.net.", record_id="dup"),
    ]
    changes = mx_changes(records, APEX, INBOUND_MX_HOSTS, 3600)
    assert [r.id for r in changes.delete] == ["wrong", "dup"]
    assert [(r.priority, r.content) for r in changes.create] == [(10, "mx1.mailchannels.net")]


def test_the_last_known_state_uses_the_syncs_priority_host_form_sorted_by_priority() -> None:
    records = [mx(20, "MX2.mailchannels.net."), mx(10, "mx1.mailchannels.net"), mx(100, "backup.example")]
    assert mx_values(records) == ["10 mx1.mailchannels.net", "20 mx2.mailchannels.net", "100 backup.example"]
    assert mx_values([]) == []


def test_after_changes_is_what_was_kept_plus_what_the_host_created() -> None:
    kept = mx(10, "mx1.mailchannels.net", record_id="n1")
    changes = mx_changes([kept, mx(1, "old.example", record_id="o")], APEX, INBOUND_MX_HOSTS, 3600)
    created = [mx(20, "mx2.mailchannels.net", record_id="n2")]
    assert mx_values(after_changes(changes, created)) == ["10 mx1.mailchannels.net", "20 mx2.mailchannels.net"]
    assert apex_mx([*after_changes(changes, created), mx(1, "x.example", name="other.example")], APEX) == [
        kept,
        *created,
    ]


# ---- human steps and their words -----------------------------------------------------------------------

ISP_BODY = {
    "type": "isp_account_setup",
    "isp_name": "FastFiber",
    "isp_contact_email": "business@fastfiber.example",
    "service_address": {
        "line1": "1 Main Street",
        "line2": "Suite 4",
        "city": "Springfield",
        "region": "IL",
        "postal_code": "62701",
        "country": "US",
    },
    "service_tier": "Business 500",
    "site_contact": {"name": "Dana Office", "email": "dana@acme.example", "phone": "+1 217 555 0100"},
}


def test_an_isp_order_becomes_a_checklist_with_what_the_isp_needs() -> None:
    steps = isp_steps(ISP_BODY)
    assert [s.name for s in steps] == [ISP_ORDER, ISP_ADDRESS, ISP_SITE, ISP_RECORD]
    words = {s.name: s.detail for s in steps}
    assert words[ISP_ORDER] == 'Order service tier "Business 500" from FastFiber (business@fastfiber.example).'
    assert (
        words[ISP_ADDRESS] == "Give FastFiber the service address: 1 Main Street, Suite 4, Springfield, IL 62701, US."
    )
    assert words[ISP_SITE] == (
        "Arrange the installation with the site contact: Dana Office, dana@acme.example, +1 217 555 0100."
    )
    assert "registry" in words[ISP_RECORD]


def test_an_isp_order_without_optional_fields_says_nothing_about_them() -> None:
    body = {**ISP_BODY, "isp_contact_email": None, "service_address": {**ISP_BODY["service_address"], "line2": None}}
    words = {s.name: s.detail for s in isp_steps(body)}
    assert words[ISP_ORDER] == 'Order service tier "Business 500" from FastFiber.'
    assert words[ISP_ADDRESS] == "Give FastFiber the service address: 1 Main Street, Springfield, IL 62701, US."


CURRENT = {
    "c1": {"name": "Ann Admin", "role": "admin", "email": "ann@acme.example", "phone": None},
    "c2": {"name": "Bob Billing", "role": "billing", "email": "bob@acme.example", "phone": "+1.5550100"},
}


def test_contact_changes_are_described_exactly() -> None:
    changes = {
        "add": [{"name": "Tia Tech", "role": "tech", "email": "tia@acme.example", "phone": None}],
        "update": [{"id": "c1", "email": "ann.new@acme.example", "name": None}, {"id": "missing", "email": "x@y.z"}],
        "remove": ["c2", "gone"],
    }
    assert contact_change_lines(changes, CURRENT) == [
        "Add Tia Tech (tech, tia@acme.example).",
        "Change Ann Admin: email ann@acme.example → ann.new@acme.example.",
        "Contact missing is not one of this account's contacts: change nothing for it.",
        "Remove Bob Billing (billing, bob@acme.example, +1.5550100).",
        "Contact gone is already gone.",
    ]
    step = contacts_by_hand("Acme ISP", "A-1", contact_change_lines(changes, CURRENT))
    assert step.detail.startswith("At Acme ISP (account A-1): Add Tia Tech")
    assert step.detail.endswith("Then make the same changes in the registry.")


def test_an_update_that_changes_nothing_is_not_listed() -> None:
    assert contact_change_lines({"update": [{"id": "c1", "email": "ann@acme.example"}]}, CURRENT) == []


def test_a_detail_is_cut_to_what_intake_takes() -> None:
    assert clip("x" * 10) == "x" * 10
    long = clip("y" * (DETAIL_MAX + 50))
    assert len(long) == DETAIL_MAX and long.endswith("…")


# ---- registrar contacts ----------------------------------------------------------------------------------


def test_registrar_roles_become_registrar_contacts_and_other_roles_do_not() -> None:
    changes = {
        "add": [
            {"name": "Tia Q Tech", "role": "Tech", "email": "tia@acme.example", "phone": "+1.5550101"},
            {"name": "Sam Support", "role": "support", "email": "sam@acme.example"},
        ],
        "update": [{"id": "c1", "email": "ann.new@acme.example"}, {"id": "unknown", "email": "z@acme.example"}],
    }
    assert registrar_contacts(changes, CURRENT) == [
        RegistrarContact(
            role="tech", name_first="Tia", name_last="Q Tech", email="tia@acme.example", phone="+1.5550101"
        ),
        RegistrarContact(role="admin", name_first="Ann", name_last="Admin", email="ann.new@acme.example"),
    ]


def test_one_contact_per_role_the_last_given_wins() -> None:
    changes = {"add": [{"name": "First Admin", "role": "admin"}, {"name": "Second Admin", "role": "admin"}]}
    assert registrar_contacts(changes, {}) == [RegistrarContact(role="admin", name_first="Second", name_last="Admin")]


# ---- what is kept of intake's task, and which approval a disclosure names --------------------------------


def test_the_task_view_keeps_ids_statuses_and_categories_only() -> None:
    vendor, account = uuid.uuid4(), uuid.uuid4()
    answer = {
        "id": "t",
        "title": "Spam filter setup for acme.example",
        "request_id": "r1",
        "scope": {"vendor_account_ids": [str(account)], "credential_categories": ["spam_filter"]},
        "approvals": [
            {
                "id": "a1",
                "status": "approved",
                "recipient": {"name": "MailChannels", "contact_email": "support@mc.example", "vendor_id": str(vendor)},
                "information_categories": ["domain", "mail_routing"],
                "expires_at": "2030-01-01T00:00:00Z",
            },
            "not an approval",
        ],
    }
    assert task_view(answer) == {
        "approvals": [
            {
                "id": "a1",
                "status": "approved",
                "vendor_id": str(vendor),
                "information_categories": ["domain", "mail_routing"],
            }
        ],
        "vendor_account_ids": [str(account)],
        "request_id": "r1",
    }
    assert task_view({}) == {"approvals": [], "vendor_account_ids": [], "request_id": None}


@pytest.mark.parametrize(
    ("approvals", "expected"),
    [
        ([], None),
        ([{"id": "a", "status": "approved", "vendor_id": "other"}], None),
        ([{"id": "a", "status": "approved", "vendor_id": "v"}], "a"),
        # An approved one is preferred; with none approved the latest goes, and the broker says why not.
        (
            [{"id": "p", "status": "pending", "vendor_id": "v"}, {"id": "a", "status": "approved", "vendor_id": "v"}],
            "a",
        ),
        (
            [{"id": "r", "status": "rejected", "vendor_id": "v"}, {"id": "e", "status": "expired", "vendor_id": "v"}],
            "e",
        ),
        ([{"id": None, "status": "approved", "vendor_id": "v"}], None),
    ],
)
def test_the_disclosure_names_the_approval_of_that_vendor(approvals, expected) -> None:
    assert pick_approval(approvals, "v") == expected


# ---- intake's keys -----------------------------------------------------------------------------------------


def test_a_steps_first_outcome_has_the_plain_key_and_a_retrys_outcome_a_new_one() -> None:
    task = uuid.UUID("00000000-0000-4000-8000-000000000001")
    assert idempotency_key(task, "set_mx_records", 1) == f"{task}:set_mx_records"
    assert idempotency_key(task, "set_mx_records", 2) == f"{task}:set_mx_records:2"


def test_a_step_report_sends_no_empty_detail() -> None:
    report = StepReport(name="n", status="pending", human=True, idempotency_key="k")
    assert report.body() == {"name": "n", "status": "pending", "human": True, "idempotency_key": "k"}
    assert StepReport("n", "failed", False, "k", "why").body()["detail"] == "why"
