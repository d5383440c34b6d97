"""Shared field types and base models: bodies refuse unknown fields, times render in UTC with `Z`."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Final

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from mspkit.schemas import Input, Output, UtcDatetime, utcnow  # noqa: F401 - re-exported for the service

# PostgreSQL text cannot hold NUL, C0/C1 controls are never meant; the schema says so much.
NO_CONTROLS = r"^[^\x00-\x1f\x7f-\x9f]*$"

# Letters, marks and digits of any script, the ASCII space, and this punctuation; nothing else
# (no controls, no bidi overrides or zero-width format characters, no other spaces).
NAME_PUNCTUATION: Final = frozenset(" -_.,:;@#&()+/'")
USERNAME_PUNCTUATION: Final = NAME_PUNCTUATION | frozenset("!$%*=?^~\\[]{}|")


def _nfc(value: object) -> object:
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else value


def _charset(allowed: frozenset[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        for char in value:
            category = unicodedata.category(char)
            if category[0] in {"L", "M"} or category == "Nd" or char in allowed:
                continue
            raise ValueError(f"{what} may hold letters, digits, spaces and {''.join(sorted(allowed - {' '}))} only")
        if value != value.strip():
            raise ValueError(f"{what} must not start or end with a space")
        return value

    return AfterValidator(check)


# The constraints come first so they reach the JSON schema; the NFC step still runs before them.
SafeName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=NO_CONTROLS),
    BeforeValidator(_nfc),
    _charset(NAME_PUNCTUATION, "name"),
]
SafeUsername = Annotated[
    str,
    StringConstraints(min_length=0, max_length=200, pattern=NO_CONTROLS),
    BeforeValidator(_nfc),
    _charset(USERNAME_PUNCTUATION, "username"),
]
# http(s) only, and no userinfo: a URL must never smuggle a password into the metadata.
HttpUrl = Annotated[
    str,
    Field(min_length=8, max_length=2048, pattern=r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?(/[^\s\x00-\x1f\x7f]*)?$"),
]
Reason = Annotated[str, Field(max_length=1000, pattern=NO_CONTROLS)]
