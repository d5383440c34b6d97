"""A run's vendor keys: each account's released once, in a background thread, possibly ahead of its step.

A step's key is asked for when the step opens its vendor's adapter. The job also asks for the next
step's key as soon as the step before it has passed its gates (its disclosure ledgered, its own key in
hand) and starts calling its vendor, so that release overlaps the vendor's answer instead of following
it (docs/benchmarks.md, provisioning). A key asked for ahead and never used, because the step before
failed, is dropped with the run; its release is audited at the broker like any other.
"""

from __future__ import annotations

import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from vendor_sync.provisioning.accounts import Account
from vendor_sync.sync.vendor_keys import VendorKey
from vendor_sync.sync.vendors import release_key


class Release(Protocol):
    """release_key's shape (sync/vendors.py)."""

    def __call__(
        self,
        adapter: str,
        *,
        vendor_account_id: uuid.UUID,
        credential_id: uuid.UUID | None,
        job_id: str,
        task_id: uuid.UUID | None = None,
    ) -> VendorKey: ...


class KeyRing:
    """The keys of one run of one task, held in memory until `close`."""

    def __init__(self, *, job_id: str, task_id: uuid.UUID, release: Release = release_key) -> None:
        self.job_id, self._task_id, self._release = job_id, task_id, release
        # One thread: releases of one task queue on the task's lock at the broker anyway.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="key-release")
        self._keys: dict[uuid.UUID, Future[VendorKey]] = {}

    def ask(self, account: Account) -> None:
        """Start releasing the account's key, unless it was asked for already."""
        if account.id not in self._keys:
            self._keys[account.id] = self._pool.submit(
                self._release,
                account.adapter,
                vendor_account_id=account.id,
                credential_id=account.credential_id,
                job_id=self.job_id,
                task_id=self._task_id,
            )

    def key(self, account: Account) -> VendorKey:
        """The account's key (KeyRefused or KeyUnavailable as the release raised them)."""
        self.ask(account)
        return self._keys[account.id].result()

    def close(self) -> None:
        """Wait for a release under way and drop every key."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._keys.clear()
