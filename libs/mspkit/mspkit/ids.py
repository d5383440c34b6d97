"""Row and event ids: UUIDv7 (RFC 9562), time-ordered so that new keys land at the end of their indexes.

With random (v4) ids every insert touches a random leaf page of each id index: under write load the
working set is the whole index, and after each checkpoint nearly every insert writes a full-page
image to the WAL. v7 ids keep inserts on the rightmost pages. They still carry 74 random bits, so
they cannot be guessed; access is decided by authorization, never by an id being secret. The
creation time they reveal is already public as `created_at`.
"""

from __future__ import annotations

import uuid

from uuid_utils.compat import uuid7


def new_id() -> uuid.UUID:
    """A new time-ordered id (a standard `uuid.UUID`, version 7)."""
    return uuid7()
