"""A run's key ring: each account's key released once, in the background, errors kept for the step that uses it."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from vendor_sync.provisioning.accounts import Account
from vendor_sync.provisioning.keyring import KeyRing
from vendor_sync.sync.vendor_keys import KeyRefused, VendorKey

TASK = uuid.uuid4()


def _account(adapter: str = "cloudflare", credential: uuid.UUID | None = None) -> Account:
    return Account(
        id=uuid.uuid4(),
        client_id=uuid.uuid4(),
        account_number="1",
        credential_id=credential or uuid.uuid4(),
        vendor_id=uuid.uuid4(),
        vendor_name=adapter,
        kind="dns_host",
        adapter=adapter,
    )


class Releases:
    """Records each release asked of the broker; a release may be held until the test lets it go."""

    def __init__(self, refuse: set[uuid.UUID] | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.refuse = refuse or set()
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, adapter: str, **kwargs: Any) -> VendorKey:
        self.gate.wait(5)
        self.calls.append({"adapter": adapter, **kwargs})
        if kwargs["vendor_account_id"] in self.refuse:
            raise KeyRefused("key_task_not_in_scope")
        return VendorKey(f"secret-of-{kwargs['credential_id']}")


def test_a_key_asked_for_ahead_and_then_used_is_released_once_for_the_job_and_task() -> None:
    releases = Releases()
    ring = KeyRing(job_id="job-1", task_id=TASK, release=releases)
    account = _account()
    ring.ask(account)
    ring.ask(account)
    key = ring.key(account)
    ring.close()
    assert key.secret == f"secret-of-{account.credential_id}"
    assert releases.calls == [
        {
            "adapter": "cloudflare",
            "vendor_account_id": account.id,
            "credential_id": account.credential_id,
            "job_id": "job-1",
            "task_id": TASK,
        }
    ]


def test_asking_ahead_does_not_wait_for_the_release() -> None:
    releases = Releases()
    releases.gate.clear()
    ring = KeyRing(job_id="job-1", task_id=TASK, release=releases)
    account = _account()
    ring.ask(account)  # returns with the release still held at the "broker"
    assert releases.calls == []
    releases.gate.set()
    assert ring.key(account).secret == f"secret-of-{account.credential_id}"
    ring.close()


def test_a_refused_release_raises_for_the_step_that_uses_the_key_and_only_for_it() -> None:
    refused, fine = _account(), _account("mailchannels")
    ring = KeyRing(job_id="job-1", task_id=TASK, release=Releases(refuse={refused.id}))
    ring.ask(refused)
    assert ring.key(fine).secret == f"secret-of-{fine.credential_id}"
    with pytest.raises(KeyRefused) as raised:
        ring.key(refused)
    assert raised.value.code == "key_task_not_in_scope"
    ring.close()


def test_closing_waits_for_a_release_under_way_and_drops_every_key() -> None:
    releases = Releases()
    releases.gate.clear()
    ring = KeyRing(job_id="job-1", task_id=TASK, release=releases)
    account = _account()
    ring.ask(account)
    threading.Timer(0.05, releases.gate.set).start()
    ring.close()
    assert len(releases.calls) == 1
    # The key is gone with the run: a closed ring neither hands it out nor releases it again.
    with pytest.raises(RuntimeError):
        ring.key(account)
    assert len(releases.calls) == 1
