"""Outside MSP_ENV=dev every service refuses to run badly, with a message naming the setting."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from mspkit.app import create_app
from mspkit.issuer_guard import DevIssuerRefused, IssuerGuard, IssuerUnchecked
from mspkit.settings import KitSettings

GOOD = {
    "MSP_ENV": "production",
    "MSP_JWT_ISSUER": "https://idp.example",
    "MSP_JWKS_URL": "https://idp.example/.well-known/jwks.json",
    "MSP_TOKEN_URL": "https://idp.example/oauth/token",
    "MSP_VAULT_ADDR": "https://openbao.internal:8200",
    "MSP_SMTP_URL": "smtp://relay.example:587",
    "KITSVC_SERVICE_CLIENT_SECRET": "a-real-looking-client-secret",
    "SECRETS_BROKER_SERVICE_CLIENT_SECRET": "a-real-looking-client-secret",
    "SECRETS_BROKER_FINGERPRINT_KEY": "a-real-looking-fingerprint-key",
    "VENDOR_SYNC_SERVICE_CLIENT_SECRET": "a-real-looking-client-secret",
    "PORTAL_CLIENT_SECRET": "a-real-looking-portal-secret",
    "PORTAL_SESSION_KEY": "a-real-looking-session-key",
    "MSP_PORTAL_URL": "https://portal.example",
}


class _Svc(KitSettings):
    model_config = {"env_prefix": "KITSVC_"}
    service_name = "kitsvc"


def _production(monkeypatch: pytest.MonkeyPatch, **overrides: str) -> None:
    # The test stack's dev-only settings (the simulator's URL, the portal's PSA: the simulator's
    # ConnectWise on http://localhost) are not part of a production environment.
    dev_only = ("VENDOR_SYNC_VENDOR_SIM_URL", "PORTAL_PSA_PROVIDER", "PORTAL_PSA_ORIGIN")
    for name in ("SECRETS_BROKER_SERVICE_CLIENT_SECRET", "PORTAL_SERVICE_CLIENT_SECRET", "PORTAL_JWKS_URL", *dev_only):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**GOOD, **overrides}.items():
        monkeypatch.setenv(name, value)


def _refusal(factory: type[KitSettings]) -> str:
    with pytest.raises(ValidationError) as refused:
        factory()
    return str(refused.value)


def test_good_production_settings_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    from portal.settings import Settings as Portal
    from secrets_broker.settings import Settings as Broker
    from vendor_sync.settings import Settings as VendorSync

    _production(monkeypatch)
    for factory in (_Svc, Broker, VendorSync, Portal):
        assert not factory().is_dev


@pytest.mark.parametrize(
    ("setting", "value", "words"),
    [
        ("MSP_JWT_ISSUER", "http://idp.example", "MSP_JWT_ISSUER must be an https:// issuer outside MSP_ENV=dev"),
        ("MSP_JWKS_URL", "http://idp.example/jwks", "MSP_JWKS_URL must be an https:// URL outside MSP_ENV=dev"),
        ("MSP_TOKEN_URL", "http://idp.example/token", "MSP_TOKEN_URL must be an https:// URL outside MSP_ENV=dev"),
        ("KITSVC_SERVICE_CLIENT_SECRET", "changeme", "MSP_SERVICE_CLIENT_SECRET holds a placeholder secret"),
    ],
)
def test_each_kit_guard_names_its_setting(
    monkeypatch: pytest.MonkeyPatch, setting: str, value: str, words: str
) -> None:
    _production(monkeypatch, **{setting: value})
    message = _refusal(_Svc)
    assert words in message
    assert value not in message or value.startswith("http")  # a refused secret is never echoed


def test_a_refusal_never_echoes_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch, MSP_JWT_ISSUER="http://idp.example")
    assert "a-real-looking-client-secret" not in _refusal(_Svc)


def test_the_service_prefix_is_named_too(monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch, KITSVC_JWKS_URL="http://idp.example/jwks")
    assert "also read as KITSVC_JWKS_URL" in _refusal(_Svc)


def test_dev_tolerates_all_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch, MSP_ENV="dev", MSP_JWT_ISSUER="http://127.0.0.1:1", KITSVC_SERVICE_CLIENT_SECRET="")
    assert _Svc().is_dev


def test_an_unused_secret_is_not_required(monkeypatch: pytest.MonkeyPatch) -> None:
    class _NoIdentity(_Svc):
        unused_settings = frozenset({"service_client_secret"})
        api_key: SecretStr = SecretStr("a-real-looking-key")

    _production(monkeypatch, KITSVC_SERVICE_CLIENT_SECRET="")
    assert _NoIdentity().service_client_secret.get_secret_value() == ""
    assert "placeholder" in _refusal(_Svc)


def test_the_portal_needs_no_service_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """The portal acts for people only: no MSP_SERVICE_CLIENT_SECRET, no MSP_TOKEN_URL."""
    from portal.settings import Settings as Portal

    _production(monkeypatch, MSP_TOKEN_URL="http://127.0.0.1/oauth/token")
    monkeypatch.delenv("MSP_SERVICE_CLIENT_SECRET", raising=False)
    assert Portal().service_client_secret.get_secret_value() == ""
    # Its own secrets are still required.
    monkeypatch.setenv("PORTAL_SESSION_KEY", "changeme")
    assert "PORTAL_SESSION_KEY holds a placeholder secret" in _refusal(Portal)


def test_the_broker_refuses_a_plain_http_vault(monkeypatch: pytest.MonkeyPatch) -> None:
    from secrets_broker.settings import Settings as Broker

    _production(monkeypatch, MSP_VAULT_ADDR="http://openbao.internal:8200")
    assert "MSP_VAULT_ADDR must be an https:// Vault address outside MSP_ENV=dev" in _refusal(Broker)


def test_the_broker_refuses_smtp_without_starttls(monkeypatch: pytest.MonkeyPatch) -> None:
    from secrets_broker.settings import Settings as Broker

    _production(monkeypatch, SECRETS_BROKER_SMTP_STARTTLS="false")
    assert "SECRETS_BROKER_SMTP_STARTTLS=false" in _refusal(Broker)
    _production(monkeypatch, SECRETS_BROKER_SMTP_STARTTLS="false", MSP_SMTP_URL="smtps://relay.example:465")
    assert Broker().smtp_uses_starttls() is False


def test_the_broker_refuses_a_placeholder_fingerprint_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from secrets_broker.settings import Settings as Broker

    _production(monkeypatch, SECRETS_BROKER_FINGERPRINT_KEY="placeholder")
    assert "SECRETS_BROKER_FINGERPRINT_KEY holds a placeholder secret" in _refusal(Broker)


# --- the issuer's discovery document (mspctl_dev) ---------------------------------------------------


def _idp(doc: object, status: int = 200) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, json=doc))


def test_a_real_issuer_is_read_once() -> None:
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(200, json={"issuer": "https://idp.example"})

    guard = IssuerGuard("https://idp.example/", transport=httpx.MockTransport(answer))
    guard.check()
    guard.check()
    assert calls == ["https://idp.example/.well-known/openid-configuration"]


def test_the_dev_issuer_is_refused_naming_the_setting() -> None:
    guard = IssuerGuard("https://idp.example", transport=_idp({"issuer": "https://idp.example", "mspctl_dev": True}))
    with pytest.raises(DevIssuerRefused, match=r"MSP_JWT_ISSUER .* is the dev issuer"):
        guard.check()
    with pytest.raises(DevIssuerRefused):
        guard.check_at_startup()


def test_an_unreadable_discovery_keeps_the_service_unready() -> None:
    guard = IssuerGuard("https://idp.example", transport=_idp({}, status=503))
    with pytest.raises(IssuerUnchecked, match="MSP_JWT_ISSUER's discovery document answered HTTP 503"):
        guard.check()
    guard.check_at_startup()  # not fatal at start-up: /readyz keeps asking


def test_an_api_outside_dev_refuses_to_start_on_the_dev_issuer() -> None:
    # The test stack's real dev issuer, seen by a production service (validation skipped, as if it were https).
    dev = _Svc(MSP_ENV="dev")
    production = dev.model_copy(update={"env": "production"})
    app = create_app(service="intake", settings=production)
    ready = TestClient(app).get("/readyz")  # no lifespan: /readyz alone
    assert ready.status_code == 503
    assert ready.json()["checks"]["issuer"] == "failed: DevIssuerRefused"
    with pytest.raises(DevIssuerRefused, match="MSP_JWT_ISSUER"), TestClient(app):
        pass


def test_in_dev_the_issuer_is_not_checked() -> None:
    app = create_app(service="intake", settings=_Svc(MSP_ENV="dev"))
    assert app.state.issuer_guard is None
    with TestClient(app) as client:
        assert "issuer" not in client.get("/readyz").json()["checks"]


def test_the_vendor_simulator_url_is_refused_outside_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    from vendor_sync.settings import Settings as VendorSync

    _production(monkeypatch, VENDOR_SYNC_VENDOR_SIM_URL="http://127.0.0.1:9999")
    assert "VENDOR_SYNC_VENDOR_SIM_URL is honoured only with MSP_ENV=dev" in _refusal(VendorSync)
