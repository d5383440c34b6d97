"""Provisioning in a real browser on the full stack (issue 20): Retry provisioning, and the ledger's kinds.

A spam-filter request of the demo client Acme Dental is approved while the simulator's MailChannels holds
its domain for another customer: provisioning stops, the task goes on hold with the step's error. tech1
opens the task, reads what failed, and (the domain freed at MailChannels) presses "Retry provisioning"
with the keyboard; the task ends `done`. The client's owner then reads the ledger on /disclosures: one
"Information sent" row naming the approval it was sent under. Screenshots of each page are saved (see
browser_helpers.Shots).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from browser_helpers import Browser, FullStack, Person, Shots, poll, screenshots_dir
from playwright.sync_api import expect

from mspctl import demo, demo_vendors
from vendor_sim.keys import fingerprint

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

CLIENT = "Acme Dental"
# A polling deadline (not a performance bound): the demo's first sync, then provisioning.
TIMEOUT_S = 90.0


class Scene:
    """The demo client's people, an admin's APIs and the simulator."""

    def __init__(self, stack: FullStack) -> None:
        self.user, self.boss = stack.client_people(CLIENT)
        self.stack = stack
        self.sim = httpx.Client(base_url=stack.urls["vendor_sim"], timeout=30)
        self.intake = stack.api("intake", stack.token("admin", "browser-provisioning-admin"))
        self.registry = stack.api("vendor_sync", stack.token("admin", "browser-provisioning-admin"))

    def as_person(self, person: Person) -> httpx.Client:
        return self.stack.api("intake", self.stack.person_token(person))

    def task(self, task_id: str) -> dict[str, Any]:
        got = self.intake.get(f"/v1/tasks/{task_id}")
        assert got.status_code == 200, got.text
        return dict(got.json())

    def close(self) -> None:
        for client in (self.sim, self.intake, self.registry):
            client.close()


@pytest.fixture(scope="module")
def scene(full_stack: FullStack) -> Iterator[Scene]:
    handle = Scene(full_stack)
    try:
        yield handle
    finally:
        handle.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Shots:
    return Shots(screenshots_dir(tmp_path_factory.mktemp("screenshots")))


def on_hold_spam_filter_task(scene: Scene) -> str:
    """A spam-filter request approved while another MailChannels customer holds the domain: on hold."""
    spec = next(s for s in demo.CLIENTS if s["name"] == CLIENT)
    domain = demo_vendors.a_label(spec["domains"][-1])
    client_id = scene.user.client_id
    poll(
        f"the demo's first sync to link {domain}",
        lambda: scene.registry.get(f"/v1/clients/{client_id}/domains", params={"limit": 200}).json()["items"],
        lambda items: any(d["name"] == domain and d["dns_host_account_id"] for d in items),
        TIMEOUT_S,
    )
    taken = {"name": domain, "downstream_addresses": [], "key_fingerprint": fingerprint("another-customers-key")}
    assert scene.sim.put("/_sim/mailchannels/state", json={"domains": [taken]}).status_code == 200
    asked = scene.as_person(scene.user).post(
        "/v1/requests",
        headers={"Idempotency-Key": f"browser-provisioning-{uuid.uuid4()}"},
        json={"type": "spam_filter_setup", "domain": domain, "downstream_hosts": [f"mail.{domain}"]},
    )
    assert asked.status_code == 201, asked.text
    [task_id] = asked.json()["task_ids"]
    [approval] = scene.task(task_id)["approvals"]
    decided = scene.as_person(scene.boss).post(
        f"/v1/approvals/{approval['id']}/decision", json={"decision": "approved"}
    )
    assert decided.status_code == 200, decided.text
    held = poll(f"task {task_id} on hold", lambda: scene.task(task_id), lambda t: t["status"] == "on_hold", TIMEOUT_S)
    assert held["assignee"] is None, held
    return str(task_id)


def test_a_technician_reads_the_failed_step_and_retries_with_the_keyboard(
    scene: Scene, chromium: Any, shots: Shots
) -> None:
    task_id = on_hold_spam_filter_task(scene)
    browser = Browser(chromium, scene.stack.portal, shots)
    try:
        page = browser.sign_in("tech1", f"/tasks/{task_id}")
        section = page.get_by_role("region", name="Provisioning stopped")
        expect(section).to_be_visible()
        expect(page.locator("#failed-steps")).to_contain_text("different MailChannels customer")
        shots(page, "provisioning-01-stopped.png", top=section)
        # The cause is fixed at MailChannels; the technician retries from the keyboard.
        assert scene.sim.put("/_sim/mailchannels/state", json={"domains": []}).status_code == 200
        retry = page.get_by_role("button", name="Retry provisioning")
        retry.focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/tasks/{task_id}?done=retried")
        expect(page.locator("p.notice")).to_contain_text("Provisioning re-queued")
        done = poll(f"task {task_id} done", lambda: scene.task(task_id), lambda t: t["status"] == "done", TIMEOUT_S)
        assert {s["name"]: s["status"] for s in done["steps"]} == {
            "provision_spam_filter_domain": "succeeded",
            "set_mx_records": "succeeded",
        }
        page.reload()
        expect(page.locator("#task-status")).to_contain_text("Done")
        expect(page.get_by_role("button", name="Retry provisioning")).to_have_count(0)
        shots(page, "provisioning-02-done.png")
        assert browser.csp_violations() == []
    finally:
        browser.close()


def test_the_owner_reads_what_was_sent_and_under_which_approval(scene: Scene, chromium: Any, shots: Shots) -> None:
    browser = Browser(chromium, scene.stack.portal, shots)
    try:
        page = browser.sign_in(scene.boss.sub, "/disclosures")
        rows = page.locator("tr[data-kind='information']")
        expect(rows.first).to_be_visible()
        row = rows.first
        expect(row.locator("td.kind")).to_have_text("Information sent")
        link = row.get_by_role("link", name="See the approval")
        expect(link).to_be_visible()
        shots(page, "provisioning-03-ledger.png")
        link.click()
        page.wait_for_url("**/approvals/*")
        assert browser.csp_violations() == []
    finally:
        browser.close()
