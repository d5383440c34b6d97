"""Benchmark: what `mspkit.accesslog` adds per request, in-process, against the same app without it.

    .venv/bin/python benchmarks/access_log.py [--rounds 7] [--requests 20000]

A trivial ASGI endpoint (it sets a route and answers 201) is called directly, without a server, so
nothing else hides the middleware's cost: accepting the caller's id, binding it (kit context variable
and structlog), adding the header, and writing the JSON line through the kit's real logging pipeline
(redaction included) to /dev/null. Rounds alternate between the variants; the minimum and the median
of the rounds are printed, in microseconds per request. `metrics` is the kit's other pure ASGI layer,
for scale. No stack is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from typing import Any

from mspkit.accesslog import AccessLogMiddleware
from mspkit.logging import configure_logging
from mspkit.metrics import MetricsMiddleware


class _Route:
    path = "/v1/releases"


async def _endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
    scope["route"] = _Route
    await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


async def _send(_: dict[str, Any]) -> None:
    return None


async def _per_request_us(app: Any, path: str, n: int) -> float:
    headers = [(b"host", b"bench"), (b"x-request-id", b"bench-0123456789abcdef")]
    start = time.perf_counter()
    for _ in range(n):
        scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
        await app(scope, _receive, _send)
    return (time.perf_counter() - start) / n * 1e6


async def _main(rounds: int, n: int) -> None:
    variants = {
        "bare": (_endpoint, "/v1/releases"),
        "access log (logged)": (AccessLogMiddleware(_endpoint), "/v1/releases"),
        "access log (probe, DEBUG only)": (AccessLogMiddleware(_endpoint), "/healthz"),
        "metrics": (MetricsMiddleware(_endpoint, service="bench"), "/v1/releases"),
    }
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (app, path) in variants.items():
            results[name].append(await _per_request_us(app, path, n))
    bare = min(results["bare"])
    print(f"{'variant':34} {'min us':>8} {'median us':>10} {'added (min)':>12}")
    for name, values in results.items():
        print(f"{name:34} {min(values):8.2f} {statistics.median(values):10.2f} {min(values) - bare:12.2f}")


def main() -> None:
    """Run the rounds and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    real_stderr = sys.stderr
    with open(os.devnull, "w") as devnull:
        sys.stderr = devnull  # the loggers keep the stream they got at configuration
        try:
            configure_logging("bench", "INFO")
        finally:
            sys.stderr = real_stderr
        asyncio.run(_main(args.rounds, args.requests))


if __name__ == "__main__":
    main()
