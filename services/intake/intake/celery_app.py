"""Celery app used by intake's relay to publish (intake runs no worker of its own)."""

from intake.settings import get_settings
from mspkit.queue import make_celery

app = make_celery("intake", get_settings().redis_url)
