"""JWKS caching and key rotation, and service-token renewal before expiry."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mspkit.auth import JWTVerifier
from mspkit.errors import Unauthenticated
from mspkit.jwks import JWKSClient
from mspkit.service_tokens import ServiceTokenSource


class _JWKSServer:
    """A JWKS endpoint whose key set the test can rotate, counting fetches."""

    def __init__(self) -> None:
        self.keys: list[dict] = []
        self.fetches = 0
        self.gate = threading.Event()  # cleared: requests wait until the test sets it
        self.gate.set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                outer.gate.wait(30)
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/jwks"


def _jwk(key: Ed25519PrivateKey, kid: str) -> dict:
    public = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "alg": "EdDSA", "use": "sig"}


def _token(key: Ed25519PrivateKey, kid: str) -> str:
    now = int(time.time())
    claims = {"iss": "iss", "aud": "intake", "sub": "t", "role": "technician", "exp": now + 60, "nbf": now}
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _verifier(url: str, clock: Clock | None = None, **kwargs: float) -> JWTVerifier:
    verifier = JWTVerifier(issuer="iss", jwks_url=url, audience="intake")
    verifier.jwks = JWKSClient(url, clock=clock or time.monotonic, **kwargs)
    return verifier


def _wait_for_refresh(verifier: JWTVerifier) -> None:
    for _ in range(500):  # bounded: the background fetch is local
        if not verifier.jwks._refreshing.locked():
            return
        threading.Event().wait(0.01)
    raise AssertionError("the background refresh never finished")


def test_keys_are_cached_and_a_rotated_key_is_fetched():
    server = _JWKSServer()
    clock = Clock()
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    server.keys = [_jwk(old, "k1")]
    verifier = _verifier(server.url, clock, min_refetch_s=0)  # let the test rotate at once
    for _ in range(5):
        assert verifier.verify(_token(old, "k1")).sub == "t"
    assert server.fetches == 1  # cached
    server.keys = [_jwk(old, "k1"), _jwk(new, "k2")]  # the issuer rotates in a new key
    assert verifier.verify(_token(new, "k2")).sub == "t"
    assert server.fetches == 2
    server.keys = [_jwk(new, "k2")]  # and later retires the old one
    clock.now += verifier.jwks.ttl_s + 1
    assert verifier.jwks.jwk_set_cache is not None
    verifier.jwks.jwk_set_cache.lifespan = 0  # PyJWT's own cache lapses with ours
    # Past its ttl the set is served once more while one background fetch replaces it.
    assert verifier.verify(_token(old, "k1")).sub == "t"
    _wait_for_refresh(verifier)
    assert server.fetches == 3
    with pytest.raises(Unauthenticated, match="unknown signing key"):
        verifier.verify(_token(old, "k1"))


def test_service_token_is_renewed_before_expiry(stack_env):
    source = ServiceTokenSource(
        token_url=stack_env["MSP_TOKEN_URL"],
        client_id="svc:vendor_sync",
        client_secret=stack_env["VENDOR_SYNC_SERVICE_CLIENT_SECRET"],
    )
    first = source.token("intake")
    assert source.token("intake") == first
    other = source.token("secrets_broker")  # one token per target, each cached on its own
    assert other != first and source.token("secrets_broker") == other
    token, _ = source._tokens["intake"]
    source._tokens["intake"] = (token, time.monotonic() + source.RENEW_BEFORE_S - 1)  # within the renewal margin
    assert source.token("intake") != first
    assert source.token("secrets_broker") == other


def test_unknown_kids_do_not_refetch_within_the_cooldown():
    """Forged tokens with random kids cost one fetch per cooldown, not one each."""
    server = _JWKSServer()
    key, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    server.keys = [_jwk(key, "k1")]
    verifier = JWTVerifier(issuer="iss", jwks_url=server.url, audience="intake")
    assert verifier.verify(_token(key, "k1")).sub == "t"
    for n in range(5):
        with pytest.raises(Unauthenticated, match="unknown signing key"):
            verifier.verify(_token(stranger, f"forged-{n}"))
    assert server.fetches == 1


def test_a_stale_set_is_served_while_one_background_fetch_waits_on_a_slow_issuer():
    """Known kids never wait for the issuer within the grace period: one refresh runs, the rest go on."""
    server = _JWKSServer()
    clock = Clock()
    key = Ed25519PrivateKey.generate()
    server.keys = [_jwk(key, "k1")]
    verifier = _verifier(server.url, clock)
    assert verifier.verify(_token(key, "k1")).sub == "t"
    server.gate.clear()  # the issuer now hangs until the test lets it answer
    clock.now += verifier.jwks.ttl_s + 1
    assert verifier.jwks.jwk_set_cache is not None
    verifier.jwks.jwk_set_cache.lifespan = 0  # PyJWT's own cache lapses with ours
    for _ in range(5):  # would block behind the hanging fetch if the stale set were not served
        assert verifier.verify(_token(key, "k1")).sub == "t"
    server.gate.set()
    _wait_for_refresh(verifier)
    assert server.fetches == 2  # the first fetch and one refresh, not one per verification


def _verified_then_issuer_down(clock: Clock) -> tuple[JWTVerifier, Ed25519PrivateKey]:
    """A verifier that has fetched the key set once, and an issuer that has gone away since."""
    server = _JWKSServer()
    key = Ed25519PrivateKey.generate()
    server.keys = [_jwk(key, "k1")]
    verifier = _verifier(server.url, clock)
    assert verifier.verify(_token(key, "k1")).sub == "t"
    server.server.shutdown()
    server.server.server_close()
    return verifier, key


def _lapse(verifier: JWTVerifier, clock: Clock, seconds: float) -> None:
    """Move the clock on; PyJWT's own cache lapses with ours."""
    clock.now += seconds
    assert verifier.jwks.jwk_set_cache is not None
    verifier.jwks.jwk_set_cache.lifespan = 0


def test_last_key_set_is_served_while_the_issuer_is_down():
    clock = Clock()
    verifier, key = _verified_then_issuer_down(clock)
    _lapse(verifier, clock, verifier.jwks.ttl_s + 1)
    assert verifier.verify(_token(key, "k1")).sub == "t"
    _wait_for_refresh(verifier)
    assert verifier.verify(_token(key, "k1")).sub == "t"  # the failed refresh kept the set


def test_past_the_grace_period_an_unreachable_issuer_refuses():
    clock = Clock()
    verifier, key = _verified_then_issuer_down(clock)
    _lapse(verifier, clock, verifier.jwks.ttl_s + verifier.jwks.grace_s + 1)
    with pytest.raises(Unauthenticated, match="identity provider unreachable"):
        verifier.verify(_token(key, "k1"))


def test_issuer_down_with_nothing_cached_is_unauthenticated():
    server = _JWKSServer()
    url = server.url
    server.server.shutdown()
    server.server.server_close()
    verifier = JWTVerifier(issuer="iss", jwks_url=url, audience="intake")
    with pytest.raises(Unauthenticated, match="identity provider unreachable"):
        verifier.verify(_token(Ed25519PrivateKey.generate(), "k1"))
