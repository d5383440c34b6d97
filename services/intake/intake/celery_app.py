"""intake's Celery app: the relay publishes with it; `celery -A intake.celery_app worker -Q intake` and `... beat`.

The worker and beat import only settings, the database and the jobs' own modules, never the API's
dependency modules (`deps.py`): nothing FastAPI solves per request belongs in a worker.
"""

from __future__ import annotations

from typing import Any

from celery.signals import setup_logging, worker_process_init

from intake.settings import get_settings
from mspkit.logging import configure_logging
from mspkit.queue import make_celery

QUEUE = "intake"
PURGE_TASK = "intake.idempotency.purge"

settings = get_settings()
app = make_celery("intake", settings.redis_url, include=["intake.jobs", "intake.psa.jobs"])
app.conf.update(
    task_routes={"intake.*": {"queue": QUEUE}},
    beat_schedule={
        PURGE_TASK: {
            "task": PURGE_TASK,
            "schedule": settings.idempotency_purge_interval_s,
            # A purge nobody ran in time is dropped: the next one deletes the same rows.
            "options": {"queue": QUEUE, "expires": settings.idempotency_purge_interval_s},
        }
    },
)


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    # Connecting this signal stops Celery from installing its own (unredacted) handlers.
    configure_logging("intake-worker", settings.log_level, secrets=settings.secret_values())


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    # A forked child must not share the parent's database sockets.
    from intake.db import get_engine

    if get_engine.cache_info().currsize:
        get_engine().dispose(close=False)
    get_engine.cache_clear()
