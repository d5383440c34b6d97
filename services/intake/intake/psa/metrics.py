"""PSA counters: calls by operation and outcome, callbacks by verdict (labels are fixed words, never ids)."""

from __future__ import annotations

from prometheus_client import Counter

CALLS = Counter(
    "msp_psa_calls",
    "Calls to the PSA's API, by operation and outcome (ok, or the kind of error)",
    ["provider", "operation", "outcome"],
)
CALLBACKS = Counter(
    "msp_psa_callbacks",
    "PSA callbacks checked, by verdict (verified, or why they were rejected)",
    ["provider", "outcome"],
)
KEY_FETCHES = Counter(
    "msp_psa_key_fetches", "Fetches of a callback signing key from the PSA, by outcome", ["provider", "outcome"]
)
