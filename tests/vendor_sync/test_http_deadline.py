"""mspkit.http against a real slow server (vendor_sim in a uvicorn thread): deadline and size cap.

No test measures how long anything took. The deadline is checked on an injected clock, and what the
client did is read from the exchange itself: the timeout httpx was given, and how many body bytes
were downloaded before the client gave up.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from mspkit.http import DeadlineExceeded, FetchLimits, RetryPolicy, VendorHTTP, VendorResponseError
from mspkit.http.client import MAX_BODY_BYTES


class ManualClock:
    """A monotonic clock that moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Exchange:
    """What the client asked httpx for and what came back (httpx's own request and response hooks)."""

    def __init__(self, http: VendorHTTP, on_response: Callable[[], None] = lambda: None) -> None:
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []
        self._on_response = on_response
        http.client.event_hooks = {"request": [self.requests.append], "response": [self._response]}

    def _response(self, response: httpx.Response) -> None:
        self.responses.append(response)
        self._on_response()


def _http(sim_url: str, deadline_s: float, clock: Callable[[], float] = time.monotonic) -> VendorHTTP:
    return VendorHTTP(
        "sim",
        allowed_hosts=[sim_url.split("//", 1)[1]],
        limits=FetchLimits(deadline_s=deadline_s, read_timeout_s=5),
        retry=RetryPolicy(max_attempts=1),
        clock=clock,
    )


def _full_body_size(sim_url: str) -> int:
    return len(httpx.get(f"{sim_url}/rdap/domain/example.com").content)


def test_drip_is_cut_off_by_the_wall_clock_deadline(sim_url: str) -> None:
    full = _full_body_size(sim_url)
    # 60 pieces, each well within the 5 s read timeout: only a total deadline can stop the body.
    httpx.post(f"{sim_url}/_sim/faults", json={"mode": "drip", "seconds": 6, "chunks": 60}).raise_for_status()
    clock = ManualClock()
    with _http(sim_url, deadline_s=1.0, clock=clock) as http:
        # The headers arrive in time; the deadline passes while the body is still dripping.
        exchange = Exchange(http, on_response=lambda: clock.advance(1.5))
        with pytest.raises(DeadlineExceeded, match="exceeded its 1s deadline"):
            http.get_json(f"{sim_url}/rdap/domain/example.com")
    [response] = exchange.responses
    assert response.status_code == 200
    # Cut off mid-body: what was read is a piece of the answer, not the answer.
    assert 0 < response.num_bytes_downloaded < full


def test_stalled_response_is_cut_off_by_the_deadline(sim_url: str) -> None:
    httpx.post(f"{sim_url}/_sim/faults", json={"mode": "delay", "seconds": 30}).raise_for_status()
    with _http(sim_url, deadline_s=1.0) as http:
        exchange = Exchange(http)
        with pytest.raises(DeadlineExceeded, match="exceeded its 1s deadline"):
            http.get_json(f"{sim_url}/rdap/domain/example.com")
    # One request, whose wait httpx bounded by what was left of the 1 s deadline, not by the 5 s read
    # timeout (nor by the server's 30 s): no answer ever came.
    [request] = exchange.requests
    timeout = request.extensions["timeout"]
    assert 0 < timeout["read"] <= 1.0 and timeout["connect"] <= 1.0 and timeout["pool"] <= 1.0
    assert exchange.responses == []


def test_huge_streamed_body_is_refused(sim_url: str) -> None:
    httpx.post(f"{sim_url}/_sim/faults", json={"mode": "huge", "size_mb": 50}).raise_for_status()
    # A clock that never moves: the deadline cannot fire, so only the size cap can stop the body.
    with _http(sim_url, deadline_s=20, clock=lambda: 0.0) as http:
        exchange = Exchange(http)
        with pytest.raises(VendorResponseError, match=f"is over {MAX_BODY_BYTES} bytes"):
            http.get_json(f"{sim_url}/rdap/domain/example.com")
    [response] = exchange.responses
    # Reading stopped at the first chunk past the 5 MB cap, far short of the 50 MB sent.
    assert MAX_BODY_BYTES < response.num_bytes_downloaded < MAX_BODY_BYTES + 1024 * 1024


def test_normal_answer_within_deadline(sim_url: str) -> None:
    with _http(sim_url, deadline_s=5) as http:
        assert http.get_json(f"{sim_url}/rdap/domain/example.com").data["ldhName"] == "example.com"
