"""The admin pages' pure helpers: money in dollars, address lists, API errors per field, expiry and drift words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from portal.pages.admin.audit import start_of, verification_words
from portal.pages.admin.forms import cents_to_dollars, dollars_to_cents, field_errors, split_list
from portal.pages.admin.staff import client_ids_of
from portal.pages.admin.vendors import drift_words, expiry_note


@pytest.mark.parametrize(
    ("text", "cents"),
    [("500", 50000), ("$1,250.50", 125050), ("0.5", 50), (" 12.05 ", 1205), ("0", 0)],
)
def test_dollars_become_cents(text: str, cents: int) -> None:
    assert dollars_to_cents(text) == cents


@pytest.mark.parametrize("text", ["", "a lot", "-5", "1.234", "1,25", "12,34,567", "$", "1e3"])
def test_what_is_not_an_amount_is_refused(text: str) -> None:
    assert dollars_to_cents(text) is None


def test_cents_are_shown_as_dollars() -> None:
    assert cents_to_dollars(125050) == "1250.50" and cents_to_dollars(7) == "0.07" and cents_to_dollars(None) == ""


def test_address_lists_split_on_commas_semicolons_and_lines() -> None:
    assert split_list(" a@x.example,\r\nb@x.example; ;c@x.example\n") == ["a@x.example", "b@x.example", "c@x.example"]
    assert split_list("") == []


def test_api_errors_are_keyed_by_form_field_with_plain_words() -> None:
    body = {
        "error": "validation_error",
        "errors": [
            {"field": "primary_domain", "detail": "primary_domain: must be a host name such as example.com"},
            {"field": "approver_emails.1", "detail": "approver_emails.1: not an email address"},
            {"field": "purchase_approval_threshold_cents", "detail": "purchase_approval_threshold_cents: required"},
        ],
    }
    errors = field_errors(
        httpx.Response(422, json=body), rename={"purchase_approval_threshold_cents": "purchase_approval_threshold"}
    )
    assert errors["primary_domain"] == "Must be a host name such as example.com"
    assert errors["approver_emails"].startswith("Entry 2: ")
    assert "purchase_approval_threshold" in errors


def test_every_client_is_null_and_some_is_a_list() -> None:
    assert client_ids_of("all", ["x"]) is None
    assert client_ids_of("some", []) == [] and client_ids_of("some", ["a"]) == ["a"]


def test_expiry_within_30_days_or_past_needs_attention() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    soon = (now + timedelta(days=10)).isoformat().replace("+00:00", "Z")
    later = (now + timedelta(days=90)).isoformat()
    past = (now - timedelta(days=1)).isoformat()
    assert expiry_note(soon, now) == ("11 January 2026 (in 10 days)", True)
    assert expiry_note(later, now) == ("1 April 2026", False)
    assert expiry_note(past, now)[1] is True and "expired" in expiry_note(past, now)[0]
    assert expiry_note(None, now) == ("not known yet", False)


def test_drift_says_what_changed_from_what_to_what() -> None:
    event = {"kind": "change", "field": "nameservers", "old": ["a.ns"], "new": ["b.ns", "c.ns"]}
    assert drift_words(event) == "nameservers changed from a.ns to b.ns, c.ns"
    assert "from nothing" in drift_words({"kind": "change", "field": "registrar", "old": None, "new": "X"})


def test_audit_words_and_pages() -> None:
    assert verification_words({"ok": True, "entries": 3, "first_bad_index": None}).startswith("Verified")
    broken = verification_words({"ok": False, "entries": 9, "first_bad_index": 4})
    assert broken.startswith("Broken: entry 4") and "changed or removed" in broken
    assert start_of(None, 120) == 70 and start_of(None, 10) == 0 and start_of("5", 120) == 5
    assert start_of("999", 120) == 119 and start_of("x", 120) == 70
