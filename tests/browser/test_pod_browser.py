"""The ticket pod in a real browser, on the full stack `make up` starts (issue 21, "Ticket pod").

The simulator's ConnectWise ticket screen is opened at `localhost`; it frames the portal's pod at
`127.0.0.1`: another site, so the frame is cross-site exactly as under a real PSA.

1. tech1 opens the ticket of the ISP setup task assigned to them and in progress: the pod offers
   Sign in (keyboard: focus, Enter), the pop-up runs the portal's normal sign-in at the dev issuer and
   hands the pod its code, the pod reloads signed in (its partitioned cookie) with the task, and tech1
   reveals the credential (type the reason, Tab to Reveal, Enter). Every control is labelled.
2. The same in a browser that refuses the pod's cookie: POST /pod/session is answered without its
   Set-Cookie (what a browser blocking cookies in frames does), so the pod's check finds no session
   and it offers the task in a new tab instead, where the portal's own sign-in (first party) works.

The screenshots go to pytest's tmp dir (or MSP_SCREENSHOTS_DIR), the secret masked.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_helpers import VIEWPORT, FullStack, isp_setup_request, poll, screenshots_dir
from playwright.sync_api import expect

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

CLIENT = "Acme Dental"
REASON = "Configuring the office router with the new ISP login"
POD_FRAME = "iframe[title^='MSP ticket pod']"
LABELS_JS = """() => {
  const unlabelled = [];
  for (const el of document.querySelectorAll("input:not([type=hidden]), textarea, select")) {
    if (!el.labels || el.labels.length === 0 || !el.labels[0].innerText.trim()) unlabelled.push(el.outerHTML);
  }
  for (const el of document.querySelectorAll("button, a[href]")) {
    const name = (el.getAttribute("aria-label") || el.innerText || "").trim();
    if (!name) unlabelled.push(el.outerHTML);
  }
  return unlabelled;
}"""


@pytest.fixture(scope="module")
def ticket(full_stack: FullStack) -> dict[str, Any]:
    """Acme's ISP setup task, approved, assigned to tech1 and in progress, with its ticket: the task and psa."""
    user, owner = full_stack.client_people(CLIENT)
    office = full_stack.api("intake", full_stack.person_token(user))
    boss = full_stack.api("intake", full_stack.person_token(owner))
    admin = full_stack.api("intake", full_stack.token("admin", "pod-admin"))
    tech = full_stack.api("intake", full_stack.token("technician", "tech1"))
    try:
        asked = office.post(
            "/v1/requests",
            headers={"Idempotency-Key": f"pod-{uuid.uuid4()}"},
            json=isp_setup_request(),
        )
        assert asked.status_code == 201, asked.text
        [task_id] = asked.json()["task_ids"]
        [approval] = admin.get(f"/v1/tasks/{task_id}").json()["approvals"]
        decided = boss.post(f"/v1/approvals/{approval['id']}/decision", json={"decision": "approved"})
        assert decided.status_code == 200, decided.text
        assert admin.post(f"/v1/tasks/{task_id}/assign", json={"assignee": "tech1"}).status_code == 200
        moved = tech.post(f"/v1/tasks/{task_id}/transition", json={"to": "in_progress"})
        assert moved.status_code == 200, moved.text
        task = poll(
            f"task {task_id}'s ticket", lambda: admin.get(f"/v1/tasks/{task_id}").json(), lambda t: t["psa"], 60.0
        )
        return dict(task)
    finally:
        for client in (office, boss, admin, tech):
            client.close()


