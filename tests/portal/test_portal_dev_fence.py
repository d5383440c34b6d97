"""Outside dev the portal refuses an http:// issuer or portal URL, and the dev issuer itself (`mspctl_dev`)."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from portal.auth.oidc import OIDCClient, SignInRefused
from portal.settings import Settings


def _production(monkeypatch, **overrides):
    monkeypatch.setenv("MSP_ENV", "production")
    monkeypatch.setenv("MSP_JWT_ISSUER", "https://idp.example")
    monkeypatch.setenv("MSP_PORTAL_URL", "https://portal.example")
    # The test stack's pod is framed by the simulator at http://localhost: production needs an https PSA.
    monkeypatch.setenv("PORTAL_PSA_PROVIDER", "connectwise")
    monkeypatch.setenv("PORTAL_PSA_ORIGIN", "https://psa.example")
    for secret in ("PORTAL_CLIENT_SECRET", "PORTAL_SESSION_KEY", "PORTAL_SERVICE_CLIENT_SECRET"):
        monkeypatch.setenv(secret, "a-real-looking-secret-for-this-check")  # placeholders are refused first
    for name, value in overrides.items():
        monkeypatch.setenv(name, value)


def test_https_urls_are_accepted_outside_dev(monkeypatch):
    _production(monkeypatch)
    assert not Settings().is_dev


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"MSP_JWT_ISSUER": "http://idp.example"}, "MSP_JWT_ISSUER must be an https:// issuer outside MSP_ENV=dev"),
        ({"MSP_PORTAL_URL": "http://portal.example"}, "MSP_PORTAL_URL must be https:// outside MSP_ENV=dev"),
        ({"PORTAL_PSA_ORIGIN": "http://psa.example"}, "PORTAL_PSA_ORIGIN must be https:// outside MSP_ENV=dev"),
    ],
)
def test_http_urls_are_refused_outside_dev(monkeypatch, overrides, words):
    _production(monkeypatch, **overrides)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert words in str(refused.value)


def test_the_dev_issuer_is_refused_outside_dev():
    dev = Settings()  # the test stack's settings: MSP_ENV=dev, the real dev issuer
    assert dev.is_dev
    assert asyncio.run(OIDCClient(dev).metadata())["mspctl_dev"] is True
    # The same issuer seen by a production portal (validation skipped, as if its URL were https).
    production = dev.model_copy(update={"env": "production"})
    with pytest.raises(SignInRefused, match=r"dev issuer \(mspctl_dev\), refused outside MSP_ENV=dev"):
        asyncio.run(OIDCClient(production).metadata())
