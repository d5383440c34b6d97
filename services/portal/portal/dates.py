"""Times from the APIs as people read them (`6 December 2026, 01:52 UTC`): the `when` filter of every page."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Final

MONTHS: Final = "January February March April May June July August September October November December".split()


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time (a `Z` suffix too) as a datetime, or None when it is empty or not a time."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def day(moment: date) -> str:
    """A date as `6 December 2026`."""
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}"


def when(value: Any) -> str:
    """A time as `6 December 2026, 01:52 UTC`; empty stays empty, anything not a time is shown as given."""
    moment = parse_time(value)
    if moment is None:
        return "" if value is None else str(value)
    # The APIs answer in UTC; a time without an offset is taken as UTC too.
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    return f"{day(moment)}, {moment:%H:%M} UTC"
