"""intake's PSA settings: the provider guard, the key files, production refusals, status maps, the ticket URL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

PRODUCTION = {
    "MSP_ENV": "production",
    "MSP_JWT_ISSUER": "https://idp.example",
    "MSP_JWKS_URL": "https://idp.example/.well-known/jwks.json",
    "MSP_TOKEN_URL": "https://idp.example/oauth/token",
    "MSP_VAULT_ADDR": "https://openbao.internal:8200",
    "MSP_SMTP_URL": "smtp://relay.example:587",
    "INTAKE_SERVICE_CLIENT_SECRET": "a-real-looking-client-secret",
}
PUBLIC, PRIVATE, CLIENT_ID = "pubCanaryK3y", "privCanaryS3cret9x", "clientCanary-0f1e2d"


def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PSA setting of the test stack (or of an earlier test) leaks into the one under test."""
    for name in list(os.environ):
        if name.startswith("INTAKE_PSA_"):
            monkeypatch.delenv(name)


def _production(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("INTAKE_JWT_ISSUER", "INTAKE_JWKS_URL", "INTAKE_TOKEN_URL", "INTAKE_VAULT_ADDR", "INTAKE_SMTP_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)


def _key_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **values: str) -> dict[str, Path]:
    """Write the three key files (with surrounding whitespace, which is stripped) and point the settings at them."""
    wanted = {"public_key": PUBLIC, "private_key": PRIVATE, "client_id": CLIENT_ID, **values}
    paths = {}
    for name, value in wanted.items():
        path = tmp_path / f"cw_{name}"
        path.write_text(f"  {value}\n")
        monkeypatch.setenv(f"INTAKE_PSA_CONNECTWISE_{name.upper()}_FILE", str(path))
        paths[name] = path
    return paths


def _connectwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, site: str = "https://api-na.myconnectwise.net"
) -> None:
    _clean(monkeypatch)
    monkeypatch.setenv("INTAKE_PSA_PROVIDER", "connectwise")
    monkeypatch.setenv("INTAKE_PSA_CONNECTWISE_SITE_URL", site)
    monkeypatch.setenv("INTAKE_PSA_CONNECTWISE_COMPANY", "msp")
    _key_files(tmp_path, monkeypatch)


def _refusal() -> str:
    from intake.settings import Settings

    with pytest.raises(ValidationError) as refused:
        Settings()
    return str(refused.value)


def test_default_is_no_psa(monkeypatch: pytest.MonkeyPatch) -> None:
    from intake.psa.factory import build_psa_adapter
    from intake.settings import Settings

    _clean(monkeypatch)
    settings = Settings()
    assert settings.psa_provider == "none"
    assert settings.psa_board == "Service Board"
    assert settings.psa_status_maps["Service Board"]["in_progress"] == "In Progress"
    assert settings.psa_closed_statuses == {"Service Board": ["Closed", "Completed"]}
    assert build_psa_adapter(settings) is None


@pytest.mark.parametrize("provider", ["autotask", "halo"])
def test_a_psa_without_an_adapter_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch, provider: str) -> None:
    _clean(monkeypatch)
    monkeypatch.setenv("INTAKE_PSA_PROVIDER", provider)
    assert f"INTAKE_PSA_PROVIDER={provider}: no adapter for this PSA yet (supported: none, connectwise)" in _refusal()


def test_connectwise_in_dev_reads_the_key_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from intake.psa.connectwise import ConnectWiseAdapter
    from intake.psa.factory import build_psa_adapter
    from intake.settings import Settings

    _connectwise(monkeypatch, tmp_path, site="http://127.0.0.1:8099/connectwise")
    settings = Settings()
    assert settings.psa_key("psa_connectwise_public_key").get_secret_value() == PUBLIC
    assert settings.psa_key("psa_connectwise_private_key").get_secret_value() == PRIVATE
    assert settings.psa_key("psa_connectwise_client_id").get_secret_value() == CLIENT_ID
    # The log redactor gets them; a dump of the settings does not.
    assert {PUBLIC, PRIVATE, CLIENT_ID} <= set(settings.secret_values())
    assert PRIVATE not in repr(settings) and PRIVATE not in settings.model_dump_json()
    adapter = build_psa_adapter(settings)
    try:
        assert isinstance(adapter, ConnectWiseAdapter)
        assert adapter.api_root == "http://127.0.0.1:8099/connectwise/v4_6_release/apis/3.0"
    finally:
        assert adapter is not None
        adapter.close()


@pytest.mark.parametrize("name", ["public_key", "private_key", "client_id"])
def test_connectwise_needs_each_key_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    _connectwise(monkeypatch, tmp_path)
    setting = f"INTAKE_PSA_CONNECTWISE_{name.upper()}_FILE"
    monkeypatch.delenv(setting)
    assert f"{setting} is required when INTAKE_PSA_PROVIDER=connectwise" in _refusal()


def test_a_missing_key_file_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _connectwise(monkeypatch, tmp_path)
    monkeypatch.setenv("INTAKE_PSA_CONNECTWISE_PRIVATE_KEY_FILE", str(tmp_path / "nowhere"))
    assert "INTAKE_PSA_CONNECTWISE_PRIVATE_KEY_FILE: no file at" in _refusal()


def test_an_empty_key_file_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _connectwise(monkeypatch, tmp_path)
    _key_files(tmp_path, monkeypatch, client_id="   ")
    assert "INTAKE_PSA_CONNECTWISE_CLIENT_ID_FILE:" in _refusal()


