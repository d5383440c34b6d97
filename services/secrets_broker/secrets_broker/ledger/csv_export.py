"""The disclosure ledger as CSV (`GET /v1/disclosures?format=csv`), with fixed columns."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

# The column order is part of the contract ("fixed columns"): clients' spreadsheets depend on it.
LEDGER_CSV_COLUMNS: Final[tuple[str, ...]] = (
    "disclosure_id",
    "created_at",
    "client_id",
    "task_id",
    "release_id",
    "credential_id",
    "party_category",
    "recipient_name",
    "recipient_contact_email",
    "approval_id",
    "legal_reference",
    "information_categories",
    "disclosed_by",
    # Added with information disclosures (migration 0007), after the columns spreadsheets already read.
    "kind",
    "vendor_id",
)

CATEGORY_SEPARATOR: Final = ";"

# Spreadsheets evaluate a cell starting with these as a formula (OWASP "CSV injection": = + - @,
# tab and carriage return; ASVS 1.2.10 adds NUL).
FORMULA_TRIGGERS: Final = ("=", "+", "-", "@", "\t", "\r", "\0")


def escape_cell(text: str) -> str:
    """Prefix a cell that a spreadsheet would read as a formula with an apostrophe."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column == "information_categories" and not isinstance(value, str):
        # Sorted so the same disclosure always exports the same text.
        return CATEGORY_SEPARATOR.join(sorted(str(item) for item in value))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime in column {column}")
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    # UUIDs, enums and plain strings: their str() is the text the JSON form uses too.
    return str(value)


def to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """Render ledger rows as CSV (header first, CRLF line ends), escaping formula-like cells."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(LEDGER_CSV_COLUMNS)
    for number, row in enumerate(rows):
        missing = [column for column in LEDGER_CSV_COLUMNS if column not in row]
        if missing:
            # A silently empty column would read as "no approval" or "no legal reference".
            raise ValueError(f"ledger row {number} lacks columns: {', '.join(missing)}")
        writer.writerow([escape_cell(_cell(column, row[column])) for column in LEDGER_CSV_COLUMNS])
    return buffer.getvalue()
