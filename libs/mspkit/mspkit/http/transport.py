"""An httpx transport that connects only to addresses the AddressGuard has checked."""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from functools import lru_cache

import httpcore
import httpx

from mspkit.http.addresses import AddressGuard
from mspkit.http.errors import AddressNotAllowed

# The shape httpcore accepts for setsockopt arguments.
SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class GuardedBackend(httpcore.SyncBackend):
    """Resolve, check every address, then connect to a checked one; TLS still uses the hostname."""

    def __init__(self, guard: AddressGuard) -> None:
        self.guard = guard

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        """Open a TCP connection to a checked address of host (never a second, unchecked lookup)."""
        try:
            addresses = self.guard.addresses_for(host, port)
        except (OSError, ValueError) as exc:
            # A name that does not resolve (or to junk) may resolve later: a transient connect error.
            raise httpcore.ConnectError(f"cannot resolve {host}: {type(exc).__name__}") from None
        last: Exception = httpcore.ConnectError(f"no address for {host}")
        options = list(socket_options or [])
        for address in addresses:
            try:
                # httpcore then starts TLS with server_hostname=host, so SNI and certificate checks
                # are for the name while the socket goes to the address that was checked.
                return super().connect_tcp(address, port, timeout, local_address, options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[SocketOption] | None = None
    ) -> httpcore.NetworkStream:
        """Refused: vendor calls go over TCP only."""
        raise AddressNotAllowed("request refused: unix sockets are not used for vendor calls")


@lru_cache(maxsize=1)
def default_ssl_context() -> ssl.SSLContext:
    """The process's one verifying TLS context (certifi's CA bundle, nothing from the environment).

    Building a context loads the CA bundle, about 14 ms of CPU; a job builds a client per vendor
    account, so each built its own context in the job's critical path (docs/benchmarks.md,
    provisioning). A context is read-only once built and safe to share between clients and threads.
    """
    return httpx.create_ssl_context(trust_env=False)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport, with a connection pool whose network backend is the GuardedBackend."""

    def __init__(self, guard: AddressGuard, *, limits: httpx.Limits, ssl_context: ssl.SSLContext | None = None) -> None:
        # trust_env=False: no proxy, SSL_CERT_FILE or .netrc picked up from the environment.
        context = ssl_context or default_ssl_context()
        super().__init__(verify=context, limits=limits, trust_env=False)
        # httpx has no public hook for the network backend; this pool is the one httpx builds, plus ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(guard),
        )
