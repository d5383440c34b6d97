"""vendor_sync's Celery app: `celery -A vendor_sync.celery_app worker -Q vendor_sync` and `... beat`."""

from __future__ import annotations

from typing import Any

from celery.signals import setup_logging, worker_process_init

from mspkit.logging import configure_logging
from mspkit.queue import VISIBILITY_TIMEOUT_S, make_celery
from vendor_sync.settings import get_settings

QUEUE = "vendor_sync"
TICK_TASK = "vendor_sync.schedule.tick"

settings = get_settings()
app = make_celery("vendor_sync", settings.redis_url, include=["vendor_sync.jobs"])

# The kit's 300 s visibility timeout everywhere; a shorter one only in dev (fault tests), never in production.
_visibility = VISIBILITY_TIMEOUT_S
if settings.is_dev and settings.visibility_timeout_s:
    _visibility = settings.visibility_timeout_s
app.conf.update(
    broker_transport_options={
        "visibility_timeout": _visibility,
        # kombu sweeps for messages whose worker vanished every interval x throttle seconds (100 s by
        # default); one scan every visibility/10 s (30 s in production) brings them back soon after.
        "unacked_restore_interval": max(1, _visibility // 10),
        "unacked_restore_throttle": 1,
        # A dead Redis must fail a publish in seconds, not hang an API request.
        "socket_connect_timeout": 3,
        "socket_timeout": 10,
    },
    task_routes={"vendor_sync.*": {"queue": QUEUE}},
    beat_schedule={
        TICK_TASK: {
            "task": TICK_TASK,
            "schedule": settings.tick_interval_s,
            # A tick nobody ran in time is dropped: the next one does the same work.
            "options": {"queue": QUEUE, "expires": settings.tick_interval_s},
        }
    },
    beat_schedule_filename=settings.beat_schedule_path,
)


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    # Connecting this signal stops Celery from installing its own (unredacted) handlers.
    configure_logging("vendor_sync-worker", settings.log_level, secrets=settings.secret_values())


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    # A forked child must not share the parent's database sockets or HTTP/Redis clients.
    from vendor_sync.db import get_engine
    from vendor_sync.intake_client import reset_intake_readers
    from vendor_sync.sync.adapter import reset_clients

    if get_engine.cache_info().currsize:
        get_engine().dispose(close=False)
    get_engine.cache_clear()
    reset_clients()
    reset_intake_readers()
