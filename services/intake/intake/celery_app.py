"""Celery app for intake (skeleton)."""

import os

from celery import Celery

app = Celery("intake", broker=os.environ.get("MSP_REDIS_URL", "redis://127.0.0.1:1/0"))
