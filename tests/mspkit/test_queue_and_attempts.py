"""Celery defaults and database attempt counting with dead letters."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

from sqlalchemy import select

from mspkit.attempts import count_attempt, dead_letter
from mspkit.queue import MAX_COUNTDOWN_S, VISIBILITY_TIMEOUT_S, make_celery

sys.path.insert(0, str(Path(__file__).parent))
import kit_test_app as kt


def test_celery_defaults():
    app = make_celery("x", "redis://127.0.0.1:1/0")
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] == VISIBILITY_TIMEOUT_S == 300
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert MAX_COUNTDOWN_S < VISIBILITY_TIMEOUT_S


def test_attempts_are_counted_and_dead_lettered(stack_env):
    kt.create_schema(kt.engine())
    key = f"job:{uuid.uuid4()}"
    assert [count_attempt(kt.engine(), kt.KIT, key) for _ in range(3)] == [1, 2, 3]
    dead_letter(kt.engine(), kt.KIT, job_key=key, task_name="t", args=[key], attempts=3, error="VendorTransientError")
    with kt.engine().connect() as conn:
        row = conn.execute(select(kt.KIT.dead_letters).where(kt.KIT.dead_letters.c.job_key == key)).one()
    assert (row.attempts, row.error, row.args) == (3, "VendorTransientError", [key])
