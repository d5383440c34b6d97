"""Unit tests for the disclosure ledger's CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest

from secrets_broker.ledger.csv_export import LEDGER_CSV_COLUMNS, escape_cell, to_csv

HEADER = (
    "disclosure_id,created_at,client_id,task_id,release_id,credential_id,party_category,recipient_name,"
    "recipient_contact_email,approval_id,legal_reference,information_categories,disclosed_by,kind,vendor_id"
)


def make_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "disclosure_id": UUID(int=1),
        "created_at": datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
        "client_id": UUID(int=2),
        "task_id": UUID(int=3),
        "release_id": UUID(int=4),
        "credential_id": UUID(int=5),
        "party_category": "provider_for_client",
        "recipient_name": "Acme ISP",
        "recipient_contact_email": "noc@acme-isp.example",
        "approval_id": UUID(int=6),
        "legal_reference": None,
        "information_categories": ["credentials", "contact_info"],
        "disclosed_by": "tech-alice",
        "kind": "credential",
        "vendor_id": UUID(int=7),
    }
    row.update(overrides)
    return row


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_columns_are_fixed() -> None:
    assert ",".join(LEDGER_CSV_COLUMNS) == HEADER


def test_empty_ledger_is_just_the_header() -> None:
    assert to_csv([]) == HEADER + "\r\n"


def test_row_rendering() -> None:
    text = to_csv([make_row()])
    lines = text.split("\r\n")
    assert lines[0] == HEADER
    assert parse(text)[1] == [
        "00000000-0000-0000-0000-000000000001",
        "2025-03-01T12:00:00Z",
        "00000000-0000-0000-0000-000000000002",
        "00000000-0000-0000-0000-000000000003",
        "00000000-0000-0000-0000-000000000004",
        "00000000-0000-0000-0000-000000000005",
        "provider_for_client",
        "Acme ISP",
        "noc@acme-isp.example",
        "00000000-0000-0000-0000-000000000006",
        "",
        "contact_info;credentials",
        "tech-alice",
        "credential",
        "00000000-0000-0000-0000-000000000007",
    ]


def test_an_information_disclosure_leaves_the_release_and_credential_cells_empty() -> None:
    row = make_row(kind="information", release_id=None, credential_id=None, information_categories=["domain"])

    cells = dict(zip(LEDGER_CSV_COLUMNS, parse(to_csv([row]))[1], strict=True))

    assert (cells["kind"], cells["release_id"], cells["credential_id"]) == ("information", "", "")
    assert (cells["vendor_id"], cells["information_categories"]) == ("00000000-0000-0000-0000-000000000007", "domain")


def test_categories_are_sorted_and_semicolon_joined() -> None:
    rows = parse(to_csv([make_row(information_categories=frozenset({"mail_routing", "domain", "contact_info"}))]))
    assert rows[1][LEDGER_CSV_COLUMNS.index("information_categories")] == "contact_info;domain;mail_routing"
    rows = parse(to_csv([make_row(information_categories=[])]))
    assert rows[1][LEDGER_CSV_COLUMNS.index("information_categories")] == ""
    rows = parse(to_csv([make_row(information_categories="billing;domain")]))
    assert rows[1][LEDGER_CSV_COLUMNS.index("information_categories")] == "billing;domain"


def test_government_disclosure_has_legal_reference_and_no_approval() -> None:
    row = make_row(party_category="government_legal_process", approval_id=None, legal_reference="Subpoena 17/2025")
    cells = dict(zip(LEDGER_CSV_COLUMNS, parse(to_csv([row]))[1], strict=True))
    assert cells["approval_id"] == ""
    assert cells["legal_reference"] == "Subpoena 17/2025"


def test_times_are_utc_z() -> None:
    at = datetime(2025, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert parse(to_csv([make_row(created_at=at)]))[1][1] == "2025-03-01T12:00:00Z"
    with pytest.raises(ValueError):
        to_csv([make_row(created_at=datetime(2025, 3, 1, 12, 0))])


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("\0cmd", "'\0cmd"),
        ("Acme = ISP", "Acme = ISP"),
        ("O'Brien, Legal", "O'Brien, Legal"),
        ("", ""),
    ],
)
def test_formula_cells_are_escaped(value: str, cell: str) -> None:
    assert escape_cell(value) == cell
    rows = parse(to_csv([make_row(recipient_name=value, recipient_contact_email=value, legal_reference=value)]))
    for column in ("recipient_name", "recipient_contact_email", "legal_reference"):
        assert rows[1][LEDGER_CSV_COLUMNS.index(column)] == cell


# OWASP's CSV-injection list (= + - @, tab, carriage return) and ASVS 1.2.10's NUL.
TRIGGERS = ["=", "+", "-", "@", "\t", "\r", "\0"]


@pytest.mark.parametrize("trigger", TRIGGERS, ids=["equals", "plus", "minus", "at", "tab", "cr", "nul"])
@pytest.mark.parametrize("column", LEDGER_CSV_COLUMNS)
def test_every_column_escapes_every_trigger(column: str, trigger: str) -> None:
    value = f'{trigger}HYPERLINK("http://evil")'
    row = make_row(**{column: [value, "zz"] if column == "information_categories" else value})
    expected = "'" + value + (";zz" if column == "information_categories" else "")

    exported = parse(to_csv([row]))[1]

    cells = dict(zip(LEDGER_CSV_COLUMNS, exported, strict=True))
    assert cells[column] == expected
    # No other cell changed, and none starts with a trigger.
    untouched = dict(zip(LEDGER_CSV_COLUMNS, parse(to_csv([make_row()]))[1], strict=True))
    assert {k: v for k, v in cells.items() if k != column} == {k: v for k, v in untouched.items() if k != column}
    assert not any(cell.startswith(tuple(TRIGGERS)) for cell in exported)


def test_escaping_applies_to_every_column() -> None:
    row = make_row(disclosed_by="=cmd|' /C calc'!A0", information_categories=["-x"], party_category="@x")
    cells = dict(zip(LEDGER_CSV_COLUMNS, parse(to_csv([row]))[1], strict=True))
    assert cells["disclosed_by"] == "'=cmd|' /C calc'!A0"
    assert cells["information_categories"] == "'-x"
    assert cells["party_category"] == "'@x"


def test_quotes_commas_and_newlines_round_trip() -> None:
    name = 'Acme "Fibre", Inc.\nNOC'
    rows = parse(to_csv([make_row(recipient_name=name)]))
    assert len(rows) == 2
    assert rows[1][LEDGER_CSV_COLUMNS.index("recipient_name")] == name


def test_missing_column_is_refused_and_extra_keys_ignored() -> None:
    row = make_row()
    del row["legal_reference"]
    with pytest.raises(ValueError, match="legal_reference"):
        to_csv([row])
    assert parse(to_csv([make_row(client_name="Acme")]))[0] == list(LEDGER_CSV_COLUMNS)


def test_many_rows_keep_order() -> None:
    rows = [make_row(disclosure_id=UUID(int=i)) for i in range(1, 6)]
    parsed = parse(to_csv(rows))
    assert [r[0] for r in parsed[1:]] == [str(UUID(int=i)) for i in range(1, 6)]
