"""Celery app of the broker worker (queue `secrets_broker`) and of the relay that publishes to it.

Worker: `mspctl run-with-secret-id msp-broker-revoker -- celery -A secrets_broker.celery_app worker
-Q secrets_broker`. It runs the thread pool (one process holds the one Vault token a single-use
secret id gives; see `revocation/sweeper.py`). Its tasks are in `jobs.py`.
"""

from __future__ import annotations

from typing import Any

from celery.signals import setup_logging, worker_init, worker_shutdown

from mspkit.logging import configure_logging
from mspkit.queue import VISIBILITY_TIMEOUT_S, make_celery
from secrets_broker.settings import get_settings

QUEUE = "secrets_broker"

settings = get_settings()
app = make_celery(QUEUE, settings.redis_url, include=["secrets_broker.jobs"])
app.conf.update(
    worker_pool="threads",
    worker_concurrency=settings.worker_concurrency,
    task_routes={"secrets_broker.*": {"queue": QUEUE}},
    broker_transport_options={
        "visibility_timeout": VISIBILITY_TIMEOUT_S,
        # A dead Redis must fail a publish in seconds, not hang the relay.
        "socket_connect_timeout": 3,
        "socket_timeout": 10,
    },
)


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    # Connecting this signal stops Celery from installing its own (unredacted) handlers.
    configure_logging("secrets_broker-worker", settings.log_level, secrets=settings.secret_values())


@worker_init.connect
def _worker_init(**_: Any) -> None:
    from secrets_broker.revocation.sweeper import start_worker

    # worker_init fires before setup_logging: the login must not log through structlog's defaults.
    _configure_logging()
    start_worker()


@worker_shutdown.connect
def _worker_shutdown(**_: Any) -> None:
    from secrets_broker.revocation.sweeper import stop_worker

    stop_worker()
