"""Shared field types and base models: bodies refuse unknown fields, times render in UTC with `Z`."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Final

from pydantic import AfterValidator, Field, StringConstraints, WithJsonSchema

from mspkit.patterns import described, words_for
from mspkit.schemas import Input, Output, UtcDatetime, utcnow  # noqa: F401 - re-exported for the service

# PostgreSQL text cannot hold NUL, C0/C1 controls are never meant; the schema says so much.
NO_CONTROLS = described(r"^[^\x00-\x1f\x7f-\x9f]*$", "must not contain control characters")

# Letters and digits of any script (Python's Unicode `\w`), the combining diacritical marks, this
# punctuation, and inner ASCII spaces; nothing else (no controls, bidi overrides, zero-width or other
# spaces). The rule is one Python regular expression, published as the field's `pattern` and
# checked with that same engine, so the OpenAPI schema and the server agree on every string (pydantic's
# own pattern engine reads `\w` differently). The length is checked before NFC, the pattern after it:
# an NFD name from a Mac keyboard is stored composed.
_MARKS: Final = r"\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
NAME_PUNCTUATION: Final = "-_.,:;@#&()+/'"
USERNAME_PUNCTUATION: Final = NAME_PUNCTUATION + "!$%*=?^~\\[]{}|"


def _nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)


def label_pattern(punctuation: str) -> str:
    """A regex for a label: allowed characters, inner spaces, never a space at either end."""
    body = "\\w" + _MARKS + re.sub(r"([\\\]\[^-])", r"\\\1", punctuation)
    return described(
        f"^(?:[{body}](?:[{body} ]*[{body}])?)?$",
        f"may hold only letters, digits, inner spaces and these characters: {' '.join(punctuation)}",
    )


def _charset(punctuation: str) -> AfterValidator:
    regex = label_pattern(punctuation)
    pattern = re.compile(regex)

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(words_for(regex))
        return value

    return AfterValidator(check)


def _schema(punctuation: str, *, min_length: int) -> WithJsonSchema:
    return WithJsonSchema(
        {"type": "string", "minLength": min_length, "maxLength": 200, "pattern": label_pattern(punctuation)}
    )


SafeName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    AfterValidator(_nfc),
    _charset(NAME_PUNCTUATION),
    _schema(NAME_PUNCTUATION, min_length=1),
]
SafeUsername = Annotated[
    str,
    StringConstraints(max_length=200),
    AfterValidator(_nfc),
    _charset(USERNAME_PUNCTUATION),
    _schema(USERNAME_PUNCTUATION, min_length=0),
]
# http(s) only, and no userinfo: a URL must never smuggle a password into the metadata.
HttpUrl = Annotated[
    str,
    Field(
        min_length=8,
        max_length=2048,
        pattern=described(
            r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[^\s\x00-\x1f\x7f]*)?$",
            "must be an http or https address without a user name or password",
        ),
    ),
]
Reason = Annotated[str, Field(max_length=1000, pattern=NO_CONTROLS)]
