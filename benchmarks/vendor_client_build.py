"""Benchmark: building a job's vendor HTTP client with the process's shared TLS context, against a new one each time.

    .venv/bin/python benchmarks/vendor_client_build.py [--rounds 7] [--clients 50]

A provisioning run builds one client per vendor account it calls (`mspkit.http.make_client`, through the
adapter) and unwraps each key at Vault; each built its own TLS context, which loads certifi's CA bundle.
Rounds alternate between the variants (`own`: a context per client, as before; `shared`: the default,
`default_ssl_context()`); the minimum and the median of the rounds are printed in milliseconds per
client, with their ratio. Nothing is connected: this is the cost paid before the first byte is sent.
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx

from mspkit.http.client import make_client
from mspkit.http.transport import default_ssl_context


def _own() -> None:
    make_client(ssl_context=httpx.create_ssl_context(trust_env=False)).close()


def _shared() -> None:
    make_client().close()


def main() -> None:
    """Print ms per client built, own context against shared, and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    default_ssl_context()  # built once per process, as the first job's client would
    timings: dict[str, list[float]] = {"own": [], "shared": []}
    for _ in range(args.rounds):
        for name, build in (("own", _own), ("shared", _shared)):
            start = time.perf_counter()
            for _ in range(args.clients):
                build()
            timings[name].append((time.perf_counter() - start) * 1000 / args.clients)
    for name, values in timings.items():
        print(f"{name:>7}: min {min(values):8.3f} ms  median {statistics.median(values):8.3f} ms per client")
    ratio = statistics.median(timings["own"]) / statistics.median(timings["shared"])
    print(f"  ratio: own / shared = {ratio:.0f}x (median)")


if __name__ == "__main__":
    main()
