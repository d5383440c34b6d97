"""mspkit.http: the one status mapping, Retry-After parsing, URL redaction and the host policy."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from mspkit.http import (
    HostNotAllowed,
    HostPolicy,
    RateLimited,
    RedirectRefused,
    VendorAuthError,
    VendorConflict,
    VendorNotFound,
    VendorPermanentError,
    VendorTransientError,
    error_for_status,
    is_retryable,
    parse_retry_after,
    redact_url,
)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, None),
        (204, None),
        (304, None),
        (400, VendorPermanentError),
        (401, VendorAuthError),
        (403, VendorAuthError),
        (404, VendorNotFound),
        (405, VendorPermanentError),
        (408, VendorTransientError),
        (409, VendorConflict),
        (410, VendorNotFound),
        (413, VendorPermanentError),
        (422, VendorPermanentError),
        (429, RateLimited),
        (451, VendorPermanentError),
        (500, VendorTransientError),
        (501, VendorPermanentError),
        (502, VendorTransientError),
        (503, VendorTransientError),
        (504, VendorTransientError),
        (505, VendorPermanentError),
        (599, VendorTransientError),
    ],
)
def test_status_mapping_table(status: int, expected: type | None) -> None:
    error = error_for_status(status, {}, vendor="v")
    if expected is None:
        assert error is None
    else:
        assert type(error) is expected
        assert error.status == status
        assert error.vendor == "v"


def test_auth_and_not_found_are_permanent_and_never_retryable() -> None:
    for status in (400, 401, 403, 404, 410, 422):
        error = error_for_status(status)
        assert isinstance(error, VendorPermanentError)
        assert not is_retryable(error)
    for status in (408, 429, 500, 503):
        assert is_retryable(error_for_status(status))


def test_retry_after_seconds() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 0 ") == 0.0
    error = error_for_status(429, {"Retry-After": "7"})
    assert isinstance(error, RateLimited) and error.retry_after == 7.0
    error = error_for_status(503, {"retry-after": "3"})
    assert isinstance(error, VendorTransientError) and error.retry_after == 3.0


def test_retry_after_http_date() -> None:
    now = time.time()
    header = formatdate(now + 30, usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(30, abs=1)
    # A date in the past clamps to zero rather than going negative.
    assert parse_retry_after(formatdate(now - 300, usegmt=True), now=now) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 0.0


@pytest.mark.parametrize("junk", [None, "", "soon", "-5", "1.5", "Thu, 99 Foo 2015"])
def test_retry_after_junk_is_ignored(junk: str | None) -> None:
    assert parse_retry_after(junk) is None


def test_redact_url_strips_query_fragment_and_userinfo() -> None:
    url = "https://user:pw@api.vendor.example:8443/v1/domains?api_key=SECRET#frag"
    assert redact_url(url) == "https://api.vendor.example:8443/v1/domains"
    assert "SECRET" not in redact_url(url) and "pw" not in redact_url(url)
    assert redact_url("http://[::1]:8200/x?t=1") == "http://[::1]:8200/x"


def test_host_policy() -> None:
    policy = HostPolicy.build(
        ["rdap.example:443", "127.0.0.1:9000", "127.0.0.1:8200", "169.254.169.254:80"],
        denied=["http://127.0.0.1:8200"],
    )
    assert policy.is_allowed("https://rdap.example/domain/x")
    assert policy.is_allowed("https://RDAP.example./domain/x")
    assert not policy.is_allowed("http://rdap.example/domain/x")  # port 80 is a different pair
    assert policy.is_allowed("http://127.0.0.1:9000/")
    assert not policy.is_allowed("http://127.0.0.1:9001/")  # loopback only when allowlisted
    assert not policy.is_allowed("http://localhost:9000/")
    assert not policy.is_allowed("http://127.0.0.1:8200/v1/sys/health")  # denied wins over allowed
    assert not policy.is_allowed("http://169.254.169.254/latest/meta-data")  # link-local always refused
    assert not policy.is_allowed("http://[fe80::1]:9000/")
    assert not policy.is_allowed("ftp://rdap.example/")
    # Other spellings of an allowlisted or denied address compare equal.
    assert policy.is_allowed("http://2130706433:9000/")
    assert not policy.is_allowed("http://0x7f.0.0.1:8200/")
    with pytest.raises(RedirectRefused):
        policy.check("http://169.254.169.254/", redirect=True)
    with pytest.raises(HostNotAllowed) as info:
        policy.check("https://evil.example/?token=SECRET")
    assert not isinstance(info.value, RedirectRefused)
    assert "SECRET" not in str(info.value)
