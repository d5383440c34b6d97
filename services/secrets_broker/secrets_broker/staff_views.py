"""Technicians' staff views from intake's directory (`GET /internal/staff/{sub}`), one reader per process.

The API reads them for need-to-know (the kit's role checks attach them, see main.py); the worker
only drops them on `staff.changed` (jobs.py). The views are cached in the broker's Redis at most
30 s (`mspkit.staff_directory`), so API processes and the worker share them; this module loads
neither the request layer nor the intake client, which the worker must not import.
"""

from __future__ import annotations

from functools import lru_cache

from mspkit.service_tokens import service_client
from mspkit.staff_directory import StaffDirectory
from secrets_broker.settings import get_settings


@lru_cache
def get_staff_directory() -> StaffDirectory:
    """The process's reader of intake's staff views, authenticated as `svc:secrets_broker`."""
    settings = get_settings()
    timeout_s = settings.intake_timeout_s
    intake = service_client(settings, base_url=settings.intake_url, audience="intake", timeout_s=timeout_s)
    return StaffDirectory(intake=intake, redis_url=settings.redis_url, service="secrets_broker")
