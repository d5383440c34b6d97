"""The race: 200 concurrent releases against the real broker (uvicorn) while an admin closes the task.

Timestamps, all from this host's wall clock:

- the close's commit, bracketed from intake's own database: a thread polls the task's status in a
  loop; the commit became visible after the start of the last poll that still saw `in_progress`
  (`lo`) and before the end of the first poll that saw `done` (`hi`);
- for each granted release, `rechecked_at`: when the broker sent its last authorization read (the
  re-check after minting), recorded in the release row.

A granted release whose last read was sent after `hi` read intake after the close committed: that
would be a release decided on a closed task. Then, once the worker has processed the close event,
every granted token is tried directly at OpenBao: none may unwrap.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from broker_helpers import World, unwrap_at_vault
from procs import json_line
from sqlalchemy import text

pytestmark = pytest.mark.slow
RELEASES = 200
CLOSE_AFTER = 40  # responses in before the close is sent, so releases run on both sides of it


class StatusPoller(threading.Thread):
    """Polls the task's status in intake's database and brackets the moment the close became visible."""

    def __init__(self, admin_engine: Any, task_id: uuid.UUID) -> None:
        super().__init__(daemon=True)
        self.engine = admin_engine
        self.task_id = task_id
        self.stop = threading.Event()
        self.lo: float | None = None  # start of the last poll that saw the task open
        self.hi: float | None = None  # end of the first poll that saw it closed
        self.polls = 0

    def run(self) -> None:
        with self.engine.connect() as conn:
            while not self.stop.is_set() and self.hi is None:
                started = time.time()
                status = conn.execute(
                    text("SELECT status FROM intake.tasks WHERE id = :t"), {"t": self.task_id}
                ).scalar_one()
                ended = time.time()
                conn.rollback()
                self.polls += 1
                if status == "in_progress":
                    self.lo = started
                else:
                    self.hi = ended


def _ts(value: datetime) -> float:
    return value.astimezone(UTC).timestamp()


def test_200_concurrent_releases_while_the_task_is_closed(e2e: Any, world: World, admin_engine: Any) -> None:
    _, credential_id, _, task_id, sub = world.ready()
    headers = world.tech(sub)
    body = {"task_id": str(task_id), "credential_id": str(credential_id), "reason": "race: concurrent releases"}
    http = httpx.Client(base_url=e2e.broker_url, timeout=60,
                        limits=httpx.Limits(max_connections=RELEASES + 10, max_keepalive_connections=RELEASES))
    results: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()
    enough = threading.Event()
    start = threading.Barrier(RELEASES + 1)

    def one() -> None:
        start.wait()
        r = http.post("/v1/releases", headers=headers, json=body)
        with lock:
            results.append((r.status_code, r.json()))
            if len(results) >= CLOSE_AFTER:
                enough.set()

    poller = StatusPoller(admin_engine, task_id)
    poller.start()
    threads = [threading.Thread(target=one, daemon=True) for _ in range(RELEASES)]
    for t in threads:
        t.start()
    start.wait()
    began = time.monotonic()
    assert enough.wait(120)
    close_sent = time.time()
    world.transition(task_id, "done", world.admin)
    close_answered = time.time()
    for t in threads:
        t.join(180)
    elapsed = time.monotonic() - began
    poller.join(30)
    assert poller.lo is not None and poller.hi is not None
    assert poller.lo <= poller.hi and close_sent <= poller.hi + 0.001

    granted = [b for code, b in results if code == 201]
    outcomes = Counter(code if code != 403 else f"403:{b.get('rule')}" for code, b in results)
    assert len(results) == RELEASES
    assert granted, "no release was granted before the close: the race did not happen"
    assert any(code == 403 for code, _ in results), "no release was refused after the close"

    with admin_engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, rechecked_at, status FROM secrets_broker.releases WHERE task_id = :t"), {"t": task_id}
        ).all()
    assert sorted(str(r.id) for r in rows) == sorted(b["release_id"] for b in granted)
    rechecks = [_ts(r.rechecked_at) for r in rows]
    after_close = [t for t in rechecks if t > poller.hi]
    in_bracket = [t for t in rechecks if poller.lo < t <= poller.hi]

    # Wait until the worker has processed the close: its event in the inbox, no granted token left issued.
    event_id = _close_event_id(admin_engine, task_id)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _processed(admin_engine, task_id, event_id):
        time.sleep(0.05)
    assert _processed(admin_engine, task_id, event_id)

    unwrapped = [b["release_id"] for b in granted if unwrap_at_vault(e2e.vault_addr, b["wrap_token"]).status_code
                 == 200]
    figures = {
        "test": "release_race",
        "releases": RELEASES,
        "elapsed_s": round(elapsed, 3),
        "outcomes": dict(outcomes),
        "granted": len(granted),
        "close_sent_to_answered_s": round(close_answered - close_sent, 4),
        "commit_bracket_s": round(poller.hi - poller.lo, 4),
        "status_polls": poller.polls,
        "last_recheck_before_commit_s": round(poller.hi - max(rechecks), 4),
        "granted_rechecked_after_commit": len(after_close),
        "granted_rechecked_inside_bracket": len(in_bracket),
        "tokens_unwrapping_after_close_processed": len(unwrapped),
    }
    print("\nrelease race:", figures)
    json_line(e2e.results, figures)

    assert after_close == []
    assert unwrapped == []


def _close_event_id(admin_engine: Any, task_id: uuid.UUID) -> str:
    with admin_engine.connect() as conn:
        return str(
            conn.execute(
                text(
                    "SELECT envelope->>'event_id' FROM intake.outbox WHERE type = 'task.status_changed' "
                    "AND envelope->>'aggregate_id' = :t AND envelope->'data'->>'to' = 'done'"
                ),
                {"t": str(task_id)},
            ).scalar_one()
        )


def _processed(admin_engine: Any, task_id: uuid.UUID, event_id: str) -> bool:
    with admin_engine.connect() as conn:
        seen = conn.execute(
            text("SELECT count(*) FROM secrets_broker.inbox WHERE event_id = :e"), {"e": event_id}
        ).scalar()
        open_rows = conn.execute(
            text(
                "SELECT count(*) FROM secrets_broker.releases r WHERE r.task_id = :t AND (r.status = 'issued' OR "
                "EXISTS (SELECT 1 FROM secrets_broker.pending_revocations p WHERE p.release_id = r.id "
                "AND p.done_at IS NULL))"
            ),
            {"t": task_id},
        ).scalar()
    return bool(seen) and open_rows == 0
