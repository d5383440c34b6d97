"""Celery app for vendor_sync (skeleton)."""

import os

from celery import Celery

app = Celery("vendor_sync", broker=os.environ.get("MSP_REDIS_URL", "redis://127.0.0.1:1/0"))
