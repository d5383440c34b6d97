"""Real local servers for the vendor HTTP kit's tests: they record every connection and the headers they got.

Imported by the other test_http_* modules; its own tests check that the recorder itself is not blind.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import socket
import ssl
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mspkit.http import RetryPolicy, VendorHTTP

API_KEY = "CANARY-api-key-7f3a"
# Every credential header the kit must drop when a redirect leaves the first origin, plus one of the
# adapter's own (configured through credential_headers).
CREDENTIALS = {
    "Authorization": f"Bearer {API_KEY}",
    "Proxy-Authorization": f"Basic {API_KEY}",
    "Cookie": f"session={API_KEY}",
    "X-API-Key": API_KEY,
    "X-Auth-Key": API_KEY,
    "X-Auth-Email": "ops@msp.example",
    "X-Vendor-Secret": API_KEY,
}
ADAPTER_KEY_HEADER = "X-Vendor-Secret"


def make_http(allowed: list[str], **kwargs: Any) -> VendorHTTP:
    """The kit as an adapter builds it, with one attempt so that each test sees exactly what was sent."""
    options: dict[str, Any] = {"retry": RetryPolicy(max_attempts=1), "credential_headers": [ADAPTER_KEY_HEADER]}
    return VendorHTTP("test", allowed_hosts=allowed, **{**options, **kwargs})


@dataclass
class Reply:
    """What the server answers on one path."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    body: bytes = b'{"ok": true}'


@dataclass(frozen=True)
class Received:
    """One request as the server saw it (header names lower-cased)."""

    path: str
    headers: dict[str, str]


class RecordingServer:
    """A threaded HTTP(S) server on a loopback address that records every connection and request."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.replies: dict[str, Reply] = {}
        self.requests: list[Received] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._httpd = _RecordingHTTPServer((host, port), _Handler, owner=self)
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self.host, self.port = host, self._httpd.server_address[1]
        self.scheme = "https" if tls is not None else "http"
        # A short poll interval: shutdown() waits for the loop to notice, once per server per test.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def origin(self, host: str | None = None) -> str:
        """scheme://host:port of this server, under another name if given."""
        return f"{self.scheme}://{host or self.host}:{self.port}"

    def start(self) -> RecordingServer:
        """Serve in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def count_connection(self) -> None:
        """Called for every accepted connection."""
        with self._lock:
            self.connections += 1

    def record(self, received: Received) -> Reply:
        """Keep a request and return the reply for its path."""
        with self._lock:
            self.requests.append(received)
        return self.replies.get(received.path, Reply(404, body=b'{"error": "not_found"}'))


class _RecordingHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any, *, owner: RecordingServer) -> None:
        self.owner = owner
        super().__init__(address, handler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.owner.count_connection()
        return True


class _Handler(BaseHTTPRequestHandler):
    server: _RecordingHTTPServer

    def do_GET(self) -> None:
        received = Received(self.path, {k.lower(): v for k, v in self.headers.items()})
        reply = self.server.owner.record(received)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Callable[..., RecordingServer]]:
    """Start RecordingServers on demand; all are stopped after the test."""
    started: list[RecordingServer] = []

    def start(host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> RecordingServer:
        server = RecordingServer(host, port, tls).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@dataclass(frozen=True)
class TlsPair:
    """A throwaway CA: a server context for some names and a client context trusting only it."""

    server: ssl.SSLContext
    client: ssl.SSLContext


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def make_tls(tmp_path: Path, names: list[str]) -> TlsPair:
    """Issue a leaf certificate for `names` (and 127.0.0.1) from a new CA."""
    now = dt.datetime.now(dt.UTC)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("kit test CA"))
        .issuer_name(_name("kit test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "leaf.pem", tmp_path / "leaf.key"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return TlsPair(server=server, client=client)


@functools.cache
def gzip_bomb() -> bytes:
    """About 200 KB of gzip that inflates to 200 MiB of zeros."""
    # Z_RLE: the same 1:1000 ratio as the default strategy on zeros, in a third of the time.
    packer = zlib.compressobj(9, zlib.DEFLATED, 31, 9, zlib.Z_RLE)
    zeros = bytes(1 << 20)
    parts = [packer.compress(zeros) for _ in range(200)]
    return b"".join([*parts, packer.flush()])


def fake_resolver(table: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    """A resolver answering from a table, like DNS would, and failing for any other name."""

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


class ConnectSpy(list[tuple[str, int]]):
    """Records every socket.create_connection target (install with monkeypatch)."""

    def install(self, monkeypatch: pytest.MonkeyPatch) -> ConnectSpy:
        """Wrap socket.create_connection so that every outgoing connection is recorded."""
        real = socket.create_connection

        def spy(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
            self.append((str(address[0]), int(address[1])))
            return real(address, *args, **kwargs)

        monkeypatch.setattr(socket, "create_connection", spy)
        return self


def test_recorder_sees_connections_and_credential_headers(serve: Callable[..., RecordingServer]) -> None:
    server = serve()
    server.replies["/x"] = Reply()
    response = httpx.get(f"{server.origin()}/x", headers=CREDENTIALS)
    assert response.json() == {"ok": True}
    assert server.connections == 1
    assert [r.path for r in server.requests] == ["/x"]
    assert server.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert server.requests[0].headers["x-vendor-secret"] == API_KEY


def test_tls_server_and_gzip_bomb_are_what_the_tests_assume(
    serve: Callable[..., RecordingServer], tmp_path: Path
) -> None:
    tls = make_tls(tmp_path, ["secure.vendor.test"])
    server = serve(tls=tls.server)
    server.replies["/x"] = Reply()
    with httpx.Client(verify=tls.client) as client:
        assert client.get(f"{server.origin()}/x").json() == {"ok": True}
    bomb = gzip_bomb()
    assert len(bomb) < 210_000
    assert zlib.decompressobj(31).decompress(bomb, 1 << 20) == bytes(1 << 20)
