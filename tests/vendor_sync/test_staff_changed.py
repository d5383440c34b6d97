"""The `staff.changed` consumer: intake's real event drops vendor_sync's cached staff view; junk is dropped.

The task function runs in-process, as the other consumers' tests run theirs; the API it affects is
the in-process vendor_sync app, sharing the stack's Redis with the task, as the worker does.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from celery.exceptions import Retry
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).parent))
pytest.register_assert_rewrite("fixtures_registry")
from fixtures_registry import make_domain, unique  # noqa: E402

pytest_plugins = ["fixtures_registry"]


@pytest.fixture(scope="module")
def api(vs_app: Any) -> Iterator[TestClient]:
    with TestClient(vs_app) as client:
        yield client


@pytest.fixture(scope="module")
def intake_admin(intake_live: str, mint_token: Callable[..., str]) -> httpx.Client:
    headers = {"Authorization": f"Bearer {mint_token('admin', 'stc-admin', aud=['intake'])}"}
    with httpx.Client(base_url=intake_live, headers=headers, timeout=10) as client:
        yield client


def _latest_staff_changed(engine: Engine, sub: str) -> dict[str, Any]:
    with engine.connect() as conn:
        envelope = conn.execute(
            text(
                "SELECT envelope FROM intake.outbox WHERE type = 'staff.changed' AND envelope->'data'->>'sub' = :sub"
                " ORDER BY id DESC LIMIT 1"
            ),
            {"sub": sub},
        ).scalar_one()
    return dict(envelope)


def test_intake_routes_staff_changed_to_this_task_on_vendor_syncs_queue():
    from intake.events import ROUTES
    from vendor_sync.celery_app import QUEUE, app

    assert ("vendor_sync.events.staff_changed", QUEUE) in ROUTES["staff.changed"]
    app.loader.import_default_modules()  # what a worker does at start: load the app's `include`
    assert "vendor_sync.events.staff_changed" in app.tasks


def test_a_real_staff_changed_event_drops_the_cached_view(api, hdr, new_client, intake_admin, mint_token, admin_engine):
    from vendor_sync.jobs import staff_changed

    a, b = new_client(), new_client()
    admin = hdr("admin")
    domain_a = make_domain(api, admin, a, f"{unique()}.example")["id"]
    domain_b = make_domain(api, admin, b, f"{unique()}.example")["id"]
    sub = f"stc-{uuid.uuid4().hex[:10]}"
    body = {"sub": sub, "display_name": "Moved", "email": f"{sub}@msp.example", "role": "technician"}
    assert intake_admin.post("/v1/staff", json={**body, "client_ids": [str(a)]}).status_code == 201
    tech = {"Authorization": f"Bearer {mint_token('technician', sub, aud=['vendor_sync'])}"}

    def status(domain_id: str) -> int:
        return api.get(f"/v1/domains/{domain_id}", headers=tech).status_code

    assert (status(domain_a), status(domain_b)) == (200, 404)
    moved = intake_admin.patch(f"/v1/staff/{sub}", json={"client_ids": [str(b)]})
    assert moved.status_code == 200, moved.text
    # Until the event is consumed the cached view still answers (the contract allows up to 30 s).
    assert (status(domain_a), status(domain_b)) == (200, 404)

    envelope = _latest_staff_changed(admin_engine, sub)
    assert envelope["type"] == "staff.changed" and envelope["data"]["sub"] == sub
    assert staff_changed(envelope) is True
    assert (status(domain_a), status(domain_b)) == (404, 200)

    assert intake_admin.patch(f"/v1/staff/{sub}", json={"active": False}).status_code == 200
    assert staff_changed(_latest_staff_changed(admin_engine, sub)) is True
    assert (status(domain_a), status(domain_b)) == (404, 404)
    # Delivered again (at least once): the same answer, nothing breaks.
    assert staff_changed(_latest_staff_changed(admin_engine, sub)) is True
    assert status(domain_b) == 404


@pytest.mark.parametrize(
    "envelope",
    [
        None,
        ["staff.changed"],
        {"type": "task.created", "data": {"sub": "tech-1"}},
        {"type": "staff.changed"},
        {"type": "staff.changed", "data": ["tech-1"]},
        {"type": "staff.changed", "data": {"sub": ""}},
        {"type": "staff.changed", "data": {"sub": 7}},
    ],
)
def test_a_malformed_envelope_is_dropped_not_retried(envelope, monkeypatch):
    from vendor_sync import events
    from vendor_sync.jobs import staff_changed

    def must_not_reach_redis() -> None:
        raise AssertionError("a malformed envelope reached the directory")

    monkeypatch.setattr(events, "get_staff_directory", must_not_reach_redis)
    assert staff_changed(envelope) is False


def test_a_redis_error_is_retried(monkeypatch, intake_live):
    from mspctl.ports import free_port
    from mspkit.service_tokens import service_client
    from mspkit.staff_directory import StaffDirectory
    from vendor_sync import events
    from vendor_sync.jobs import staff_changed
    from vendor_sync.settings import get_settings

    intake = service_client(get_settings(), base_url=intake_live, audience="intake", timeout_s=2)
    dead = StaffDirectory(intake=intake, redis_url=f"redis://127.0.0.1:{free_port()}/0", service="vendor_sync")
    monkeypatch.setattr(events, "get_staff_directory", lambda: dead)
    envelope = {"event_id": str(uuid.uuid4()), "type": "staff.changed", "data": {"sub": "tech-1"}}

    with pytest.raises(Retry):
        staff_changed(envelope)
    # The error itself is Redis's, which the task turned into a retry.
    with pytest.raises(redis.ConnectionError):
        events.staff_changed(envelope)
