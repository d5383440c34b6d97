"""ConnectWise's credentials: Basic `company+publicKey:privateKey` and the `clientId` header, never shown."""

from __future__ import annotations

import base64
import re
from typing import NoReturn

from intake.psa.connectwise_fields import COMPANY

_TOKEN = re.compile(r"[\x21-\x7e]{1,256}")


class Credentials:
    """The Authorization and clientId values, which never show in a repr and are never pickled."""

    __slots__ = ("_authorization", "_client_id", "_secrets")

    def __init__(self, company: str, public_key: str, private_key: str, client_id: str) -> None:
        # Never echo a value: each is (or was meant to be) a secret.
        if not isinstance(company, str) or not COMPANY.fullmatch(company):
            raise ValueError("ConnectWise company id must be 1-64 letters, digits, '.', '_' or '-'")
        for what, value in (("public key", public_key), ("private key", private_key), ("clientId", client_id)):
            if not isinstance(value, str) or not _TOKEN.fullmatch(value):
                raise ValueError(f"ConnectWise {what} must be 1-256 printable ASCII characters without spaces")
        if ":" in public_key:
            raise ValueError("ConnectWise public key must not contain ':' (it is the Basic auth user name)")
        token = base64.b64encode(f"{company}+{public_key}:{private_key}".encode()).decode()
        self._authorization = f"Basic {token}"
        self._client_id = client_id
        self._secrets = tuple(sorted({public_key, private_key, client_id, token}, key=len, reverse=True))

    def headers(self) -> dict[str, str]:
        return {"Authorization": self._authorization, "clientId": self._client_id}

    def scrub(self, text: str) -> str:
        # A server that echoes a key (in any case) must not get it into our logs or exceptions.
        for secret in self._secrets:
            text = re.sub(re.escape(secret), "[redacted]", text, flags=re.IGNORECASE)
        return text

    def __repr__(self) -> str:
        return "<ConnectWise credentials redacted>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("ConnectWise credentials stay in this process and are never pickled")
