"""Garbage-collector settings for long-running API processes.

An API process imports a large, permanent heap (FastAPI, pydantic, SQLAlchemy, the app's models),
and with the default thresholds every young-generation collection that gets promoted eventually
makes the collector walk all of it again. Under load the requests in flight keep their objects
alive across collections, so promotions are frequent; measured on intake's `POST /v1/requests`
(docs/benchmarks.md) the default settings cost about a third of the app's CPU per request.

`tune()` is what Instagram and others do for such processes: after start-up, move everything that
exists into the permanent generation (`gc.freeze()`, so full collections skip it) and collect the
young generation less often. Reference cycles are still collected; memory stays bounded.
"""

from __future__ import annotations

import gc

# Young collections every 10,000 net allocations instead of 700; older generations as before.
GEN0_THRESHOLD = 10_000


_tuned = False


def tune(gen0_threshold: int = GEN0_THRESHOLD) -> None:
    """Freeze the start-up heap and raise the young-generation threshold, once per process (after imports)."""
    global _tuned
    if _tuned:  # a test process starts many apps: freeze only the first time
        return
    _tuned = True
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)