@pytest.fixture(scope="module")
def shots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = screenshots_dir(tmp_path_factory.mktemp("pod-shots"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def context(chromium: Any) -> Iterator[Any]:
    ctx = chromium.new_context(viewport=VIEWPORT)
    errors: list[str] = []
    ctx.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield ctx
    ctx.close()
    assert [m for m in errors if "Content Security Policy" in m] == []


def sign_in_through_the_pop_up(context: Any, page: Any, frame: Any, sub: str) -> None:
    """Focus the pod's Sign in, press Enter, press `Sign in as <sub>` in the pop-up; it closes by itself."""
    button = frame.get_by_role("button", name="Sign in", exact=True)
    button.focus()
    assert button.evaluate("b => b === document.activeElement")
    with context.expect_page() as opened:
        page.keyboard.press("Enter")
    popup = opened.value
    choice = popup.get_by_role("button", name=f"Sign in as {sub}", exact=True)
    choice.wait_for()
    with popup.expect_event("close", timeout=20000):
        choice.click()


def test_a_technician_signs_in_in_the_frame_and_reveals(
    full_stack: FullStack, ticket: dict[str, Any], context: Any, shots_dir: Path
) -> None:
    psa = ticket["psa"]
    assert psa["ticket_url"].startswith("http://localhost:"), psa  # another site than the portal's 127.0.0.1
    page = context.new_page()
    page.goto(psa["ticket_url"])
    frame = page.frame_locator(POD_FRAME)
    expect(frame.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    assert frame.locator("#pod-signin-intro").inner_text().startswith("Sign in to see the task")
    page.screenshot(path=str(shots_dir / "pod-1-signin.png"))

    sign_in_through_the_pop_up(context, page, frame, "tech1")
    expect(frame.locator("#pod-task-status")).to_have_text("In progress", timeout=20000)
    expect(frame.locator("#pod-task-assignee")).to_have_text("tech1")
    link = frame.locator("#pod-task-link")
    assert (link.get_attribute("href"), link.get_attribute("target"), link.get_attribute("rel")) == (
        f"/tasks/{ticket['id']}",
        "_blank",
        "noopener",
    )
    pod = next(f for f in page.frames if "/pod/connectwise/tickets/" in f.url)
    assert pod.evaluate(LABELS_JS) == []

    section = frame.locator("section.credential").first
    credential_id = section.locator("input[name=credential_id]").get_attribute("value")
    name = section.locator("h3").inner_text().strip()
    reason = frame.get_by_label(f"Reason for revealing {name}")
    reason.focus()
    page.keyboard.type(REASON)
    page.keyboard.press("Tab")
    reveal = section.get_by_role("button", name="Reveal", exact=True)
    assert reveal.evaluate("b => b === document.activeElement"), "Tab from the reason does not reach Reveal"
    page.keyboard.press("Enter")
    secret_field = frame.locator(f"#secret-{credential_id}")
    secret_field.wait_for(timeout=15000)
    secret = secret_field.input_value()
    assert len(secret) >= 12
    assert pod.evaluate(LABELS_JS) == []
    secret_field.scroll_into_view_if_needed()
    page.screenshot(path=str(shots_dir / "pod-2-revealed.png"), mask=[secret_field], mask_color="#5b6770")

    # The secret is nowhere but the fragment: a reload of the pod shows nothing, and no storage kept it.
    page.reload()
    expect(frame.locator("#pod-task-status")).to_have_text("In progress")
    assert secret not in pod_frame(page).content()
    page.screenshot(path=str(shots_dir / "pod-3-after-reload.png"))


def pod_frame(page: Any) -> Any:
    return next(f for f in page.frames if "/pod/connectwise/tickets/" in f.url)


def test_a_frame_that_refuses_the_cookie_offers_the_task_in_a_new_tab(
    full_stack: FullStack, ticket: dict[str, Any], context: Any, shots_dir: Path
) -> None:
    def refuse_cookie(route: Any) -> None:
        request = route.request
        if request.method != "POST":
            route.continue_()
            return
        # The exchange happens (the code is spent) but the browser never sees the Set-Cookie.
        headers = request.all_headers()
        sent = {k: headers[k] for k in ("origin", "content-type") if k in headers}
        answer = httpx.post(request.url, content=request.post_data_buffer, headers=sent, timeout=30)
        assert answer.headers.get("set-cookie", "").startswith("__Host-msp_pod=")
        route.fulfill(status=answer.status_code, body=answer.content, content_type="application/json")

    page = context.new_page()
    page.route(re.compile(r".*/pod/session$"), refuse_cookie)
    page.goto(ticket["psa"]["ticket_url"])
    frame = page.frame_locator(POD_FRAME)
    sign_in_through_the_pop_up(context, page, frame, "tech1")
    offer = frame.locator("#pod-newtab")
    expect(offer).to_be_visible(timeout=20000)
    assert offer.inner_text().startswith("Signed in, but this browser keeps no sign-in inside the ticket screen.")
    link = frame.get_by_role("link", name="Open the task in a new tab")
    assert (link.get_attribute("href"), link.get_attribute("target"), link.get_attribute("rel")) == (
        f"/tasks/{ticket['id']}",
        "_blank",
        "noopener",
    )
    assert pod_frame(page).evaluate(LABELS_JS) == []
    page.screenshot(path=str(shots_dir / "pod-4-cookie-refused.png"))

    # The new tab is first-party: the portal session the pop-up started opens the task there.
    with context.expect_page() as opened:
        link.click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url == f"{full_stack.portal}/tasks/{ticket['id']}"
    expect(tab.locator("#task-assignee")).to_have_text("tech1")
