"""mspkit.ids (time-ordered ids) and mspkit.gctune (collector settings applied at app start-up)."""

from __future__ import annotations

import gc
import time

from fastapi.testclient import TestClient

from mspkit import gctune
from mspkit.app import create_app
from mspkit.ids import new_id
from mspkit.outbox import make_envelope
from mspkit.settings import KitSettings


class _Settings(KitSettings):
    service_name = "kit"


def test_ids_are_version_7_and_sort_by_creation_time():
    first = new_id()
    time.sleep(0.002)  # v7 orders by millisecond; within one millisecond the order is random
    second = new_id()
    assert first.version == second.version == 7
    assert first < second
    assert len({new_id() for _ in range(10_000)}) == 10_000


def test_event_ids_are_time_ordered_too():
    envelope = make_envelope(type="t", client_id=None, aggregate_id=None, data={})
    assert envelope["event_id"][14] == "7"


def test_an_app_start_freezes_the_heap_and_raises_the_young_threshold(monkeypatch):
    monkeypatch.setattr(gctune, "_tuned", False)
    before = gc.get_threshold()
    try:
        with TestClient(create_app(service="kit", settings=_Settings())):
            assert gc.get_threshold()[0] == gctune.GEN0_THRESHOLD
            assert gc.get_freeze_count() > 0
        gc.set_threshold(700, 10, 10)
        with TestClient(create_app(service="kit", settings=_Settings())):
            assert gc.get_threshold()[0] == 700  # once per process: a second app leaves the settings alone
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
