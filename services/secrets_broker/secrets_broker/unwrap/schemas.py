"""Unwrap shapes: the request holds the wrapping token, the answer (also reveal's) the plaintext."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field

from mspkit.patterns import TOKEN_CHARS
from secrets_broker.common.types import Input, Output

# Vault/OpenBao wrapping tokens are short printable strings ("s.…", "hvs.…"); anything else is
# refused by the schema, so no odd byte reaches the HMAC, the logs or Vault.
WrapToken = Annotated[str, Field(min_length=1, max_length=512, pattern=TOKEN_CHARS)]


class UnwrapRequest(Input):
    """`POST /v1/unwrap`."""

    wrap_token: WrapToken


class Revealed(Output):
    """200 of `POST /v1/unwrap` and `POST /v1/reveal`: the plaintext, sent once with no-store."""

    credential_id: uuid.UUID
    name: str
    username: str
    secret: str = Field(repr=False)
    url: str | None
