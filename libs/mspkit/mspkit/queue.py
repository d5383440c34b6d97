"""Celery defaults every app shares: late acks, prefetch 1, 300 s visibility, JSON only."""

from __future__ import annotations

from celery import Celery

VISIBILITY_TIMEOUT_S = 300
# Countdowns must stay under the visibility timeout, or Redis redelivers the message early.
MAX_COUNTDOWN_S = VISIBILITY_TIMEOUT_S - 30


def make_celery(name: str, broker_url: str, *, include: list[str] | None = None) -> Celery:
    """A Celery app on Redis with the platform's delivery rules."""
    app = Celery(name, broker=broker_url, include=include or [])
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        task_default_queue=name,
        worker_send_task_events=False,
        broker_pool_limit=10,
    )
    return app
