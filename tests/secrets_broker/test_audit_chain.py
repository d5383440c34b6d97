"""Unit tests for the pure audit hash chain: canonical JSON, hashing, verification and anchors."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest

from secrets_broker.audit.chain import (
    GENESIS_HASH,
    Anchor,
    ChainRow,
    VerifyResult,
    canonical_json,
    check_anchor,
    entry_hash,
    verify_chain,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def build_chain(n: int) -> list[ChainRow]:
    """A valid chain of n entries, as the writer would store them."""
    rows: list[ChainRow] = []
    prev = GENESIS_HASH
    for i in range(n):
        text = canonical_json(
            {
                "action": "release.granted" if i % 2 else "release.denied",
                "actor": f"tech-{i % 3}",
                "task_id": UUID(int=i + 1),
                "rule": None if i % 2 else "out_of_scope",
                "created_at": T0 + timedelta(seconds=i),
            }
        )
        digest = entry_hash(prev, text)
        rows.append(ChainRow(index=i, canonical=text, prev_hash=prev, hash=digest))
        prev = digest
    return rows


def renumber(rows: list[ChainRow]) -> list[ChainRow]:
    """What `ORDER BY index` returns after SQL moved rows: positions follow the stored index."""
    return sorted(rows, key=lambda r: r.index)


# --- canonical JSON -----------------------------------------------------------------------------


def test_canonical_json_is_sorted_compact_and_utf8() -> None:
    text = canonical_json({"b": 1, "a": {"d": [1, 2], "c": "Zürich ✓"}, "e": None, "f": True})
    assert text == '{"a":{"c":"Zürich ✓","d":[1,2]},"b":1,"e":null,"f":true}'


def test_canonical_json_serialises_uuid_and_times_as_utc_z() -> None:
    plus_two = timezone(timedelta(hours=2))
    text = canonical_json(
        {
            "id": UUID("12345678-1234-5678-1234-567812345678"),
            "at": datetime(2025, 3, 1, 14, 0, 0, 5, tzinfo=plus_two),
            "set": frozenset({"b", "a"}),
        }
    )
    assert text == '{"at":"2025-03-01T12:00:00.000005Z","id":"12345678-1234-5678-1234-567812345678","set":["a","b"]}'


def test_canonical_json_is_independent_of_insertion_order() -> None:
    assert canonical_json({"x": 1, "y": 2}) == canonical_json({"y": 2, "x": 1})


@pytest.mark.parametrize(
    "bad",
    [
        {"at": datetime(2025, 3, 1, 12, 0)},  # naive
        {"n": float("nan")},
        {"o": object()},
        {"s": "\ud800"},  # lone surrogate: not UTF-8
    ],
)
def test_canonical_json_refuses_ambiguous_values(bad: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        canonical_json(bad)


# --- entry hash ---------------------------------------------------------------------------------


def test_entry_hash_construction_is_pinned() -> None:
    text = '{"a":"ü"}'
    expected = hashlib.sha256(GENESIS_HASH.encode() + b"\n" + text.encode("utf-8")).hexdigest()
    assert entry_hash(GENESIS_HASH, text) == expected
    assert GENESIS_HASH == "0" * 64
    # A known answer, so a change of construction shows up even if both sides above change.
    assert entry_hash(GENESIS_HASH, "{}") == hashlib.sha256(b"0" * 64 + b"\n{}").hexdigest()


@pytest.mark.parametrize("prev", ["", "0" * 63, "0" * 65, "G" * 64, "A" * 64])
def test_entry_hash_refuses_a_malformed_prev_hash(prev: str) -> None:
    with pytest.raises(ValueError):
        entry_hash(prev, "{}")


# --- verify_chain -------------------------------------------------------------------------------


def test_ok_chain() -> None:
    assert verify_chain(build_chain(10)) == VerifyResult(ok=True, entries=10, first_bad_index=None)


def test_empty_chain_is_ok() -> None:
    assert verify_chain([]) == VerifyResult(ok=True, entries=0, first_bad_index=None)


@pytest.mark.parametrize("k", [0, 3, 9])
def test_edited_text_is_detected_at_its_index(k: int) -> None:
    rows = build_chain(10)
    rows[k] = dataclasses.replace(rows[k], canonical=rows[k].canonical.replace("tech-", "evil-"))
    assert verify_chain(rows) == VerifyResult(ok=False, entries=10, first_bad_index=k)


def test_edited_text_with_recomputed_hash_breaks_the_next_link() -> None:
    rows = build_chain(10)
    text = rows[4].canonical.replace("tech-", "evil-")
    rows[4] = dataclasses.replace(rows[4], canonical=text, hash=entry_hash(rows[4].prev_hash, text))
    assert verify_chain(rows).first_bad_index == 5


def test_edited_hash_or_prev_hash_is_detected() -> None:
    rows = build_chain(5)
    rows[2] = dataclasses.replace(rows[2], hash="f" * 64)
    assert verify_chain(rows).first_bad_index == 2
    rows = build_chain(5)
    rows[3] = dataclasses.replace(rows[3], prev_hash="not hex")
    assert verify_chain(rows).first_bad_index == 3


@pytest.mark.parametrize("k", [0, 4, 8])
def test_deleted_entry_is_detected_at_its_index(k: int) -> None:
    rows = build_chain(10)
    del rows[k]
    assert verify_chain(rows) == VerifyResult(ok=False, entries=9, first_bad_index=k)


def test_deleted_entry_with_renumbered_tail_is_detected() -> None:
    # SQL deletes entry 4 and shifts later indices down to hide the gap: the link still breaks.
    rows = build_chain(10)
    del rows[4]
    rows = [dataclasses.replace(r, index=i) for i, r in enumerate(rows)]
    assert verify_chain(rows).first_bad_index == 4


def test_deleting_the_last_entry_alone_needs_the_anchor() -> None:
    rows = build_chain(10)
    anchor = Anchor(index=9, hash=rows[9].hash)
    assert verify_chain(rows[:9]).ok  # a shorter chain is self-consistent
    assert verify_chain(rows[:9], anchors=[anchor]) == VerifyResult(ok=False, entries=9, first_bad_index=9)


def test_swapped_rows_are_detected_at_the_first_swapped_position() -> None:
    rows = build_chain(10)
    # UPDATE ... SET index = CASE index WHEN 3 THEN 6 WHEN 6 THEN 3 END
    rows[3], rows[6] = dataclasses.replace(rows[3], index=6), dataclasses.replace(rows[6], index=3)
    assert verify_chain(renumber(rows)) == VerifyResult(ok=False, entries=10, first_bad_index=3)


def test_swapped_contents_are_detected() -> None:
    rows = build_chain(10)
    a, b = rows[5], rows[6]
    rows[5] = dataclasses.replace(b, index=5)
    rows[6] = dataclasses.replace(a, index=6)
    assert verify_chain(rows).first_bad_index == 5


def test_inserted_row_is_detected() -> None:
    rows = build_chain(6)
    forged_text = canonical_json({"action": "release.granted", "actor": "mallory"})
    forged = ChainRow(
        index=3, canonical=forged_text, prev_hash=rows[2].hash, hash=entry_hash(rows[2].hash, forged_text)
    )
    shifted = [dataclasses.replace(r, index=r.index + 1) for r in rows[3:]]
    assert verify_chain([*rows[:3], forged, *shifted]).first_bad_index == 4


def test_chain_not_starting_at_zero_is_bad_at_zero() -> None:
    rows = [dataclasses.replace(r, index=r.index + 1) for r in build_chain(3)]
    assert verify_chain(rows).first_bad_index == 0


def test_counts_all_entries_even_after_the_break() -> None:
    rows = build_chain(7)
    rows[1] = dataclasses.replace(rows[1], canonical="{}")
    rows[5] = dataclasses.replace(rows[5], canonical="{}")
    assert verify_chain(iter(rows)) == VerifyResult(ok=False, entries=7, first_bad_index=1)


def test_chain_break_before_anchor_problem_wins() -> None:
    rows = build_chain(10)
    rows[2] = dataclasses.replace(rows[2], canonical="{}")
    result = verify_chain(rows[:6], anchors=[Anchor(index=9, hash=rows[9].hash)])
    assert result.first_bad_index == 2


# --- anchors ------------------------------------------------------------------------------------


def test_truncated_tail_is_detected_just_past_the_head() -> None:
    rows = build_chain(20)
    anchors = [Anchor(index=9, hash=rows[9].hash), Anchor(index=14, hash=rows[14].hash)]
    # DELETE FROM audit WHERE index > 11
    head = rows[11]
    result = check_anchor(head.index, head.hash, anchors, hash_at={9: rows[9].hash})
    assert result == VerifyResult(ok=False, entries=2, first_bad_index=12)
    assert verify_chain(rows[:12], anchors=anchors).first_bad_index == 12


def test_truncation_to_empty_is_bad_at_zero() -> None:
    rows = build_chain(3)
    anchors = [Anchor(index=2, hash=rows[2].hash)]
    assert check_anchor(None, None, anchors) == VerifyResult(ok=False, entries=1, first_bad_index=0)
    assert verify_chain([], anchors=anchors) == VerifyResult(ok=False, entries=0, first_bad_index=0)


def test_head_at_or_beyond_every_anchor_is_ok() -> None:
    rows = build_chain(20)
    anchors = [Anchor(index=9, hash=rows[9].hash), Anchor(index=19, hash=rows[19].hash)]
    assert check_anchor(19, rows[19].hash, anchors, hash_at={9: rows[9].hash}).ok
    assert verify_chain(rows, anchors=anchors) == VerifyResult(ok=True, entries=20, first_bad_index=None)
    assert check_anchor(19, rows[19].hash, []).ok


def test_rewritten_chain_is_caught_by_the_anchor_hash() -> None:
    # Everything from entry 5 on is rewritten with recomputed hashes: the chain links up again.
    rows = build_chain(12)
    prev = rows[4].hash
    forged: list[ChainRow] = []
    for row in rows[5:]:
        text = row.canonical.replace("tech-", "evil-")
        digest = entry_hash(prev, text)
        forged.append(ChainRow(index=row.index, canonical=text, prev_hash=prev, hash=digest))
        prev = digest
    tampered = rows[:5] + forged
    assert verify_chain(tampered).ok
    anchors = [Anchor(index=7, hash=rows[7].hash)]
    assert verify_chain(tampered, anchors=anchors) == VerifyResult(ok=False, entries=12, first_bad_index=7)
    head = tampered[-1]
    assert check_anchor(head.index, head.hash, anchors, hash_at={7: tampered[7].hash}).first_bad_index == 7


def test_anchor_at_the_head_is_compared_with_the_head_hash() -> None:
    rows = build_chain(5)
    assert check_anchor(4, rows[4].hash, [Anchor(4, rows[4].hash)]).ok
    assert check_anchor(4, "e" * 64, [Anchor(4, rows[4].hash)]).first_bad_index == 4


def test_missing_hash_for_an_anchored_index_is_bad_when_hashes_are_given() -> None:
    rows = build_chain(10)
    assert check_anchor(9, rows[9].hash, [Anchor(3, rows[3].hash)], hash_at={}).first_bad_index == 3
    # Without hash_at only the head can be compared; documented as the weaker check.
    assert check_anchor(9, rows[9].hash, [Anchor(3, rows[3].hash)]).ok


def test_several_failing_anchors_report_the_smallest_index() -> None:
    rows = build_chain(10)
    anchors = [Anchor(8, rows[8].hash), Anchor(2, "d" * 64)]
    assert check_anchor(5, rows[5].hash, anchors, hash_at={2: rows[2].hash}).first_bad_index == 2
