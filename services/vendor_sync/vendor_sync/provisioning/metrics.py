"""Per-step metrics and log lines: vendor, outcome, duration (Prometheus, in the worker's registry)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import Counter, Histogram

from mspkit.logging import get_logger

STEPS = Counter(
    "vendor_sync_provisioning_steps_total",
    "Provisioning steps finished, by step, vendor and outcome",
    ["step", "vendor", "outcome"],
)
STEP_SECONDS = Histogram(
    "vendor_sync_provisioning_step_seconds",
    "Time a provisioning step took (vendor calls included), by step and vendor",
    ["step", "vendor"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RUNS = Counter("vendor_sync_provisioning_runs_total", "Provisioning runs finished, by outcome", ["outcome"])
log = get_logger("vendor_sync.provisioning")


@dataclass
class StepTimer:
    """Set `outcome` (succeeded, failed, retry) before the block ends; `vendor` when it is known late."""

    vendor: str
    outcome: str = "error"


@contextmanager
def timed_step(*, run_id: uuid.UUID, task_id: uuid.UUID, step: str, vendor: str) -> Iterator[StepTimer]:
    """Time one step's go and log and count it with its vendor and outcome (an exception counts as `error`)."""
    timer = StepTimer(vendor=vendor)
    started = time.perf_counter()
    try:
        yield timer
    finally:
        elapsed = time.perf_counter() - started
        STEPS.labels(step, timer.vendor, timer.outcome).inc()
        STEP_SECONDS.labels(step, timer.vendor).observe(elapsed)
        log.info(
            "provisioning_step",
            run_id=str(run_id),
            task_id=str(task_id),
            step=step,
            vendor=timer.vendor,
            outcome=timer.outcome,
            duration_ms=round(elapsed * 1000, 1),
        )
