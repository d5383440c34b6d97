"""Celery app of the broker worker (queue `secrets_broker`) and of the relay that publishes to it."""

from mspkit.queue import make_celery
from secrets_broker.settings import get_settings

app = make_celery("secrets_broker", get_settings().redis_url)
