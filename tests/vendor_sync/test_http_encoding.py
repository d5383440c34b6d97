"""mspkit.http reads raw bytes and refuses any Content-Encoding but identity: a gzip bomb never inflates."""

from __future__ import annotations

import sys
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import respx

from mspkit.http import VendorResponseError

sys.path.insert(0, str(Path(__file__).parent))
from test_http_servers import RecordingServer, Reply, gzip_bomb, make_http, serve

__all__ = ["serve"]  # a fixture, used by name
API = "https://api.vendor.example"
PEAK_LIMIT = 64 * 1024 * 1024


class OnceStream(httpx.SyncByteStream):
    """A body served as one chunk that remembers whether anyone pulled it (respx pre-reads only ByteStream)."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.pulled = False

    def __iter__(self) -> Iterator[bytes]:
        self.pulled = True
        yield self.body


def peak_while(call: Callable[[], object]) -> tuple[int, BaseException | None]:
    """Run call under tracemalloc; return the peak of traced memory during it and what it raised."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    error: BaseException | None = None
    try:
        call()
    except Exception as exc:
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, error


@respx.mock
def test_gzip_bomb_is_refused_without_inflating_it() -> None:
    stream = OnceStream(gzip_bomb())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    respx.get(f"{API}/bomb").mock(return_value=httpx.Response(200, headers=headers, stream=stream))
    with make_http([API]) as http:
        peak, error = peak_while(lambda: http.get_json(f"{API}/bomb"))
    assert peak < PEAK_LIMIT
    assert isinstance(error, VendorResponseError)
    assert str(error) == f"response from {API}/bomb has Content-Encoding 'gzip'; only identity is accepted"
    assert not stream.pulled


def test_gzip_bomb_from_a_real_server_is_refused_under_the_memory_bound(
    serve: Callable[..., RecordingServer],
) -> None:
    server = serve()
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    server.replies["/bomb"] = Reply(200, headers=headers, body=gzip_bomb())
    with make_http([server.origin()]) as http:
        peak, error = peak_while(lambda: http.get_json(f"{server.origin()}/bomb"))
    assert peak < PEAK_LIMIT
    assert isinstance(error, VendorResponseError)
    assert "has Content-Encoding 'gzip'; only identity is accepted" in str(error)


@pytest.mark.parametrize("encoding", ["br", "zstd", "deflate", "x-gzip", "identity, gzip", "compress"])
@respx.mock
def test_any_encoding_but_identity_is_refused(encoding: str) -> None:
    stream = OnceStream(b'{"ok": true}')
    headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
    route = respx.get(f"{API}/x").mock(return_value=httpx.Response(200, headers=headers, stream=stream))
    with make_http([API]) as http, pytest.raises(VendorResponseError, match="only identity is accepted"):
        http.get_json(f"{API}/x")
    assert route.call_count == 1  # a hostile body is not retried
    assert not stream.pulled


@pytest.mark.parametrize("headers", [{}, {"Content-Encoding": "identity"}, {"Content-Encoding": "Identity"}])
@respx.mock
def test_identity_bodies_are_read_as_sent(headers: dict[str, str]) -> None:
    respx.get(f"{API}/x").mock(
        return_value=httpx.Response(
            200, headers={"Content-Type": "application/json", **headers}, stream=OnceStream(b'{"ok": true}')
        )
    )
    with make_http([API]) as http:
        assert http.get_json(f"{API}/x").data == {"ok": True}
