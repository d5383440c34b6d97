"""mspkit.http attaches a small JSON error body to the status error as `body`, and nothing else, never in its text."""

from __future__ import annotations

import gzip
import logging
import pickle
import traceback
from collections.abc import Callable, Iterator

import httpx
import pytest
import respx

from mspkit.http import (
    ERROR_BODY_MAX_BYTES,
    FetchLimits,
    RateLimited,
    RetryPolicy,
    VendorAuthError,
    VendorError,
    VendorHTTP,
    VendorNotFound,
    VendorPermanentError,
    VendorTransientError,
)

API = "https://api.vendor.example"
URL = f"{API}/v1/things"
SECRET = "canary-KEY-b7e1c4"
JSON = {"Content-Type": "application/json"}
ECHO = b'{"code": "UNABLE_TO_AUTHENTICATE", "message": "bad key ' + SECRET.encode() + b'"}'


class CountingStream(httpx.SyncByteStream):
    """A body served chunk by chunk that counts how many chunks were pulled (respx pre-reads only ByteStream)."""

    def __init__(self, chunks: list[bytes], on_chunk: Callable[[], None] | None = None) -> None:
        self.chunks = chunks
        self.pulled = 0
        self.on_chunk = on_chunk

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.pulled += 1
            if self.on_chunk is not None:
                self.on_chunk()
            yield chunk


def http(**kwargs: object) -> VendorHTTP:
    return VendorHTTP("test", allowed_hosts=[API], retry=RetryPolicy(max_attempts=1), **kwargs)  # type: ignore[arg-type]


def caught(status: int, *, headers: dict[str, str], stream: httpx.SyncByteStream, **kwargs: object) -> VendorError:
    respx.get(URL).mock(return_value=httpx.Response(status, headers=headers, stream=stream))
    with http(**kwargs) as client, pytest.raises(VendorError) as raised:
        client.get_json(URL)
    return raised.value


@respx.mock
@pytest.mark.parametrize(
    ("status", "kind", "content_type"),
    [
        (401, VendorAuthError, "application/json"),
        (404, VendorNotFound, "application/json; charset=utf-8"),
        (422, VendorPermanentError, "application/problem+json"),
        (429, RateLimited, "application/json"),
        (503, VendorTransientError, "application/json"),
    ],
)
def test_json_error_body_is_attached_to_the_status_error(
    status: int, kind: type[VendorError], content_type: str
) -> None:
    body = b'{"code": "NOPE", "message": "the vendor says no", "fields": []}'
    error = caught(status, headers={"Content-Type": content_type}, stream=CountingStream([body[:10], body[10:]]))
    assert type(error) is kind
    assert error.status == status
    assert error.body == body
    assert error.vendor_code is None  # for an adapter to set
    assert str(error) == f"test: HTTP {status} from {URL}"


@respx.mock
def test_an_empty_json_error_body_is_attached_as_empty_bytes() -> None:
    error = caught(400, headers=JSON, stream=CountingStream([]))
    assert error.body == b""


@respx.mock
def test_an_oversized_error_body_is_not_attached_nor_read_beyond_the_cap() -> None:
    chunk = b" " * 8192
    stream = CountingStream([b"{"] + [chunk] * 200 + [b"}"])  # 1.6 MB, no Content-Length
    error = caught(400, headers=JSON, stream=stream)
    assert type(error) is VendorPermanentError and error.status == 400
    assert error.body is None
    # The read stopped at the first chunk over the cap ("{" plus 8 chunks): nothing further was pulled.
    assert stream.pulled == 1 + ERROR_BODY_MAX_BYTES // len(chunk)
    assert stream.pulled < 200


@respx.mock
def test_an_error_body_declaring_a_length_over_the_cap_is_not_read_at_all() -> None:
    stream = CountingStream([b"{}"])
    error = caught(500, headers={**JSON, "Content-Length": str(ERROR_BODY_MAX_BYTES + 1)}, stream=stream)
    assert type(error) is VendorTransientError
    assert error.body is None
    assert stream.pulled == 0


