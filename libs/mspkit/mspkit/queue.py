"""Celery defaults every app shares: late acks, prefetch 1, 300 s visibility, JSON only; request ids carried."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun

from mspkit import requestid

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


# Request ids across the queue (mspkit.requestid). Celery's signals are process-wide, so they are
# connected once, here, for every app that make_celery builds.
_bindings: dict[str, requestid.Binding] = {}


@before_task_publish.connect(dispatch_uid="mspkit.queue.carry_request_id")
def _carry_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    # A job published while a request (or a job it caused) is handled carries its id in a header;
    # events carry theirs in the envelope, since their relay publishes outside any request.
    rid = requestid.current_request_id()
    if rid is not None and headers is not None:
        headers.setdefault(requestid.CELERY_HEADER, rid)


@task_prerun.connect(dispatch_uid="mspkit.queue.bind_request_id")
def _bind_request_id(task_id: str | None = None, task: Any = None, args: Any = None, **_: Any) -> None:
    # Runs in the thread (or process) that runs the task, so the binding covers exactly that task.
    rid = requestid.from_message(task.request.get(requestid.CELERY_HEADER) if task is not None else None, args)
    if rid is not None and task_id is not None:
        _bindings[task_id] = requestid.enter(rid)


@task_postrun.connect(dispatch_uid="mspkit.queue.unbind_request_id")
def _unbind_request_id(task_id: str | None = None, **_: Any) -> None:
    binding = _bindings.pop(task_id, None) if task_id is not None else None
    if binding is not None:
        binding.leave()
