"""The broker's word on a vendor account's API key: is this credential an `api_key` of this account?

Read live with vendor_sync's token for the broker alone (`GET /internal/credentials/{id}`: metadata,
never a secret). A credential the broker does not know, one of another account or client, and one of
another kind are all a 422 naming `api_key_credential_id`; when the broker does not answer
(unreachable, slow, refused token, garbled answer) the answer is 503, never a guess.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Final, get_args

from mspkit.errors import Unavailable, ValidationFailed
from mspkit.service_tokens import ServiceClient, ServiceTokenSource, token_source
from mspkit.vocabulary import CredentialKind
from vendor_sync.settings import get_settings

TIMEOUT_S: Final = 2.0
FIELD: Final = "api_key_credential_id"
KINDS: Final = frozenset(get_args(CredentialKind))


def _refused(words: str) -> ValidationFailed:
    return ValidationFailed.listing([(FIELD, words)])


class CredentialChecker:
    """Asks the secrets broker about a credential with vendor_sync's service token, within a hard deadline."""

    def __init__(self, *, base_url: str, tokens: ServiceTokenSource, timeout_s: float = TIMEOUT_S) -> None:
        self._http = ServiceClient(
            base_url=base_url.rstrip("/"), audience="secrets_broker", tokens=tokens, timeout_s=timeout_s
        )

    def ensure_api_key_of(self, credential_id: uuid.UUID, *, account_id: uuid.UUID, client_id: uuid.UUID) -> None:
        """Return if the broker holds `credential_id` as an `api_key` of this account; else 422 (503: no answer)."""
        body = self._http.read_json(f"/internal/credentials/{uuid.UUID(str(credential_id))}")
        # One answer for unknown and for someone else's: the id of another account's key says nothing.
        not_ours = _refused("no credential of this vendor account has this id")
        if body is None:
            raise not_ours
        try:
            answered_for = uuid.UUID(str(body["id"]))
            owner = uuid.UUID(str(body["client_id"]))
            raw_account = body["vendor_account_id"]
            account = None if raw_account is None else uuid.UUID(str(raw_account))
            kind = str(body["kind"])
        except (ValueError, KeyError, TypeError):
            raise Unavailable("the broker's credential view is malformed") from None
        if answered_for != credential_id:
            raise Unavailable("the broker answered for another credential")
        if account != account_id or owner != client_id:
            raise not_ours
        if kind != "api_key":
            shown = f" (this one is a {kind})" if kind in KINDS else ""
            raise _refused(f"must be a credential of kind api_key{shown}")


@lru_cache
def get_credential_checker() -> CredentialChecker:
    """The process's broker reader, authenticated as `svc:vendor_sync` with a token for the broker alone."""
    settings = get_settings()
    return CredentialChecker(base_url=settings.secrets_broker_url, tokens=token_source(settings, timeout_s=TIMEOUT_S))


def reset_credential_checker() -> None:
    """Forget the process's broker reader (after a fork, or when a test moves the broker)."""
    get_credential_checker.cache_clear()
