"""What a step works with: the run's ids, the request, intake's task ids, and how to reach vendors and the broker."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection

from vendor_sync.provisioning.accounts import Account
from vendor_sync.provisioning.failures import StepFailed
from vendor_sync.provisioning.keyring import KeyRing
from vendor_sync.provisioning.plans import pick_approval
from vendor_sync.settings import Settings
from vendor_sync.sync.vendors import open_adapter

T = TypeVar("T")
# record_disclosure's shape (provisioning/broker.py): the ledger row's id, or DisclosureRefused.
Discloser = Callable[..., str]


@dataclass
class StepContext:
    """One run's view of its task, shared by its steps."""

    conn: Connection
    run_id: uuid.UUID
    task_id: uuid.UUID
    client_id: uuid.UUID
    job_id: str
    body: dict[str, Any]
    task_view: dict[str, Any]
    settings: Settings
    keys: KeyRing
    discloser: Discloser
    # Set by the job before each step: what it does while the step waits on its vendor (the plan told to
    # intake, the next step's key asked for). Run once, when the step opens its adapter.
    ahead: Callable[[], None] = field(default=lambda: None)

    def read(self, query: Callable[[Connection], T]) -> T:
        """Run registry reads in a short transaction of their own (no lock is held across vendor calls)."""
        with self.conn.begin():
            return query(self.conn)

    def scope_accounts(self) -> list[str]:
        """The vendor account ids in the task's scope, as intake answered the claim."""
        return [str(v) for v in self.task_view.get("vendor_account_ids") or []]

    def disclose(self, account: Account, categories: Sequence[str], step: str) -> str:
        """Ledger what goes to the account's vendor, against the approval naming it (the broker may refuse)."""
        approval_id = pick_approval(self.task_view.get("approvals") or [], str(account.vendor_id))
        if approval_id is None:
            words = f"No approval of this task names {account.vendor_name} as its recipient; nothing was sent."
            raise StepFailed("no_approval_for_vendor", words)
        return self.discloser(
            approval_id=approval_id,
            task_id=self.task_id,
            vendor_id=account.vendor_id,
            categories=list(categories),
            idempotency_key=f"{self.task_id}:{step}:disclosure",
        )

    def adapter(self, account: Account) -> AbstractContextManager[Any]:
        """The account's adapter with its key released for this job and task (closed with the block).

        Past its gates (its disclosure ledgered, its key in hand) the step now calls its vendor; `ahead` runs.
        """
        key = self.keys.key(account)
        ahead, self.ahead = self.ahead, lambda: None
        ahead()
        return open_adapter(account.adapter, key, settings=self.settings)
