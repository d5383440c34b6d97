"""Reveal shapes: the request holds the mailed reveal code; the answer is unwrap's (`Revealed`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from mspkit.patterns import TOKEN_CHARS
from secrets_broker.common.types import Input
from secrets_broker.unwrap.schemas import Revealed

__all__ = ["RevealCode", "RevealRequest", "Revealed"]

# A code is 43 URL-safe characters (`secrets.token_urlsafe(32)`). A link mailed before reveal codes
# existed carries a wrapping token ("s.…", "hvs.…"), which is that release's code now, hence the dot.
# Anything else is refused here, so no odd byte reaches the HMAC or the logs.
RevealCode = Annotated[str, Field(min_length=20, max_length=512, pattern=TOKEN_CHARS)]


class RevealRequest(Input):
    """`POST /v1/reveal`."""

    code: RevealCode
