"""The audit hash chain: canonical JSON, entry hashes and verification, with no I/O.

Construction (fixed; changing it invalidates every stored chain):

- entry ``i`` (0-based, contiguous) stores ``canonical`` (its canonical JSON text), ``prev_hash``
  (the ``hash`` of entry ``i - 1``, or ``GENESIS_HASH`` for entry 0) and
  ``hash = sha256(ascii(prev_hash) + b"\\n" + utf8(canonical)).hexdigest()`` (lowercase hex).
- The separator cannot occur in a hex hash, so no (prev, text) pair collides with another split.

`verify_chain` walks rows in index order and names the first bad position. It catches an edited
text or hash, a deleted row (a gap in the indices or a prev_hash that no longer links), a reorder
and a forked insert. A rewrite of the whole tail with recomputed hashes links up again; the Vault
anchors catch that (and a truncated tail) through `check_anchor`, or `verify_chain(anchors=...)`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final
from uuid import UUID

GENESIS_HASH: Final = "0" * 64

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class ChainRow:
    """One stored audit entry, as the chain sees it."""

    index: int
    canonical: str
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class Anchor:
    """A (index, hash) head the broker wrote to Vault; the database must never fall behind it."""

    index: int
    hash: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of a verification, shaped like `GET /v1/audit/verify`."""

    ok: bool
    entries: int
    first_bad_index: int | None


def rfc3339(value: datetime) -> str:
    """Format an aware datetime as RFC 3339 UTC with microseconds and a Z suffix."""
    if value.tzinfo is None:
        # A naive time has no defined instant; guessing would make the text depend on the host.
        raise ValueError("naive datetime in audit entry")
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _default(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        # Sets have no order; sort by each member's canonical text so the output is stable.
        return sorted(value, key=canonical_json)
    raise TypeError(f"not serialisable in an audit entry: {type(value).__name__}")


def canonical_json(obj: Any) -> str:
    """Serialise to canonical JSON: sorted keys, no whitespace, UTF-8 text, UUIDs and UTC times as strings."""
    text = json.dumps(
        obj,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_default,
    )
    # A lone surrogate would pass json.dumps but cannot be stored or hashed as UTF-8.
    text.encode("utf-8")
    return text


def entry_hash(prev_hash: str, canonical_text: str) -> str:
    """Return sha256(prev_hash ASCII + b"\\n" + canonical_text UTF-8) as lowercase hex."""
    if not _HEX64.fullmatch(prev_hash):
        raise ValueError("prev_hash must be 64 lowercase hex digits")
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical_text.encode("utf-8"))
    return digest.hexdigest()


def _row_is_good(row: ChainRow, expected_index: int, expected_prev: str) -> bool:
    if row.index != expected_index or row.prev_hash != expected_prev:
        return False
    try:
        return entry_hash(row.prev_hash, row.canonical) == row.hash
    except (ValueError, UnicodeError):
        return False


def verify_chain(entries: Iterable[ChainRow], *, anchors: Iterable[Anchor] = ()) -> VerifyResult:
    """Walk rows in index order and report the 0-based position of the first bad one (None when ok)."""
    anchor_list = list(anchors)
    anchored_indices = {anchor.index for anchor in anchor_list}
    seen_hashes: dict[int, str] = {}
    count = 0
    first_bad: int | None = None
    expected_prev = GENESIS_HASH
    head: ChainRow | None = None
    for position, row in enumerate(entries):
        count += 1
        if first_bad is not None:
            # Keep counting so `entries` reports the whole table, but trust nothing past the break.
            continue
        if not _row_is_good(row, position, expected_prev):
            first_bad = position
            continue
        expected_prev = row.hash
        head = row
        if row.index in anchored_indices:
            seen_hashes[row.index] = row.hash
    if first_bad is None and anchor_list:
        anchor_result = check_anchor(
            None if head is None else head.index,
            None if head is None else head.hash,
            anchor_list,
            hash_at=seen_hashes,
        )
        first_bad = anchor_result.first_bad_index
    return VerifyResult(ok=first_bad is None, entries=count, first_bad_index=first_bad)


def check_anchor(
    head_index: int | None,
    head_hash: str | None,
    anchors: Iterable[Anchor],
    *,
    hash_at: Mapping[int, str] | None = None,
) -> VerifyResult:
    """Check the database head against Vault anchors; `head_index` None means an empty chain.

    Every anchor must be at or below the head, and the entry at each anchored index must carry the
    anchored hash. `hash_at` maps indices below the head to their stored hashes (the service loads
    just the anchored ones); without it only anchors at the head itself can be compared, which is
    weaker, so the service should pass it. On failure `first_bad_index` is:

    - for a truncated tail (an anchor beyond the head): the index just past the database head
      (``head_index + 1``, or 0 for an empty chain), the first entry that should exist and does not;
    - for a hash mismatch: the anchored index whose entry differs;
    - the smallest of these when several anchors fail.

    `entries` is the number of anchors checked.
    """
    anchor_list = list(anchors)
    known = dict(hash_at or {})
    if head_index is not None and head_hash is not None:
        known[head_index] = head_hash
    bad: list[int] = []
    for anchor in anchor_list:
        if head_index is None or anchor.index > head_index:
            bad.append(0 if head_index is None else head_index + 1)
        elif anchor.index in known:
            if known[anchor.index] != anchor.hash:
                bad.append(anchor.index)
        elif hash_at is not None:
            # The caller promised the anchored hashes; one missing means the entry is gone.
            bad.append(anchor.index)
    first_bad = min(bad) if bad else None
    return VerifyResult(ok=first_bad is None, entries=len(anchor_list), first_bad_index=first_bad)
