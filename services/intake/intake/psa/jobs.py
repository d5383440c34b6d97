"""intake's PSA Celery tasks (queue `intake`): push a task to its ticket, and note the broker's releases there.

`intake.psa.push_task` consumes `task.created`, `task.assigned` and `task.status_changed`;
`intake.psa.release_note` consumes the broker's `release.granted` and `release.denied`;
`intake.psa.register_callback` runs once when a worker starts, so the PSA calls
INTAKE_PSA_CALLBACK_URL. With INTAKE_PSA_PROVIDER=none all three do nothing. A transient failure
(the PSA's `VendorTransientError`, the database) is retried with the notifications' capped backoff,
attempts counted in `job_attempts` and dead-lettered after `notify_max_attempts`; a malformed
envelope, a refusal by the PSA (4xx, auth, a hostile answer) or a value the adapter refuses is
dead-lettered at once: retrying would not help.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Task
from celery.signals import worker_process_init, worker_process_shutdown, worker_ready
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from intake import events
from intake.celery_app import app
from intake.db import get_engine
from intake.jobs import dead_letter_envelope, give_up_or_retry
from intake.psa import push
from intake.psa.factory import get_adapter, register_configured_callback
from intake.psa.protocol import PsaAdapter
from intake.settings import get_settings
from mspkit.http import VendorPermanentError, VendorTransientError
from mspkit.logging import get_logger

log = get_logger("intake.psa.jobs")
REGISTER_CALLBACK = "intake.psa.register_callback"
# The PSA down at start: try again, at most this far apart, until it answers.
REGISTER_RETRY_MAX_S = 300.0
Step = Callable[[Session, PsaAdapter], str]


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    # As the engine in celery_app: a forked child builds its own clients, never reusing the parent's sockets.
    get_adapter.cache_clear()


@worker_process_shutdown.connect
def _on_shutdown(**_: Any) -> None:
    if get_adapter.cache_info().currsize:
        adapter = get_adapter()
        if adapter is not None:
            adapter.close()
    get_adapter.cache_clear()


def run_once(task: Task, envelope: dict[str, Any], step: Step) -> str:
    """Run `step` in one transaction with the process's adapter; retry, dead-letter or return what it did."""
    adapter = get_adapter()
    if adapter is None:
        return "disabled"
    try:
        with Session(get_engine(), expire_on_commit=False) as session, session.begin():
            outcome = step(session, adapter)
    except (push.MalformedEvent, VendorPermanentError, ValueError) as exc:
        # A bad envelope, the PSA refusing (4xx, auth, a hostile answer) or a value the adapter will not send.
        log.error("psa_job_dead_lettered", task=task.name, error=type(exc).__name__)
        dead_letter_envelope(task, envelope, f"{task.name}:{_event_id(envelope)}", 1, type(exc).__name__)
        return "dead_lettered"
    except (VendorTransientError, SQLAlchemyError) as exc:
        give_up_or_retry(task, envelope, exc, None, what="psa_job")
        return "dead_lettered"
    log.info("psa_job_done", task=task.name, event_id=_event_id(envelope), outcome=outcome)
    return outcome


def _event_id(envelope: Any) -> str:
    return str(envelope.get("event_id")) if isinstance(envelope, dict) else "malformed"


@app.task(name=events.PSA_PUSH, bind=True, max_retries=None)
def push_task(self: Task, envelope: dict[str, Any]) -> str:
    """`task.created`, `task.assigned`, `task.status_changed`: the ticket shows the task's current state."""
    settings = get_settings()

    def step(session: Session, adapter: PsaAdapter) -> str:
        return push.push_task(session, adapter=adapter, settings=settings, task_id=push.task_id_of(envelope))

    return run_once(self, envelope, step)


@app.task(name=events.PSA_RELEASE_NOTE, bind=True, max_retries=None)
def release_note(self: Task, envelope: dict[str, Any]) -> str:
    """The broker's `release.granted` and `release.denied`: one note on the task's ticket per event."""

    def step(session: Session, adapter: PsaAdapter) -> str:
        return push.add_release_note(session, adapter=adapter, envelope=envelope)

    return run_once(self, envelope, step)


@app.task(name=REGISTER_CALLBACK, bind=True, max_retries=None)
def register_callback(self: Task) -> str:
    """Make sure the PSA calls INTAKE_PSA_CALLBACK_URL (idempotent: nothing when it already does)."""
    try:
        done = register_configured_callback(get_adapter(), get_settings())
    except VendorTransientError as exc:
        countdown = min(REGISTER_RETRY_MAX_S, 5.0 * 2.0 ** int(self.request.retries or 0))
        log.warning("psa_callback_registration_retry", error=type(exc).__name__, countdown_s=countdown)
        raise self.retry(countdown=countdown) from None
    except (VendorPermanentError, ValueError) as exc:
        # Wrong keys or board: a person must fix the settings; retrying would only hammer the PSA.
        log.error("psa_callback_registration_refused", error=type(exc).__name__)
        return "refused"
    log.info("psa_callback_registration", registered=done)
    return "registered" if done else "disabled"


@worker_ready.connect
def _register_at_start(**_: Any) -> None:
    settings = get_settings()
    if settings.psa_provider != "none" and settings.psa_callback_url:
        register_callback.delay()
