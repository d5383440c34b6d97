"""Provisioning on the whole stack as `make up` runs it, with the demo data (slow: every part, real processes).

A demo client's office (`acme-user`) asks for a spam filter on one of the client's domains; its owner
(`acme-admin`) approves; then, with nobody else doing anything, intake's relay hands the task to
vendor_sync's worker, which provisions the domain at the simulator's MailChannels (with the demo's
MailChannels account and its API key from the broker), points the domain's MX records at MailChannels
in the client's Cloudflare zone, reports each step to intake, and ledgers the one information
disclosure at the broker on the approval. Everything is read back through the APIs and the simulator's
control API, signed in as the demo people with tokens from the dev issuer (`mspctl token`).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from mspctl import demo, demo_vendors
from vendor_sync.adapters.mailchannels import INBOUND_MX_HOSTS

# --import-mode=importlib puts no test dir on sys.path: the full-stack helpers live with the browser tests.
sys.path.insert(0, str(Path(__file__).parents[1] / "browser"))

from browser_helpers import FullStack, Person, fresh_stack, poll

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

CLIENT = "Acme Dental"
# Polling deadlines (not performance bounds): the demo's first Cloudflare sync, and provisioning after
# the approval (the "within 30 s").
SYNC_TIMEOUT_S = 90.0
PROVISIONING_TIMEOUT_S = 30.0
STEPS = {"provision_spam_filter_domain", "set_mx_records"}
T = TypeVar("T")


@pytest.fixture(scope="module")
def stack() -> Iterator[FullStack]:
    with fresh_stack("msp-provisioning-") as started:
        yield started


class Demo:
    """The demo client's people and an admin, each with their own token, and the simulator's control API."""

    def __init__(self, stack: FullStack) -> None:
        self.user, self.boss = stack.client_people(CLIENT)
        assert self.user.client_id
        self.client_id: str = self.user.client_id
        self.stack = stack
        self.admin_token = stack.token("admin", "provisioning-admin")
        self.sim = httpx.Client(base_url=stack.urls["vendor_sim"], timeout=30)
        self._clients: list[httpx.Client] = [self.sim]

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def api(self, name: str, person: Person | None = None) -> httpx.Client:
        """One of the stack's APIs as this person (with the dev issuer's token for them), or as the admin."""
        token = self.admin_token if person is None else self.stack.person_token(person)
        client = self.stack.api(name, token)
        self._clients.append(client)
        return client

    def sim_state(self, vendor: str) -> dict[str, Any]:
        got = self.sim.get(f"/_sim/{vendor}/state")
        assert got.status_code == 200, got.text
        return dict(got.json())

    def zones_named(self, name: str) -> list[dict[str, Any]]:
        """The simulator's Cloudflare zones of that name, in every account (the demo keys each client's own)."""
        state = self.sim_state("cloudflare")
        accounts = [state, *(state.get("accounts") or {}).values()]
        return [zone for account in accounts for zone in account.get("zones") or [] if zone["name"] == name]

    def mailchannels_domains(self, name: str) -> list[dict[str, Any]]:
        return [d for d in self.sim_state("mailchannels")["domains"] if d["name"] == name]


@pytest.fixture(scope="module")
def demo_stack(stack: FullStack) -> Iterator[Demo]:
    handle = Demo(stack)
    try:
        yield handle
    finally:
        handle.close()


def apex_mx(zone: dict[str, Any]) -> list[tuple[int, str]]:
    """The zone's MX records as (priority, host), sorted."""
    return sorted((int(r["priority"]), r["content"].rstrip(".")) for r in zone["records"] if r["type"] == "MX")


def get(client: httpx.Client, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:500]}"
    return dict(response.json())


