"""Drift and expiry become work, on the whole stack as `make up` runs it (slow: every part, real processes).

The registry answers come from vendor_sim (`PUT /_sim/rdap/domains/{name}`); a refresh through
vendor_sync's API records what changed, `vendor_sync.drift.raise_tasks` posts it to intake as a
`drift_review` or `renewal` task (deduplicated), and intake's worker mails MSP_OPS_EMAIL once per task.
Each test uses its own client and a new domain name, so the demo data and the other test add nothing
to what it counts.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

# --import-mode=importlib puts no test dir on sys.path: the full-stack helpers live with the browser tests.
sys.path.insert(0, str(Path(__file__).parents[1] / "browser"))

from browser_helpers import FullStack, fresh_stack, poll

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

# The mspctl dev stack's MSP_OPS_EMAIL (tools/devstack/mspctl/stack.py DEV_OPS_EMAIL), read from its env below.
OPS_EMAIL_SETTING = "MSP_OPS_EMAIL"
# Polling deadlines (not performance bounds): a refresh, the task it raises, the mail that task sends.
RUN_TIMEOUT_S = 60.0
TASK_TIMEOUT_S = 60.0
MAIL_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def stack() -> Iterator[FullStack]:
    with fresh_stack("msp-drift-") as started:
        yield started


class Drift:
    """The stack's APIs as an admin, the simulator's control API and the mail sink."""

    def __init__(self, stack: FullStack) -> None:
        token = stack.token("admin", "drift-admin")
        self.intake = stack.api("intake", token)
        self.vendor_sync = stack.api("vendor_sync", token)
        self.sim = httpx.Client(base_url=stack.urls["vendor_sim"], timeout=30)
        self.mail_url = stack.urls["mail"].rstrip("/") + "/messages.json"
        self.portal = stack.portal
        self.ops_email = stack.env()[OPS_EMAIL_SETTING]
        assert self.ops_email, "the dev stack sets no MSP_OPS_EMAIL"
        self.sentinel: dict[str, Any] | None = None

    def close(self) -> None:
        for client in (self.intake, self.vendor_sync, self.sim):
            client.close()

    def client(self, label: str) -> dict[str, Any]:
        suffix = uuid.uuid4().hex[:8]
        created = self.intake.post(
            "/v1/clients",
            json={
                "name": f"{label} {suffix}",
                "primary_domain": f"{label.lower()}-{suffix}.example.com",
                "approver_emails": [f"boss@{label.lower()}-{suffix}.example.com"],
                "purchase_approval_threshold_cents": 0,
            },
        )
        assert created.status_code == 201, created.text
        return created.json()

    def registry(self, name: str, **change: Any) -> None:
        """What the simulated registry answers for `name` from now on."""
        put = self.sim.put(f"/_sim/rdap/domains/{name}", json=change)
        assert put.status_code in (200, 201), put.text
        assert name in self.sim.get("/_sim/rdap/domains").json()["items"]

    def add_domain(self, client_id: str, name: str) -> dict[str, Any]:
        added = self.vendor_sync.post(f"/v1/clients/{client_id}/domains", json={"name": name})
        assert added.status_code == 201, added.text
        return added.json()

    def domain(self, domain_id: str) -> dict[str, Any]:
        got = self.vendor_sync.get(f"/v1/domains/{domain_id}")
        assert got.status_code == 200, got.text
        return got.json()

    def refresh(self, domain_id: str, *, not_run: str | None = None) -> dict[str, Any]:
        """`POST /v1/domains/{id}/refresh` and wait for its run to succeed; a run other than `not_run`."""
        accepted = self.vendor_sync.post(f"/v1/domains/{domain_id}/refresh")
        assert accepted.status_code == 202, accepted.text
        run_id = accepted.json()["sync_run_id"]
        assert run_id != not_run, "the refresh reused the previous run instead of queueing a new one"
        run = poll(
            f"sync run {run_id} of domain {domain_id} to finish",
            lambda: self.vendor_sync.get(f"/v1/sync-runs/{run_id}").json(),
            lambda r: r.get("status") in ("succeeded", "failed"),
            RUN_TIMEOUT_S,
        )
        assert run["status"] == "succeeded", run
        return run

    def tasks(self, client_id: str, task_type: str) -> list[dict[str, Any]]:
        listed = self.intake.get("/v1/tasks", params={"client_id": client_id, "type": task_type, "limit": 100})
        assert listed.status_code == 200, listed.text
        body = listed.json()
        assert body["next_cursor"] is None, "more tasks than one page"
        assert all(t["client_id"] == client_id and t["type"] == task_type for t in body["items"]), body
        return body["items"]

    def drift_events(self, domain_id: str, kind: str) -> list[dict[str, Any]]:
        listed = self.vendor_sync.get("/v1/drift-events", params={"domain_id": domain_id, "kind": kind, "limit": 100})
        assert listed.status_code == 200, listed.text
        return listed.json()["items"]

    def raise_pass(self) -> None:
        """Wait for a `raise_tasks` run that started after every drift event committed so far.

        A new domain of a sentinel client, expiring in 5 days, gets a refresh; its refresh job publishes
        `raise_tasks` after committing the warning, and that run reads every pending event, oldest first.
        When the sentinel's renewal task exists, any event left pending by an earlier refresh was read too.
        """
        if self.sentinel is None:
            self.sentinel = self.client("Sentinel")
        client_id = self.sentinel["id"]
        before = len(self.tasks(client_id, "renewal"))
        name = f"sentinel-{uuid.uuid4().hex[:10]}.com"
        expires = (datetime.now(UTC) + timedelta(days=5)).replace(microsecond=0)
        self.registry(name, expires_at=expires.isoformat())
        self.refresh(self.add_domain(client_id, name)["id"])
        poll(
            f"the sentinel renewal task for {name} (a raise_tasks run)",
            lambda: self.tasks(client_id, "renewal"),
            lambda tasks: len(tasks) > before,
            TASK_TIMEOUT_S,
        )

    def ops_mails(self, domain_name: str) -> list[dict[str, Any]]:
        """Every message in the sink to MSP_OPS_EMAIL that names `domain_name`."""
        messages = httpx.get(self.mail_url, timeout=10).json()
        return [
            m
            for m in messages
            if self.ops_email.lower() in (a.lower() for a in m["to"])
            and domain_name in f"{m['subject']}\n{m['text'] or ''}"
        ]


@pytest.fixture(scope="module")
def drift(stack: FullStack) -> Iterator[Drift]:
    handle = Drift(stack)
    try:
        yield handle
    finally:
        handle.close()


def _checked_at(domain: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(domain["last_checked_at"])


def _assert_one_ops_mail(drift: Drift, task: dict[str, Any], client: dict[str, Any], domain_name: str) -> None:
    mails = poll(
        f"the mail to {drift.ops_email} about task {task['id']}",
        lambda: drift.ops_mails(domain_name),
        bool,
        MAIL_TIMEOUT_S,
    )
    assert len(mails) == 1, [m["subject"] for m in mails]
    mail = mails[0]
    link = f"{drift.portal}/tasks/{task['id']}"
    # The subject names the client before the title, so cutting a long title never drops it.
    assert client["name"] in mail["subject"], mail["subject"]
    assert client["name"] in mail["text"] and client["name"] in mail["html"], mail
    assert domain_name in mail["subject"] and domain_name in mail["text"], mail
    assert task["title"] in mail["text"], mail["text"]
    assert link in mail["text"], mail["text"]
    assert f'href="{link}"' in mail["html"], mail["html"]


def test_changed_nameservers_make_one_drift_review_task_and_one_ops_mail(drift: Drift) -> None:
    client = drift.client("Drift")
    name = f"drift-{uuid.uuid4().hex[:10]}.com"
    old = ["ns1.old-dns.example.net", "ns2.old-dns.example.net"]
    new = ["ns1.new-dns.example.org", "ns2.new-dns.example.org"]
    drift.registry(name, nameservers=old)
    domain = drift.add_domain(client["id"], name)

    # The first check only learns the domain: no drift, no task.
    first = drift.refresh(domain["id"])
    assert drift.domain(domain["id"])["nameservers"] == old
    assert drift.drift_events(domain["id"], "change") == []
    assert drift.tasks(client["id"], "drift_review") == []

    drift.registry(name, nameservers=new)
    second = drift.refresh(domain["id"], not_run=first["id"])
    checked = drift.domain(domain["id"])
    assert checked["nameservers"] == new
    changes = drift.drift_events(domain["id"], "change")
    assert [(e["field"], e["old"], e["new"]) for e in changes] == [("nameservers", old, new)], changes

    tasks = poll(
        f"a drift_review task of client {client['id']} for {name}",
        lambda: drift.tasks(client["id"], "drift_review"),
        bool,
        TASK_TIMEOUT_S,
    )
    assert len(tasks) == 1, tasks
    task = tasks[0]
    assert name in task["title"], task["title"]
    for host in (*old, *new):
        assert host in task["title"], task["title"]
    # The new nameservers come after the old ones: "changed: old → new".
    assert task["title"].index(new[0]) > task["title"].index(old[-1]), task["title"]
    assert drift.tasks(client["id"], "renewal") == []
    _assert_one_ops_mail(drift, task, client, name)

    # The same answer again: a new run that succeeds and records no drift; after a raise_tasks run that
    # started later, still one task and one mail.
    drift.refresh(domain["id"], not_run=second["id"])
    assert _checked_at(drift.domain(domain["id"])) > _checked_at(checked)
    assert drift.drift_events(domain["id"], "change") == changes
    drift.raise_pass()
    assert [t["id"] for t in drift.tasks(client["id"], "drift_review")] == [task["id"]]
    assert len(drift.ops_mails(name)) == 1


def test_a_domain_expiring_in_ten_days_makes_one_renewal_task_and_one_ops_mail(drift: Drift) -> None:
    client = drift.client("Renewal")
    name = f"renew-{uuid.uuid4().hex[:10]}.com"
    expires = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    day = expires.date().isoformat()
    drift.registry(name, nameservers=["ns1.renew-dns.example.net"], expires_at=expires.isoformat())
    domain = drift.add_domain(client["id"], name)

    first = drift.refresh(domain["id"])
    checked = drift.domain(domain["id"])
    assert checked["expires_at"].startswith(day), checked
    warnings = drift.drift_events(domain["id"], "expiry_warning")
    assert [e["new"][:10] for e in warnings] == [day], warnings

    tasks = poll(
        f"a renewal task of client {client['id']} for {name}",
        lambda: drift.tasks(client["id"], "renewal"),
        bool,
        TASK_TIMEOUT_S,
    )
    assert len(tasks) == 1, tasks
    task = tasks[0]
    assert name in task["title"] and day in task["title"], task["title"]
    assert drift.tasks(client["id"], "drift_review") == []
    _assert_one_ops_mail(drift, task, client, name)

    # Refreshed again with the same expiry: a new run that succeeds and records no second warning; after a
    # raise_tasks run that started later, still one task and one mail.
    drift.refresh(domain["id"], not_run=first["id"])
    assert _checked_at(drift.domain(domain["id"])) > _checked_at(checked)
    assert drift.drift_events(domain["id"], "expiry_warning") == warnings
    drift.raise_pass()
    assert [t["id"] for t in drift.tasks(client["id"], "renewal")] == [task["id"]]
    assert len(drift.ops_mails(name)) == 1
