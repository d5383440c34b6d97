"""A vendor account's API key for one job: released by the broker, unwrapped at Vault, held in memory.

The key is never put in a Celery message, Redis, the database or a log: the job asks the broker
(`POST /internal/service-releases`, audited there) for a single-use wrapping token, unwraps it at Vault
with that token alone, and keeps the plaintext in a `VendorKey` that refuses to be printed or pickled.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NoReturn

import httpx

from mspkit.service_tokens import ServiceClient, token_source
from vendor_sync.settings import Settings, get_settings

TIMEOUT_S = 5.0


class KeyUnavailable(Exception):
    """The key could not be had now (broker or Vault unreachable, slow or garbled): retry later."""


class KeyRefused(Exception):
    """No key can be had for this job (no adapter, no key, the broker's refusal): retrying will not help.

    `code` is the sync run's error, e.g. `no_api_key`, `key_release_denied`, `key_not_this_accounts`.
    """

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class VendorKey:
    """A vendor credential's username (if any) and secret, for one job; never shown, never pickled."""

    __slots__ = ("_secret", "username")

    def __init__(self, secret: str, username: str | None = None) -> None:
        self._secret = secret
        self.username = username

    @property
    def secret(self) -> str:
        """The plaintext secret, for the adapter's constructor only."""
        return self._secret

    def __repr__(self) -> str:
        return "<VendorKey redacted>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a vendor key is held in memory for one job only and is never pickled")


@dataclass(frozen=True)
class KeySource:
    """Releases and unwraps vendor keys as `svc:vendor_sync`."""

    broker: ServiceClient
    vault_addr: str
    # The process's pooled client for unwrapping: a client per unwrap built a TLS context each time
    # (~15 ms of CPU in the job's critical path). No default auth header: each call sends its own token.
    vault: httpx.Client

    def fetch(
        self, *, credential_id: uuid.UUID, vendor_account_id: uuid.UUID, job_id: str, task_id: uuid.UUID | None = None
    ) -> VendorKey:
        """The account's key, released for this job and unwrapped at once, with its username (metadata).

        A provisioning job names its task: the broker then checks it live (in progress for
        `svc:vendor_sync`, same client and account) before releasing.
        """
        username = self._username(credential_id, vendor_account_id)
        body = {"credential_id": str(credential_id), "vendor_account_id": str(vendor_account_id), "job_id": job_id}
        if task_id is not None:
            body["task_id"] = str(task_id)
        try:
            answer = self.broker.post("/internal/service-releases", json=body)
        except httpx.HTTPError as exc:
            raise KeyUnavailable(f"broker unreachable ({type(exc).__name__})") from None
        if answer.status_code in (403, 404, 422):
            raise KeyRefused(f"key_{_error_code(answer) or answer.status_code}")
        if answer.status_code != 201:
            raise KeyUnavailable(f"broker answered {answer.status_code}")
        try:
            wrap_token = str(answer.json()["wrap_token"])
        except (ValueError, KeyError, TypeError):
            raise KeyUnavailable("broker's release is malformed") from None
        return VendorKey(self._unwrap(wrap_token), username)

    def _username(self, credential_id: uuid.UUID, vendor_account_id: uuid.UUID) -> str | None:
        # The username is the credential's metadata (Vault holds only the secret): a GoDaddy key, a
        # Namecheap ApiUser. Read first, so a credential of another account is refused before a release.
        try:
            answer = self.broker.get(f"/internal/credentials/{credential_id}")
        except httpx.HTTPError as exc:
            raise KeyUnavailable(f"broker unreachable ({type(exc).__name__})") from None
        if answer.status_code == 404:
            raise KeyRefused("key_not_found")
        if answer.status_code != 200:
            raise KeyUnavailable(f"broker answered {answer.status_code} to the credential read")
        try:
            meta = answer.json()
            kind, account, username = meta["kind"], meta["vendor_account_id"], meta.get("username")
        except (ValueError, KeyError, TypeError):
            raise KeyUnavailable("broker's credential view is malformed") from None
        if kind != "api_key" or account != str(vendor_account_id):
            raise KeyRefused("key_not_this_accounts")
        return username if isinstance(username, str) and username else None

    def _unwrap(self, wrap_token: str) -> str:
        try:
            # Only the wrapping token authenticates this call; Vault answers 400 for a used or revoked one.
            answer = self.vault.post(
                f"{self.vault_addr.rstrip('/')}/v1/sys/wrapping/unwrap", headers={"X-Vault-Token": wrap_token}
            )
        except httpx.HTTPError as exc:
            raise KeyUnavailable(f"vault unreachable ({type(exc).__name__})") from None
        if answer.status_code != 200:
            raise KeyUnavailable(f"vault answered {answer.status_code} to the unwrap")
        try:
            data: Any = answer.json()["data"]["data"]
            secret = data["secret"]
        except (ValueError, KeyError, TypeError):
            raise KeyUnavailable("unwrapped secret is malformed") from None
        if not isinstance(secret, str) or not secret:
            raise KeyRefused("key_empty")
        return secret


def _error_code(response: httpx.Response) -> str | None:
    # The services' error body is flat: {"error": code, "detail", "rule"?}; a refusal's rule says most.
    try:
        body = response.json()
        code = body.get("rule") or body.get("error")
    except (ValueError, AttributeError):
        return None
    return str(code)[:64] if code else None


@lru_cache
def get_key_source() -> KeySource:
    """The process's key source (broker as `svc:vendor_sync`, Vault's address from settings)."""
    settings: Settings = get_settings()
    broker = ServiceClient(
        base_url=settings.secrets_broker_url.rstrip("/"),
        audience="secrets_broker",
        tokens=token_source(settings, timeout_s=TIMEOUT_S),
        timeout_s=TIMEOUT_S,
    )
    vault = httpx.Client(timeout=TIMEOUT_S, follow_redirects=False)
    return KeySource(broker=broker, vault_addr=settings.vault_addr, vault=vault)