@respx.mock
def test_an_error_body_of_exactly_the_cap_is_attached() -> None:
    body = b'"' + b"x" * (ERROR_BODY_MAX_BYTES - 2) + b'"'
    error = caught(400, headers=JSON, stream=CountingStream([body]))
    assert error.body == body


@respx.mock
def test_the_smaller_of_the_fetch_cap_and_the_error_cap_applies() -> None:
    stream = CountingStream([b'{"message": "' + b"x" * 200 + b'"}'])
    error = caught(400, headers=JSON, stream=stream, limits=FetchLimits(max_bytes=100))
    assert error.body is None


@respx.mock
def test_a_gzip_encoded_error_body_is_not_attached_nor_read() -> None:
    stream = CountingStream([gzip.compress(b'{"code": "NOPE"}')])
    error = caught(400, headers={**JSON, "Content-Encoding": "gzip"}, stream=stream)
    assert type(error) is VendorPermanentError
    assert error.body is None
    assert stream.pulled == 0


@respx.mock
@pytest.mark.parametrize("content_type", ["text/html", "text/plain", "application/octet-stream", None])
def test_a_non_json_error_body_is_not_attached_nor_read(content_type: str | None) -> None:
    stream = CountingStream([b"<html><body>denied</body></html>"])
    headers = {"Content-Type": content_type} if content_type else {}
    error = caught(403, headers=headers, stream=stream)
    assert type(error) is VendorAuthError
    assert error.body is None
    assert stream.pulled == 0


@respx.mock
def test_an_error_body_still_arriving_at_the_deadline_is_dropped_and_the_status_error_stands() -> None:
    now = [0.0]

    def tick() -> None:
        now[0] += 0.4

    stream = CountingStream([b"{", b'"a": 1', b", ", b'"b": 2', b"}"], on_chunk=tick)
    error = caught(
        503,
        headers=JSON,
        stream=stream,
        limits=FetchLimits(deadline_s=1.0),
        clock=lambda: now[0],
    )
    assert type(error) is VendorTransientError and error.status == 503
    assert error.body is None
    assert stream.pulled < 5


@respx.mock
def test_a_success_body_is_unchanged() -> None:
    respx.get(URL).respond(200, json={"ok": True})
    with http() as client:
        assert client.get_json(URL).data == {"ok": True}


@respx.mock
def test_the_body_is_in_no_text_of_the_error(caplog: pytest.LogCaptureFixture) -> None:
    """A vendor echoing a key in its error body cannot leak it through str, repr, args, a log line or a traceback."""
    caplog.set_level(logging.DEBUG)
    error = caught(401, headers=JSON, stream=CountingStream([ECHO]))
    assert error.body == ECHO  # it is there, for the adapter to parse and scrub
    error.vendor_code = "UNABLE_TO_AUTHENTICATE"
    logging.getLogger("test.vendor").warning("vendor call failed: %s %r", error, error)
    logging.getLogger("test.vendor").error("vendor call failed", exc_info=error)
    texts = [
        str(error),
        repr(error),
        repr(error.args),
        "".join(traceback.format_exception(error)),
        caplog.text,
    ]
    for text in texts:
        assert SECRET not in text
    assert error.args == (f"test: HTTP 401 from {URL}",)
    assert repr(error) == f"VendorAuthError('test: HTTP 401 from {URL}')"


def test_body_and_vendor_code_survive_a_copy_but_never_join_args() -> None:
    error = RateLimited("test: HTTP 429", vendor="test", status=429, retry_after=3.0, body=ECHO, vendor_code="971")
    assert error.args == ("test: HTTP 429",)
    assert SECRET not in str(error) and SECRET not in repr(error)
    copied = pickle.loads(pickle.dumps(error))
    assert (copied.body, copied.vendor_code, copied.retry_after) == (ECHO, "971", 3.0)
    assert copied.args == ("test: HTTP 429",)
