"""Reading a vendor body: raw bytes only, identity encoding only, under a size cap and a deadline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from mspkit.http.errors import DeadlineExceeded, VendorResponseError


@dataclass(frozen=True)
class VendorResponse:
    """A fully read 2xx response; `url` is the redacted final URL."""

    status: int
    url: str
    headers: httpx.Headers
    body: bytes


def refuse_content_encoding(response: httpx.Response, *, where: str, vendor: str | None) -> None:
    """Raise VendorResponseError unless the body is sent as is (no Content-Encoding, or identity)."""
    codings = [c.strip().lower() for c in response.headers.get_list("content-encoding", split_commas=True)]
    # We ask for identity; a compressed body could be a bomb (200 KB of gzip is 200 MB of zeros), and
    # decoding it at all is attack surface a 5 MB JSON answer does not need.
    unexpected = [c for c in codings if c and c != "identity"]
    if unexpected:
        shown = ", ".join(unexpected)[:40]
        message = f"response from {where} has Content-Encoding {shown!r}; only identity is accepted"
        raise VendorResponseError(message, vendor=vendor)


def read_capped(
    response: httpx.Response,
    *,
    deadline: float,
    deadline_s: float,
    max_bytes: int,
    clock: Callable[[], float],
    where: str,
    vendor: str | None,
) -> bytes:
    """Read the raw body, refusing an encoded one, one over max_bytes, or one still arriving at the deadline."""
    refuse_content_encoding(response, where=where, vendor=vendor)
    declared = response.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > max_bytes:
        raise VendorResponseError(f"response from {where} declares {int(declared)} bytes, over the cap", vendor=vendor)
    chunks: list[bytes] = []
    total = 0
    # iter_raw: httpx's decoders never run, so what is counted is what is kept. No chunk_size: httpx
    # would buffer up to it, and the deadline is only checked between chunks.
    for chunk in response.iter_raw():
        total += len(chunk)
        if total > max_bytes:
            raise VendorResponseError(f"response from {where} is over {max_bytes} bytes", vendor=vendor)
        chunks.append(chunk)
        if clock() > deadline:
            raise DeadlineExceeded(f"response from {where} exceeded its {deadline_s:g}s deadline", vendor=vendor)
    return b"".join(chunks)
