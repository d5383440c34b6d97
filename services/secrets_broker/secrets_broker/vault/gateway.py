"""The only door to Vault/OpenBao: wrapped reads, KV v2 writes and patches, revocation and the audit anchor.

`VaultGateway` is a `VaultSession` (AppRole login and token renewal, `vault/session.py`) plus the
calls the broker makes; errors are the `VaultError`s of `vault/errors.py`. Every call is synchronous
and must run in the threadpool, never on the event loop.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final
from uuid import UUID

from secrets_broker.settings import get_settings
from secrets_broker.vault.errors import VaultCasMismatch, VaultNotFound, VaultRejected, VaultUnreachable
from secrets_broker.vault.session import LauncherSecretId, VaultSession

MOUNT: Final = "msp-kv"
ANCHOR_PATH: Final = "broker/audit-anchor"
MIN_WRAP_TTL_S: Final = 1
# KV v2 accepts a PATCH only as a JSON merge patch (RFC 7396).
_MERGE_PATCH: Final = {"Content-Type": "application/merge-patch+json"}


def credential_path(client_id: UUID, credential_id: UUID) -> str:
    """The KV v2 path (below the mount) of one credential: ids only, never names."""
    return f"clients/{UUID(str(client_id))}/credentials/{UUID(str(credential_id))}"


def data_path(path: str) -> str:
    """The full API path of a KV v2 secret (`msp-kv/data/...`), as wrap creation paths name it."""
    return f"{MOUNT}/data/{path}"


@dataclass(frozen=True)
class WrapInfo:
    """A response-wrapping token as Vault returned it (the token is never logged or stored)."""

    token: str = field(repr=False)
    accessor: str = field(repr=False)
    ttl: int
    creation_path: str


class VaultGateway(VaultSession):
    """What the broker asks of Vault, over an AppRole session."""

    def check_ready(self) -> None:
        """Raise unless the gateway is logged in and Vault is unsealed and accepts the token."""
        # Through `_call`: a revoked token found here starts the re-login (or restart) at once.
        self._call(lambda c: c.auth.token.lookup_self())

    def wrapped_read(self, path: str, *, ttl_s: int) -> WrapInfo:
        """Read a KV v2 secret as a response-wrapping token; the broker never sees the plaintext."""
        full = data_path(path)
        resp = self._call(lambda c: c.read(full, wrap_ttl=f"{max(MIN_WRAP_TTL_S, int(ttl_s))}s"))
        if resp is None:
            # The metadata says the credential exists, so this is Vault's data loss (or a wiped store), not
            # an outage: say so, still as 503 (nothing the caller can fix; an operator must restore it).
            raise VaultNotFound("the secret of this credential is missing at Vault")
        wrap = resp.get("wrap_info") if isinstance(resp, dict) else None
        if not wrap or not wrap.get("token") or not wrap.get("accessor"):
            raise VaultUnreachable("Vault did not wrap the response")
        info = WrapInfo(
            token=str(wrap["token"]),
            accessor=str(wrap["accessor"]),
            ttl=int(wrap.get("ttl") or 0),
            creation_path=str(wrap.get("creation_path") or ""),
        )
        if info.creation_path != full:
            raise VaultRejected("wrapped response for an unexpected path")
        return info

    def revoke_accessor(self, accessor: str) -> bool:
        """Revoke the token behind an accessor (revoker role only); False when no such token is left."""
        resp = self._call(lambda c: c.auth.token.revoke_accessor(accessor))
        # 204 when revoked; 200 with a warning when the token is already gone (used, expired).
        warnings = resp.get("warnings") if isinstance(resp, dict) else None
        return not warnings

    def exists(self, path: str) -> bool:
        """Whether a secret is stored at the path, learnt through a 1 s wrapped read (no plaintext)."""
        try:
            self.wrapped_read(path, ttl_s=MIN_WRAP_TTL_S)
        except VaultNotFound:
            return False
        return True

    def create_secret(self, path: str, data: dict[str, str]) -> int:
        """Write the first version with cas=0 (never overwrites); returns the version."""
        resp = self._call(
            lambda c: c.secrets.kv.v2.create_or_update_secret(path=path, secret=data, cas=0, mount_point=MOUNT)
        )
        return int(resp["data"]["version"])

    def patch_secret(self, path: str, fields: dict[str, str]) -> int:
        """Merge `fields` into a new version (rotation) by an HTTP PATCH; returns the new version.

        A JSON merge patch: Vault keeps the fields not named (the notes, unless replaced) without
        sending them to the broker. hvac's `kv.v2.patch` is not used: it reads the secret in
        plaintext and writes it back. A path with no secret is `VaultNotFound`.
        """
        url = f"/v1/{data_path(path)}"
        body = {"data": fields}
        resp = self._call(lambda c: c.adapter.request("PATCH", url, json=body, headers=_MERGE_PATCH))
        if not isinstance(resp, dict):
            raise VaultUnreachable("Vault did not confirm the new version")
        return int(resp["data"]["version"])

    # ---- audit anchor ----

    def _anchor_current_version(self) -> int:
        try:
            meta = self._call(lambda c: c.secrets.kv.v2.read_secret_metadata(path=ANCHOR_PATH, mount_point=MOUNT))
        except VaultNotFound:
            return 0
        return int(meta["data"].get("current_version") or 0)

    def _anchor_version(self, version: int) -> dict[str, Any] | None:
        try:
            resp = self._call(
                lambda c: c.secrets.kv.v2.read_secret_version(
                    path=ANCHOR_PATH, version=version, mount_point=MOUNT, raise_on_deleted_version=True
                )
            )
        except VaultNotFound:
            return None
        return dict(resp["data"]["data"])

    def read_anchors(self) -> list[dict[str, Any]]:
        """Every anchor version Vault still keeps (KV v2 keeps the last `max_versions`), oldest first."""
        try:
            meta = self._call(lambda c: c.secrets.kv.v2.read_secret_metadata(path=ANCHOR_PATH, mount_point=MOUNT))
        except VaultNotFound:
            return []
        anchors = []
        for key, info in sorted((meta["data"].get("versions") or {}).items(), key=lambda kv: int(kv[0])):
            if info.get("destroyed") or info.get("deletion_time"):
                continue
            data = self._anchor_version(int(key))
            if data is not None:
                anchors.append(data)
        return anchors

    def write_anchor(self, *, index: int, hash_: str, anchored_at: str) -> bool:
        """Anchor the chain head with check-and-set; never moves the anchor backwards. True if written."""
        current = self._anchor_current_version()
        if current:
            latest = self._anchor_version(current)
            if latest is not None and int(latest.get("index", -1)) >= index:
                return False
        try:
            self._call(
                lambda c: c.secrets.kv.v2.create_or_update_secret(
                    path=ANCHOR_PATH,
                    secret={"index": index, "hash": hash_, "anchored_at": anchored_at},
                    cas=current,
                    mount_point=MOUNT,
                )
            )
        except VaultCasMismatch:
            return False
        return True


def _restart_process() -> None:
    # supervisor restarts us through the launcher, which mints a fresh wrapped secret id.
    os.kill(os.getpid(), signal.SIGTERM)


@lru_cache
def get_gateway() -> VaultGateway:
    """The process's Vault gateway (logs in lazily with the launcher's wrapped secret id)."""
    settings = get_settings()
    role_id = settings.vault_role_id.get_secret_value() if settings.vault_role_id else None
    wrapped = settings.vault_wrapped_secret_id.get_secret_value() if settings.vault_wrapped_secret_id else None
    return VaultGateway(
        addr=settings.vault_addr,
        role=settings.vault_role,
        source=LauncherSecretId(role_id, wrapped),
        timeout_s=settings.vault_timeout_s,
        pool_size=settings.vault_pool_size,
        renew_check_s=settings.vault_renew_check_s,
        # Only a process the launcher started can be restarted into a fresh secret id.
        on_token_lost=_restart_process if settings.vault_restart_on_token_loss and wrapped else None,
    )
