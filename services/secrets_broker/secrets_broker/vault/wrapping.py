"""Wrapping tokens at Vault: look one up (never consumes it) and unwrap it (consumes it, once).

Neither call needs the broker's own Vault token: a lookup is anonymous and an unwrap authenticates
with the wrapping token alone. So unwrap keeps working for the recipient even while the API's
AppRole token is being renewed, and no broker policy is involved in handing out plaintext.
Vault answers the same 400 for a used, a revoked, an expired and an unknown token; both calls map
it to `None` ("gone"), and every other failure to the gateway's 503 errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import hvac

from secrets_broker.settings import get_settings
from secrets_broker.vault.errors import VaultDenied, VaultRejected, VaultUnreachable, translate
from secrets_broker.vault.session import http_session, hvac_client


@dataclass(frozen=True)
class WrapLookup:
    """What Vault says about a live wrapping token (nothing secret)."""

    creation_path: str
    creation_ttl: int


class WrapClient:
    """Looks up and unwraps response-wrapping tokens over a pooled, proxy-free session."""

    def __init__(self, *, addr: str, timeout_s: float = 2.5, pool_size: int = 40) -> None:
        self.addr = addr.rstrip("/")
        self._timeout_s = timeout_s
        self._session = http_session(pool_size)

    def _client(self, token: str) -> hvac.Client:
        return hvac_client(self.addr, token, timeout_s=self._timeout_s, session=self._session)

    def lookup(self, token: str) -> WrapLookup | None:
        """The token's creation path and TTL, or None when Vault says it is gone."""
        try:
            resp = translate(lambda: self._client("").write_data("sys/wrapping/lookup", data={"token": token}))
        except (VaultRejected, VaultDenied):
            return None
        data = (resp or {}).get("data") if isinstance(resp, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("creation_path"), str):
            raise VaultUnreachable("malformed wrapping lookup")
        return WrapLookup(creation_path=data["creation_path"], creation_ttl=int(data.get("creation_ttl") or 0))

    def unwrap(self, token: str) -> dict[str, Any] | None:
        """The wrapped response (consuming the token), or None when Vault says it is gone."""
        try:
            resp = translate(lambda: self._client(token).write_data("sys/wrapping/unwrap"))
        except (VaultRejected, VaultDenied):
            # A garbage token can be refused with 403 rather than 400: gone either way.
            return None
        if not isinstance(resp, dict):
            raise VaultUnreachable("malformed unwrap response")
        return resp


def secret_of(response: dict[str, Any] | None) -> str | None:
    """The `secret` of an unwrapped KV v2 read (`{"data": {"data": {"secret", ...}}}`), or None."""
    data = response.get("data") if isinstance(response, dict) else None
    inner = data.get("data") if isinstance(data, dict) else None
    secret = inner.get("secret") if isinstance(inner, dict) else None
    return secret if isinstance(secret, str) else None


@lru_cache
def get_wraps() -> WrapClient:
    """The process's wrapping-token client (lookup and unwrap need no broker token)."""
    settings = get_settings()
    return WrapClient(addr=settings.vault_addr, timeout_s=settings.vault_timeout_s, pool_size=settings.vault_pool_size)
