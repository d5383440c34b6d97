"""Every regular expression that constrains API input, with the plain words a refusal says instead.

A field declares its pattern through `described(regex, words)`: the regex goes to pydantic and the
OpenAPI schema as before, and the words are what `mspkit.errors` puts in a 422 when the value does not
match (pydantic's own message quotes the regex, which tells a caller nothing). Words complete the field
name: "code: may contain only letters, digits, '.', '_' and '-'".
"""

from __future__ import annotations

from typing import Final

_WORDS: dict[str, str] = {}

# Said for a pattern nobody described; a test keeps every pattern in the OpenAPI described.
UNDESCRIBED: Final = "is not in the accepted form"


def described(pattern: str, words: str) -> str:
    """Record the words that describe `pattern` and return the pattern, for `pattern=` in a field."""
    known = _WORDS.setdefault(pattern, words)
    if known != words:
        # One regex, one meaning: two descriptions would make the same refusal read differently.
        raise ValueError(f"pattern already described as {known!r}")
    return pattern


def words_for(pattern: str) -> str:
    """The words for `pattern`, never the regex itself."""
    return _WORDS.get(pattern, UNDESCRIBED)


def described_patterns() -> dict[str, str]:
    """Every described pattern and its words (for tests and docs)."""
    return dict(_WORDS)


# Shared shapes, used by more than one service.
NO_NUL: Final = described(r"^[^\x00]*$", "must not contain a NUL character")
TOKEN_CHARS: Final = described(r"^[A-Za-z0-9._\-]+$", "may contain only letters, digits, '.', '_' and '-'")
