"""Unwrap and reveal shapes: the request holds the wrapping token, the answer the plaintext."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field

from secrets_broker.common.types import Input, Output

# Vault/OpenBao wrapping tokens are short printable strings ("s.…", "hvs.…"); anything else is
# refused by the schema, so no odd byte reaches the HMAC, the logs or Vault.
WrapToken = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[A-Za-z0-9._\-]+$")]


class UnwrapRequest(Input):
    """`POST /v1/unwrap` and `POST /v1/reveal`."""

    wrap_token: WrapToken


class Revealed(Output):
    """200 of `POST /v1/unwrap` and `POST /v1/reveal`: the plaintext, sent once with no-store."""

    credential_id: uuid.UUID
    name: str
    username: str
    secret: str = Field(repr=False)
    url: str | None
