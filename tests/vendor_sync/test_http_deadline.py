"""mspkit.http against a real slow server (vendor_sim in a uvicorn thread): deadline and size cap."""

from __future__ import annotations

import time

import httpx
import pytest

from mspkit.http import DeadlineExceeded, FetchLimits, RetryPolicy, VendorHTTP, VendorResponseError


def _http(sim_url: str, deadline_s: float) -> VendorHTTP:
    return VendorHTTP(
        "sim",
        allowed_hosts=[sim_url.split("//", 1)[1]],
        limits=FetchLimits(deadline_s=deadline_s, read_timeout_s=5),
        retry=RetryPolicy(max_attempts=1),
    )


def test_drip_is_cut_off_by_the_wall_clock_deadline(sim_url: str) -> None:
    # 30 s of drip in 60 pieces: each read is fast, so only a total deadline stops it.
    httpx.post(f"{sim_url}/_sim/faults", json={"mode": "drip", "seconds": 30, "chunks": 60}).raise_for_status()
    started = time.monotonic()
    with _http(sim_url, deadline_s=1.0) as http, pytest.raises(DeadlineExceeded):
        http.get_json(f"{sim_url}/rdap/domain/example.com")
    assert time.monotonic() - started < 10


def test_stalled_response_is_cut_off_by_the_deadline(sim_url: str) -> None:
    httpx.post(f"{sim_url}/_sim/faults", json={"mode": "delay", "seconds": 30}).raise_for_status()
    started = time.monotonic()
    with _http(sim_url, deadline_s=1.0) as http, pytest.raises(DeadlineExceeded):
        http.get_json(f"{sim_url}/rdap/domain/example.com")
    assert time.monotonic() - started < 10


def test_huge_streamed_body_is_refused(sim_url: str) -> None:
    httpx.post(f"{sim_url}/_sim/faults", json={"mode": "huge", "size_mb": 50}).raise_for_status()
    started = time.monotonic()
    with _http(sim_url, deadline_s=20) as http, pytest.raises(VendorResponseError, match="over"):
        http.get_json(f"{sim_url}/rdap/domain/example.com")
    assert time.monotonic() - started < 15


def test_normal_answer_within_deadline(sim_url: str) -> None:
    with _http(sim_url, deadline_s=5) as http:
        assert http.get_json(f"{sim_url}/rdap/domain/example.com").data["ldhName"] == "example.com"
