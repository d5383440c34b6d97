"""mspkit.http allowlist entries are origins (scheme, host, port), in the kit and in vendor_sync's settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mspkit.http import HostPolicy, Origin, parse_origin
from vendor_sync.settings import Settings


@pytest.mark.parametrize(
    ("entry", "origin"),
    [
        ("https://rdap.verisign.com:443", Origin("https", "rdap.verisign.com", 443)),
        ("https://rdap.verisign.com", Origin("https", "rdap.verisign.com", 443)),
        ("HTTPS://RDAP.Verisign.com./", Origin("https", "rdap.verisign.com", 443)),
        ("http://127.0.0.1:40006", Origin("http", "127.0.0.1", 40006)),
        ("https://[2001:DB8::1]:8443", Origin("https", "2001:db8::1", 8443)),
        # The old bare form: https, except on loopback where the dev simulator speaks plain http.
        ("rdap.verisign.com:443", Origin("https", "rdap.verisign.com", 443)),
        ("10.1.2.3:8080", Origin("https", "10.1.2.3", 8080)),
        ("127.0.0.1:40006", Origin("http", "127.0.0.1", 40006)),
        ("localhost:9000", Origin("http", "localhost", 9000)),
    ],
)
def test_allowlist_entries_parse_to_origins(entry: str, origin: Origin) -> None:
    assert parse_origin(entry) == origin


@pytest.mark.parametrize(
    "entry",
    [
        "https://rdap.verisign.com/com/v1/",
        "https://ops:hunter2@rdap.verisign.com",
        "https://rdap.verisign.com/?key=hunter2",
        "ftp://rdap.verisign.com",
        "rdap.verisign.com",
        "https://",
    ],
)
def test_bad_allowlist_entries_are_refused_without_echoing_secrets(entry: str) -> None:
    with pytest.raises(ValueError, match="allowlist entry") as info:
        parse_origin(entry)
    assert "hunter2" not in str(info.value)


def test_policy_matches_scheme_host_and_port() -> None:
    policy = HostPolicy.build(["https://rdap.example:443", "http://127.0.0.1:9000"])
    assert policy.is_allowed("https://rdap.example/domain/x")
    assert policy.refusal("http://rdap.example:443/x") == "origin http://rdap.example:443 is not allowlisted"
    assert policy.refusal("https://rdap.example:8443/x") == "origin https://rdap.example:8443 is not allowlisted"
    assert policy.is_allowed("http://127.0.0.1:9000/rdap/")
    assert policy.refusal("https://127.0.0.1:9000/") == "loopback origin https://127.0.0.1:9000 is not allowlisted"


def test_denied_hosts_win_on_every_scheme() -> None:
    policy = HostPolicy.build(["http://127.0.0.1:8200", "https://127.0.0.1:8200"], denied=["http://127.0.0.1:8200"])
    assert policy.refusal("https://127.0.0.1:8200/v1/sys/health") == "denied host 127.0.0.1:8200"
    assert policy.refusal("http://127.0.0.1:8200/v1/sys/health") == "denied host 127.0.0.1:8200"


def test_vendor_sync_settings_hold_origins_and_refuse_bad_entries_by_name() -> None:
    default = Settings.model_fields["http_allowed_hosts"].default
    settings = Settings(MSP_ENV="dev", http_allowed_hosts=default)
    assert settings.allowed_hosts == ["https://data.iana.org:443", "https://rdap.verisign.com:443"]
    assert HostPolicy.build(settings.allowed_hosts).is_allowed("https://rdap.verisign.com/com/v1/domain/example.com")
    with pytest.raises(ValidationError) as info:
        Settings(MSP_ENV="dev", http_allowed_hosts="https://rdap.verisign.com/com/v1/")
    assert info.value.errors()[0]["loc"] == ("http_allowed_hosts",)
    assert "scheme://host[:port]" in str(info.value)