def test_a_key_with_spaces_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _connectwise(monkeypatch, tmp_path)
    _key_files(tmp_path, monkeypatch, private_key="two words-Canary")
    message = _refusal()
    assert "INTAKE_PSA_CONNECTWISE_PRIVATE_KEY_FILE: the file must hold one line" in message
    assert "Canary" not in message


def test_a_placeholder_key_is_accepted_in_dev(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from intake.settings import Settings

    _connectwise(monkeypatch, tmp_path)
    _key_files(tmp_path, monkeypatch, private_key="changeme")
    assert Settings().psa_key("psa_connectwise_private_key").get_secret_value() == "changeme"


def test_a_placeholder_key_is_refused_outside_dev(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from intake.settings import Settings

    _connectwise(monkeypatch, tmp_path)
    _production(monkeypatch)
    assert not Settings().is_dev  # the production environment itself is good
    _key_files(tmp_path, monkeypatch, private_key="changeme")
    message = _refusal()
    setting = "INTAKE_PSA_CONNECTWISE_PRIVATE_KEY_FILE"
    assert f"{setting} holds a placeholder; refusing to start outside MSP_ENV=dev" in message
    assert "changeme" not in message


def test_an_http_site_is_refused_outside_dev(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _connectwise(monkeypatch, tmp_path, site="http://cw.example.com")
    _production(monkeypatch)
    assert "INTAKE_PSA_CONNECTWISE_SITE_URL must be an https:// URL outside MSP_ENV=dev" in _refusal()


def test_an_http_site_is_accepted_in_dev(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from intake.settings import Settings

    _connectwise(monkeypatch, tmp_path, site="http://127.0.0.1:8099/connectwise")
    assert Settings().psa_connectwise_site_url == "http://127.0.0.1:8099/connectwise"


@pytest.mark.parametrize(
    "site", ["", "ftp://cw.example.com", "https://user:pw@cw.example.com", "https://cw.example.com/?a=1", "cw"]
)
def test_a_bad_site_url_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, site: str
) -> None:
    _connectwise(monkeypatch, tmp_path, site=site)
    message = _refusal()
    assert "INTAKE_PSA_CONNECTWISE_SITE_URL" in message
    assert "pw@" not in message


def test_the_company_is_required(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _connectwise(monkeypatch, tmp_path)
    monkeypatch.setenv("INTAKE_PSA_CONNECTWISE_COMPANY", "")
    assert "INTAKE_PSA_CONNECTWISE_COMPANY is required for connectwise" in _refusal()


def test_the_board_needs_a_status_for_every_task_status(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _connectwise(monkeypatch, tmp_path)
    monkeypatch.setenv("INTAKE_PSA_BOARD", "Help Desk")
    monkeypatch.setenv("INTAKE_PSA_STATUS_MAPS", '{"Help Desk": {"new": "New", "ready": "New", "done": "Closed"}}')
    message = _refusal()
    assert "INTAKE_PSA_STATUS_MAPS has no PSA status for board 'Help Desk'" in message
    assert "awaiting_approval, in_progress, on_hold, rejected, cancelled" in message


@pytest.mark.parametrize(
    "template",
    [
        "{site}/tickets",  # no {ticket_id}
        "{site.__class__}/{ticket_id}",
        "{site!r}/{ticket_id}",
        "{0}/{ticket_id}",
        "{secret}/{ticket_id}",
        "{ticket_id:>10}",
        "{ticket_id",
    ],
)
def test_a_ticket_url_template_holds_only_known_placeholders(monkeypatch: pytest.MonkeyPatch, template: str) -> None:
    _clean(monkeypatch)
    monkeypatch.setenv("INTAKE_PSA_TICKET_URL_TEMPLATE", template)
    assert "INTAKE_PSA_TICKET_URL_TEMPLATE must hold {ticket_id}" in _refusal()


def test_the_ticket_url_templates(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from intake.psa.factory import build_psa_adapter
    from intake.settings import Settings

    _connectwise(monkeypatch, tmp_path)
    adapter = build_psa_adapter(Settings())
    assert adapter is not None
    assert adapter.ticket_url("69") == (  # type: ignore[attr-defined]
        "https://api-na.myconnectwise.net/v4_6_release/services/system_io/Service/fv_sr100_request.rails"
        "?service_recid=69&companyName=msp"
    )
    adapter.close()
    # The dev stack's: the simulator's screen, at the root of the simulator's origin.
    _connectwise(monkeypatch, tmp_path, site="http://127.0.0.1:8099/connectwise")
    monkeypatch.setenv("INTAKE_PSA_TICKET_URL_TEMPLATE", "{site_root}/_sim/psa/connectwise/tickets/{ticket_id}/screen")
    adapter = build_psa_adapter(Settings())
    assert adapter is not None
    assert adapter.ticket_url("69") == "http://127.0.0.1:8099/_sim/psa/connectwise/tickets/69/screen"  # type: ignore[attr-defined]
    adapter.close()


def test_an_http_callback_url_is_refused_outside_dev(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from intake.settings import Settings

    _connectwise(monkeypatch, tmp_path)
    monkeypatch.setenv("INTAKE_PSA_CALLBACK_URL", "http://127.0.0.1:8001/v1/webhooks/psa/connectwise")
    assert Settings().psa_callback_url.startswith("http://")  # dev: the local stack
    _production(monkeypatch)
    assert "INTAKE_PSA_CALLBACK_URL must be an https:// URL" in _refusal()


@pytest.mark.parametrize("setting", ["INTAKE_PSA_RATE", "INTAKE_PSA_KEY_FETCH_RATE"])
def test_rates_must_parse(monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    _clean(monkeypatch)
    monkeypatch.setenv(setting, "lots")
    assert f"{setting} must be a rate such as 10/second" in _refusal()