def test_an_approved_spam_filter_request_is_provisioned_at_mailchannels_and_cloudflare(demo_stack: Demo) -> None:
    acme = demo_stack
    spec = next(s for s in demo.CLIENTS if s["name"] == CLIENT)
    domain = demo_vendors.a_label(spec["domains"][-1])
    downstream = [f"mail1.{domain}", f"mail2.{domain}"]
    admin_registry, admin_intake = acme.api("vendor_sync"), acme.api("intake")

    # The demo gives the client's Cloudflare key the domain's zone, with MX records of its own.
    [zone] = acme.zones_named(domain)
    old_mx = apex_mx(zone)
    assert old_mx and old_mx != sorted(INBOUND_MX_HOSTS), zone
    assert acme.mailchannels_domains(domain) == []
    # The demo's first sync of that Cloudflare account links the domain to it (no sync running meanwhile).
    domains = poll(
        f"the demo's first sync to link {domain} to {CLIENT}'s Cloudflare account",
        lambda: get(admin_registry, f"/v1/clients/{acme.client_id}/domains", limit=200)["items"],
        lambda items: any(d["name"] == domain and d["dns_host_account_id"] for d in items),
        SYNC_TIMEOUT_S,
    )
    [known] = [d for d in domains if d["name"] == domain]
    accounts = get(admin_registry, f"/v1/clients/{acme.client_id}/vendor-accounts", limit=100)["items"]
    vendors = {v["id"]: v for v in get(admin_registry, "/v1/vendors", limit=100)["items"]}
    [mailchannels] = [a for a in accounts if vendors[a["vendor_id"]]["adapter"] == "mailchannels"]
    assert mailchannels["api_key_credential_id"], mailchannels

    # The office asks; the request's task waits for the owner's approval of what goes to MailChannels.
    user_intake = acme.api("intake", acme.user)
    asked = user_intake.post(
        "/v1/requests",
        headers={"Idempotency-Key": f"provisioning-{uuid.uuid4()}"},
        json={"type": "spam_filter_setup", "domain": domain, "downstream_hosts": downstream},
    )
    assert asked.status_code == 201, asked.text
    request_id, [task_id] = asked.json()["id"], asked.json()["task_ids"]
    task = get(admin_intake, f"/v1/tasks/{task_id}")
    assert task["status"] == "awaiting_approval", task
    # Expansion scoped the task to the client's MailChannels and Cloudflare accounts.
    assert {mailchannels["id"], known["dns_host_account_id"]} <= set(task["scope"]["vendor_account_ids"]), task
    [approval] = task["approvals"]
    assert approval["recipient"]["vendor_id"] == mailchannels["vendor_id"], approval

    boss_intake = acme.api("intake", acme.boss)
    decided = boss_intake.post(f"/v1/approvals/{approval['id']}/decision", json={"decision": "approved"})
    assert decided.status_code == 200, decided.text

    # Nobody else acts: the relay, vendor_sync's worker and the simulator carry it out.
    done = poll(
        f"task {task_id} to be provisioned (done, or on hold with the failed step)",
        lambda: get(admin_intake, f"/v1/tasks/{task_id}"),
        lambda t: t["status"] in ("done", "on_hold", "cancelled"),
        PROVISIONING_TIMEOUT_S,
    )
    assert done["status"] == "done", {k: done[k] for k in ("status", "assignee", "steps", "internal_notes")}
    assert done["assignee"] == "svc:vendor_sync"
    steps = {s["name"]: s for s in done["steps"]}
    assert set(steps) == STEPS, done["steps"]
    assert all(s["status"] == "succeeded" and not s["human"] for s in steps.values()), done["steps"]
    assert get(user_intake, f"/v1/requests/{request_id}")["status"] == "done"

    # MailChannels holds the domain, delivering to its downstream hosts, under the demo client's key.
    [provisioned] = acme.mailchannels_domains(domain)
    assert sorted(a["target"].rstrip(".") for a in provisioned["downstream_addresses"]) == downstream, provisioned
    assert provisioned["key_fingerprint"], provisioned
    # The zone's MX records are MailChannels' inbound hosts, and only those.
    [zone] = acme.zones_named(domain)
    assert apex_mx(zone) == sorted(INBOUND_MX_HOSTS), zone
    replaced = ", ".join(f"{priority} {host}" for priority, host in old_mx)
    assert f"Replaced: {replaced}" in steps["set_mx_records"]["detail"], steps["set_mx_records"]

    # The owner's ledger: one information disclosure, to MailChannels, on the approval, for this task.
    ledger = get(acme.api("secrets_broker", acme.boss), "/v1/disclosures", limit=200)["items"]
    information = [d for d in ledger if d["kind"] == "information"]
    assert len(information) == 1, ledger
    [disclosure] = information
    assert (disclosure["approval_id"], disclosure["task_id"]) == (approval["id"], task_id), disclosure
    assert (disclosure["client_id"], disclosure["vendor_id"]) == (acme.client_id, mailchannels["vendor_id"])
    assert set(disclosure["information_categories"]) <= set(approval["information_categories"]), disclosure
    assert disclosure["disclosed_by"] == "svc:vendor_sync"
