"""Where to go after sign-in: a path on this site only."""

from __future__ import annotations

import re

MAX_RETURN_TO = 2000
# One slash then a non-slash, non-backslash: `//host`, `/\host` and `http://` are other sites to a browser.
_LOCAL_PATH = re.compile(r"/(?![/\\])[^\s\\]*")


def safe_return_to(value: str | None) -> str:
    """`value` when it is a relative path on this site (`/x?y`), else `/`."""
    if not value or len(value) > MAX_RETURN_TO or not value.isprintable():
        return "/"
    return value if _LOCAL_PATH.fullmatch(value) else "/"
